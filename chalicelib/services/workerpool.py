"""What the serverless version has in place of the original WorkerPool: the job queue and the jobs table.

The original's five fields, mapped onto the SQS worker (the console's monitoring page reads them):
`queue_length` (visible messages), `active_workers` (in-flight messages: each one is a worker busy with it),
`worker_count` (the most job_worker instances SQS runs at once, `CG_JOB_WORKER_CONCURRENCY`),
`queue_capacity` (SQS's limit of in-flight messages on a standard queue; the backlog itself is unbounded)
and `queued_ids` (up to 100 jobs still `queued`, oldest first, from the jobs table: SQS is not listable).
The rest is new.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from chalicelib.jobs_queue import queue_attributes
from chalicelib.observability import logger
from chalicelib.repositories import JobRepository
from chalicelib.services.job_state import TRANSITIONS
from chalicelib.settings import get_settings

SQS_IN_FLIGHT_LIMIT = 120_000
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
        "queue_error": None, "worker_count": settings.job_worker_concurrency, "queue_capacity": SQS_IN_FLIGHT_LIMIT,
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
    jobs = JobRepository()
    status["queued_ids"] = jobs.stale_ids("queued", dt.datetime.utcnow() + dt.timedelta(days=1), limit=100)
    counts = jobs.count_by_status()
    status["jobs_by_status"] = {s: counts.get(s, 0) for s in TRANSITIONS}
    return status
