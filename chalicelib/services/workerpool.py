"""What the serverless version has in place of the original WorkerPool: the job queue and the jobs table.

`queue_length` (visible messages) and `active_workers` (in-flight messages: each one is a worker busy
with it) keep the original names; the rest is new. `worker_count`, `queue_capacity` and `queued_ids`
have no meaning here (Lambda scales the workers, SQS has no capacity and is not listable) and are left out.
"""
from __future__ import annotations

from typing import Any

from chalicelib.jobs_queue import queue_attributes
from chalicelib.observability import logger
from chalicelib.repositories import JobRepository
from chalicelib.services.job_state import TRANSITIONS
from chalicelib.settings import get_settings

_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
               "ApproximateNumberOfMessagesDelayed"]


def workerpool_status() -> dict[str, Any]:
    """Queue depth, in-flight count and DLQ depth from SQS, and jobs by status from the database.

    When SQS cannot be asked, the queue figures are null and `queue_error` says why: the database half
    is still worth reporting, and a monitoring page should not go blank because of one dependency."""
    settings = get_settings()
    status: dict[str, Any] = {
        "queue_name": settings.jobs_queue_name, "dlq_name": settings.jobs_dlq_name,
        "queue_length": None, "active_workers": None, "queue_delayed": None, "dlq_depth": None,
        "queue_error": None,
    }
    try:
        queue = queue_attributes(settings.jobs_queue_name, _ATTRIBUTES)
        dlq = queue_attributes(settings.jobs_dlq_name, _ATTRIBUTES)
        status.update(queue_length=queue["ApproximateNumberOfMessages"],
                      active_workers=queue["ApproximateNumberOfMessagesNotVisible"],
                      queue_delayed=queue["ApproximateNumberOfMessagesDelayed"],
                      dlq_depth=dlq["ApproximateNumberOfMessages"] + dlq["ApproximateNumberOfMessagesNotVisible"])
    except Exception as exc:  # unreachable endpoint, missing queue, throttling: report, don't fail
        logger.warning("job queue attributes unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
        status["queue_error"] = f"{type(exc).__name__}: {exc}"[:500]
    counts = JobRepository().count_by_status()
    status["jobs_by_status"] = {s: counts.get(s, 0) for s in TRANSITIONS}
    return status
