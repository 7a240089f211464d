"""The event pipeline's counters, behind four methods (the one place to change how they are recorded).

Counts of a batch are summed in the process and recorded at the end of the batch into
`clustergenie_events_handled_total` (`chalicelib.metrics`, flushed with the invocation's other metrics),
labelled by type (processed events), outcome and reason.
"""
from __future__ import annotations

from collections import Counter as Tally

from chalicelib import metrics


class BatchCounts:
    """Counts of one batch, recorded when the batch ends."""

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

    def record(self) -> None:
        for field, n in self.tally.items():
            outcome, _, detail = field.partition(":")
            labels = (detail, outcome, "") if outcome == "processed" else ("", outcome, detail)
            metrics.inc(metrics.EVENTS_HANDLED, labels, n)
