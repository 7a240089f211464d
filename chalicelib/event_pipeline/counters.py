"""The event pipeline's counters, behind four methods (the one place to change how they are recorded).

Counts of a batch are summed in the process and written to the Redis hash `events:counts` in one round trip
at the end of the batch (fields `processed:<type>`, `skipped:<reason>`, `malformed:<reason>`, `duplicate`).
The hash adds up across Lambda containers; the API's `/metrics` serves it at scrape as
`clustergenie_events_handled_total` (`chalicelib/metrics/exposition.py`, issue 7), so the handler keeps no
process-local Prometheus counter of its own (nothing would scrape it in a Lambda).
"""
from __future__ import annotations

from collections import Counter as Tally
from typing import Any

COUNTS_KEY = "events:counts"


class BatchCounts:
    """Counts of one batch, written to Redis in the batch's last round trip."""

    def __init__(self) -> None:
        self.tally: Tally[str] = Tally()

    def processed(self, event_type: str) -> None:
        # Unknown types are skipped, not processed, so the set of fields stays bounded.
        self.tally[f"processed:{event_type}"] += 1

    def skipped(self, reason: str) -> None:
        self.tally[f"skipped:{reason}"] += 1

    def malformed(self, reason: str) -> None:
        self.tally[f"malformed:{reason}"] += 1

    def duplicate(self) -> None:
        self.tally["duplicate"] += 1

    def write(self, redis: Any) -> None:
        if self.tally:
            pipe = redis.pipeline(transaction=False)
            for field, n in self.tally.items():
                pipe.hincrby(COUNTS_KEY, field, n)
            pipe.execute()
