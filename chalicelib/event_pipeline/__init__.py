"""The consumer side of `cluster-events` (issue 5): typed events, the EventHandler, idempotency,
dead letters and the pipeline's counters. `chalicelib/functions/event_handler.py` wires them to the
`aws:kafka` batch."""
