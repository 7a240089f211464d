"""JobService: create (store, then enqueue), read, list, and move jobs through the status machine."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from chalicelib.errors import ConflictError, ServiceUnavailableError
from chalicelib.events import envelope, get_event_publisher
from chalicelib.jobs_queue import JobQueue, get_job_queue
from chalicelib.models.domain import Job
from chalicelib.models.requests import CreateJobRequest, JobListQuery
from chalicelib.observability import logger
from chalicelib.repositories import JobRepository
from chalicelib.services import job_state

# A lost optimistic race is retried against the fresh row: the status machine re-checks it.
_TRANSITION_ATTEMPTS = 3


class JobService:
    def __init__(self, jobs: JobRepository | None = None,
                 queue: Callable[[], JobQueue] = get_job_queue) -> None:
        self.jobs = jobs or JobRepository()
        self._queue = queue

    def create(self, request: CreateJobRequest, caller: str = "anonymous", correlation_id: str | None = None) -> Job:
        """Store the job as `queued` with a fresh trace id, publish `job_requested` (with `correlation_id`,
        the id of the request that asked for the job), then hand the job to the JobQueue.

        NotFoundError if the cluster does not exist. If the queue refuses the job, the job is marked
        `failed` ("enqueue failed: ...", with a `job_failed` event) and ServiceUnavailableError (503) is
        raised: a job that no worker will ever see must not stay `queued`.
        """
        job = Job.from_row(self.jobs.create(
            job_type=request.type, cluster_id=request.cluster_id,
            parameters=request.parameters, trace_id=str(uuid.uuid4()),
        ))
        log = {"job_id": job.id, "trace_id": job.trace_id, "job_type": job.type,
               "cluster_id": job.cluster_id, "caller": caller}
        publisher = get_event_publisher()

        def event(event_type: str, message: str, **fields: Any) -> dict[str, Any]:
            return envelope(event_type, job_id=job.id, job_type=job.type, cluster_id=job.cluster_id,
                            progress=job.progress, message=message, trace_id=job.trace_id,
                            correlation_id=correlation_id, **fields)

        # Published and acknowledged before the job reaches the queue: the worker's events for this job
        # come from another producer into the same partition (keyed by cluster_id), so only this order
        # makes `job_requested` the first event of every job. Best effort: an event that cannot be
        # published is logged and counted, never a failed request (a retry would create a second job).
        publisher.publish_best_effort(event("job_requested", "job requested",
                                            payload={"parameters": job.parameters, "caller": caller}))
        try:
            self._queue().send(job)
        except Exception as exc:  # any queue failure: boto errors, timeouts, misconfiguration
            logger.exception("job enqueue failed", extra=log)
            reason = f"enqueue failed: {type(exc).__name__}: {exc}"
            self.transition(job.id, "failed", error=reason)
            publisher.publish_best_effort(event("job_failed", reason, payload={"error": reason}))
            raise ServiceUnavailableError(f"job queue unavailable; job {job.id} was marked failed, retry later") from None
        logger.info("job queued", extra=log)
        return job

    def get(self, job_id: str) -> Job:
        """The job; NotFoundError when missing."""
        return Job.from_row(self.jobs.get(job_id))

    def list(self, query: JobListQuery) -> tuple[list[Job], int]:
        """One page of jobs (sorted on an allow-listed column) and the exact total."""
        rows, total = self.jobs.list(page=query.page, page_size=query.page_size,
                                     sort_by=query.sort_by, sort_dir=query.sort_dir)
        return Job.from_rows(rows), total

    def transition(self, job_id: str, new_status: str, progress: int | None = None,
                   result: Any = None, error: str | None = None) -> Job:
        """Move the job to `new_status` (optionally reporting progress, a result or an error).

        Illegal moves and decreasing progress raise IllegalTransition (409) and change nothing;
        NotFoundError if the job is missing. Concurrent writers are serialised by the job's version.
        """
        for attempt in range(_TRANSITION_ATTEMPTS):
            row = self.jobs.get(job_id)
            state = job_state.next_state(row, new_status, progress=progress, result=result, error=error)
            try:
                job = Job.from_row(self.jobs.save_state(job_id, row["version"], state))
            except ConflictError:
                if attempt == _TRANSITION_ATTEMPTS - 1:
                    raise
                continue
            logger.info("job transition", extra={"job_id": job_id, "trace_id": job.trace_id,
                                                 "from": row["status"], "to": job.status, "progress": job.progress})
            return job
        raise AssertionError("unreachable")
