"""The job queue and its dead-letter queue (and the event handler's on-failure queue's depth): the one
module that talks to SQS.

The JobQueue is how the API hands a stored job to the job worker.

`get_job_queue()` is the single getter; production uses SQS (the `clustergenie-jobs` queue), the fast
test tier swaps in `InMemoryJobQueue` with `set_job_queue()`. The message carries only the job id and
trace id: the worker reads the job itself from MySQL, so a message can never disagree with the row.
The module functions below read queue figures and drain the dead-letter queue (the sweeper, /metrics,
the workerpool page); `queue_url` is the one place a queue's URL is looked up.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Protocol

from chalicelib.models.domain import Job
from chalicelib.settings import get_settings
from chalicelib.warm import PerContainer


class JobQueue(Protocol):
    def send(self, job: Job) -> None:
        """Hand `job` to the worker; raise on failure (the caller marks the job failed)."""


def message_for(job: Job) -> dict[str, Any]:
    """The SQS message for a job: body `{"job_id", "trace_id"}`, attribute `job_type`."""
    return {
        "MessageBody": json.dumps({"job_id": job.id, "trace_id": job.trace_id}, separators=(",", ":")),
        "MessageAttributes": {"job_type": {"DataType": "String", "StringValue": job.type}},
    }


def _sqs() -> Any:
    from chalicelib.aws import client

    return client("sqs")


def queue_url(queue_name: str) -> str:
    """The queue's URL (the one place it is looked up; the job queue keeps its own for every send)."""
    return _sqs().get_queue_url(QueueName=queue_name)["QueueUrl"]


def queue_attributes(queue_name: str, names: list[str]) -> dict[str, int]:
    """The queue's numeric attributes `names` (ApproximateNumberOfMessages, ...), 0 when absent."""
    attributes = _sqs().get_queue_attributes(QueueUrl=queue_url(queue_name), AttributeNames=names)["Attributes"]
    return {name: int(attributes.get(name, 0)) for name in names}


def dead_letter_depth() -> int:
    """Messages waiting in the jobs DLQ."""
    name = "ApproximateNumberOfMessages"
    return queue_attributes(get_settings().jobs_dlq_name, [name])[name]


def event_failures_depth() -> int:
    """Messages in the event handler's on-failure queue (batches its Kafka mapping gave up on)."""
    name = "ApproximateNumberOfMessages"
    return queue_attributes(get_settings().events_failure_queue_name, [name])[name]


def receive_dead_letters(max_messages: int = 10) -> list[dict[str, Any]]:
    """Up to `max_messages` messages of the jobs DLQ (without waiting); delete each once handled."""
    return _sqs().receive_message(QueueUrl=queue_url(get_settings().jobs_dlq_name), MaxNumberOfMessages=max_messages,
                                  WaitTimeSeconds=0, AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])


def delete_dead_letter(message: dict[str, Any]) -> None:
    _sqs().delete_message(QueueUrl=queue_url(get_settings().jobs_dlq_name), ReceiptHandle=message["ReceiptHandle"])


def release_for_redelivery(queue_arn: str, receipt_handles: list[str]) -> None:
    """Make messages this function received, and will not handle in this invocation, visible again at once
    (visibility timeout 0) instead of after the queue's visibility timeout; SQS counts the receive as usual."""
    _, _, _, _, account, name = queue_arn.split(":", 5)
    url = _sqs().get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    for first in range(0, len(receipt_handles), 10):  # SQS's batch limit
        _sqs().change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for i, handle in enumerate(receipt_handles[first:first + 10])])


class SqsJobQueue:
    """The SQS queue named by `settings.jobs_queue_name`; its URL is resolved on first use."""

    def __init__(self, queue_name: str | None = None) -> None:
        self._queue_name = queue_name or get_settings().jobs_queue_name
        self._queue_url: str | None = None

    def send(self, job: Job) -> None:
        if self._queue_url is None:
            self._queue_url = queue_url(self._queue_name)
        _sqs().send_message(QueueUrl=self._queue_url, **message_for(job))


class InMemoryJobQueue:
    """Keeps sent messages in a list (the fast test tier). Set `fail_with` to simulate an outage."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.fail_with: BaseException | None = None
        self._lock = threading.Lock()

    def send(self, job: Job) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        with self._lock:
            self.messages.append(message_for(job))

    def sent_job_ids(self) -> list[str]:
        return [json.loads(m["MessageBody"])["job_id"] for m in self.messages]


_queue: PerContainer[JobQueue] = PerContainer(SqsJobQueue)


def get_job_queue() -> JobQueue:
    """The process's JobQueue (SQS unless a test installed another)."""
    return _queue.get()


def set_job_queue(queue: JobQueue | None) -> None:
    """Install `queue` (None restores the SQS default on next use)."""
    _queue.set(queue)
