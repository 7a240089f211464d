"""The event pipeline's counters, behind four functions (the one place to change when metrics move to
an aggregated registry, issue 7).

Each is a Prometheus counter in the process and, per batch, a Redis hash `events:counts` (fields
`processed:<type>`, `skipped:<reason>`, `malformed:<reason>`, `duplicate`) that survives the Lambda
container and that tests and operators can read.
"""
from __future__ import annotations

from collections import Counter as Tally
from typing import Any

from prometheus_client import Counter

COUNTS_KEY = "events:counts"

PROCESSED = Counter("clustergenie_events_processed_total", "Cluster events applied, by type.", ["type"])
SKIPPED = Counter("clustergenie_events_skipped_total", "Valid events not applied (unknown type, missing cluster).", ["reason"])
MALFORMED = Counter("clustergenie_events_malformed_total", "Records dead-lettered as malformed.", ["reason"])
DUPLICATES = Counter("clustergenie_events_duplicate_total", "Records already applied (redeliveries, replays).")


class BatchCounts:
    """Counts of one batch, written to Redis in the batch's last round trip."""

    def __init__(self) -> None:
        self.tally: Tally[str] = Tally()

    def processed(self, event_type: str) -> None:
        # Unknown types are skipped, not processed, so this label set stays bounded.
        PROCESSED.labels(type=event_type).inc()
        self.tally[f"processed:{event_type}"] += 1

    def skipped(self, reason: str) -> None:
        SKIPPED.labels(reason=reason).inc()
        self.tally[f"skipped:{reason}"] += 1

    def malformed(self, reason: str) -> None:
        MALFORMED.labels(reason=reason).inc()
        self.tally[f"malformed:{reason}"] += 1

    def duplicate(self) -> None:
        DUPLICATES.inc()
        self.tally["duplicate"] += 1

    def write(self, redis: Any) -> None:
        if self.tally:
            pipe = redis.pipeline(transaction=False)
            for field, n in self.tally.items():
                pipe.hincrby(COUNTS_KEY, field, n)
            pipe.execute()
