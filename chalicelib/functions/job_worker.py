"""job_worker: the SQS-triggered function that replaces the original WorkerPool.

One record handler per message, partial batch failures reported through `batchItemFailures`
(the event source mapping has ReportBatchItemFailures on), so one bad message is retried and, after
`maxReceiveCount`, dead-lettered without holding back the rest of the batch.
"""
from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import db
from chalicelib.observability import logger

processor = BatchProcessor(event_type=EventType.SQS)


class MalformedJobMessage(ValueError):
    """The message body is not a job reference; it will never succeed and ends in the DLQ."""


def parse_message(record: SQSRecord) -> dict[str, str]:
    try:
        body = json.loads(record.body)
    except ValueError:
        raise MalformedJobMessage(f"message {record.message_id} is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("job_id"), str):
        raise MalformedJobMessage(f"message {record.message_id} has no job_id")
    return {"job_id": body["job_id"], "trace_id": str(body.get("trace_id", ""))}


def record_handler(record: SQSRecord) -> None:
    message = parse_message(record)
    logger.append_keys(job_id=message["job_id"], trace_id=message["trace_id"])
    with db.transaction() as cur:
        cur.execute(
            "UPDATE jobs SET status='completed', progress=100, completed_at=UTC_TIMESTAMP(6), version=version+1 "
            "WHERE id=%s AND status IN ('queued', 'processing')",
            (message["job_id"],),
        )
        changed = cur.rowcount
    logger.info("job processed", extra={"changed": changed})
    logger.remove_keys(["job_id", "trace_id"])


def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
