"""event_handler: the function fed by the `cluster-events` topic (MSK event source on AWS, the bridge
locally). The pipeline itself is `chalicelib/event_pipeline/`."""
from __future__ import annotations

from typing import Any

from chalicelib.event_pipeline.batch import get_batch_processor
from chalicelib.observability import logger
from chalicelib.warm import WarmHeap

_heap = WarmHeap()


def handle_kafka_batch(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Apply one `aws:kafka` batch. Returns counts; raises (so the batch is retried) on a transient failure."""
    _heap.settle()
    remaining = context.get_remaining_time_in_millis() if hasattr(context, "get_remaining_time_in_millis") else None
    result = get_batch_processor().process(event, remaining)
    logger.info("event batch handled", extra=result)
    return result
