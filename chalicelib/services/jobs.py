"""JobService: the one owner of the job lifecycle.

It creates jobs (store, announce, enqueue), moves them through the status machine and publishes the
event for each state it saved: the worker, the job runners, the sweeper and every internal caller go
through it, and the event envelope is built only here (and for other topics in `events.envelope`).
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from chalicelib.errors import ConflictError, NotFoundError, ServiceUnavailableError
from chalicelib.events import EventPublisher, envelope, get_event_publisher
from chalicelib.jobs_queue import JobQueue, get_job_queue
from chalicelib.models.domain import Job
from chalicelib.models.requests import JobListQuery, JobSpec
from chalicelib.models.validation import validate
from chalicelib.observability import logger
from chalicelib.repositories import JobRepository
from chalicelib.services import job_state
from chalicelib.services.quotas import QuotaService

# A lost optimistic race is retried against the fresh row: the status machine re-checks it.
_TRANSITION_ATTEMPTS = 3


class JobService:
    def __init__(self, jobs: JobRepository | None = None, queue: Callable[[], JobQueue] = get_job_queue,
                 publisher: Callable[[], EventPublisher] = get_event_publisher) -> None:
        self.jobs = jobs or JobRepository()
        self._queue = queue
        self._publisher = publisher

    # --- creating a job ----------------------------------------------------------------------------------
    def submit(self, job_type: str, cluster_id: str, parameters: dict[str, str], *,
               correlation_id: str | None = None, caller: str = "anonymous") -> Job:
        """Validate, store the job as `queued` with a fresh trace id, publish `job_requested` (with
        `correlation_id`, the id of whatever asked for the job), then hand the job to the JobQueue.

        ValidationError for an unknown type or bad parameters (nothing stored); QuotaExceededError (409)
        when the job would take its cluster or tenant beyond a quota; NotFoundError if the cluster does not
        exist. If the queue refuses the job, the job is marked `failed` ("enqueue failed:
        ...", with a `job_failed` event) and ServiceUnavailableError is raised: a job that no worker will
        ever see must not stay `queued`.
        """
        spec = validate(JobSpec, {"type": job_type, "cluster_id": cluster_id,
                                  "parameters": {**parameters, "cluster_id": cluster_id}})
        QuotaService().check_job(spec.type, spec.cluster_id, spec.parameters)  # 409 naming the limit (issue 18)
        job = Job.from_row(self.jobs.create(job_type=spec.type, cluster_id=spec.cluster_id,
                                            parameters=spec.parameters, trace_id=str(uuid.uuid4())))
        log = {"job_id": job.id, "trace_id": job.trace_id, "job_type": job.type,
               "cluster_id": job.cluster_id, "caller": caller}
        # Published and acknowledged before the job reaches the queue: the worker's events for this job
        # come from another producer into the same partition (keyed by cluster_id), so only this order
        # makes `job_requested` the first event of every job. Best effort: an event that cannot be
        # published is logged and counted, never a failed request (a retry would create a second job).
        self.announce(job, "job_requested", "job requested", {"parameters": job.parameters, "caller": caller},
                      correlation_id=correlation_id, flush=True)
        try:
            self._queue().send(job)
        except Exception as exc:  # any queue failure: boto errors, timeouts, misconfiguration
            logger.exception("job enqueue failed", extra=log)
            self.fail(job.id, f"enqueue failed: {type(exc).__name__}: {exc}", correlation_id=correlation_id,
                      flush=True)
            raise ServiceUnavailableError(f"job queue unavailable; job {job.id} was marked failed, retry later") from None
        logger.info("job queued", extra=log)
        return job

    # --- reading -----------------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        """The job; NotFoundError when missing."""
        return Job.from_row(self.jobs.get(job_id))

    def list(self, query: JobListQuery) -> tuple[list[Job], int]:
        """One page of jobs (sorted on an allow-listed column) and the exact total."""
        rows, total = self.jobs.list(page=query.page, page_size=query.page_size,
                                     sort_by=query.sort_by, sort_dir=query.sort_dir)
        return Job.from_rows(rows), total

    # --- moving a job, each move saved first and then announced ------------------------------------------
    def start(self, job: Job, correlation_id: str | None = None) -> Job:
        """`queued` -> `processing` at 5%; a job left `processing` by a crashed delivery resumes as it is.
        Either way `job_started` is announced."""
        if job.status == "queued":
            job = self.transition(job.id, "processing", progress=5)
        self.announce(job, "job_started", f"{job.type} job started", correlation_id=correlation_id)
        return job

    def report_progress(self, job_id: str, progress: int, message: str, result: Any = None,
                        correlation_id: str | None = None) -> Job:
        """Record progress (and optionally a checkpoint in `result`), then announce `job_progress`."""
        job = self.transition(job_id, "processing", progress=progress, result=result)
        self.announce(job, "job_progress", message, correlation_id=correlation_id)
        return job

    def complete(self, job_id: str, result: Any, correlation_id: str | None = None, *,
                 last_seen: Job | None = None) -> Job:
        """Mark the job `completed` with `result` and announce `job_completed`.

        The last `terminate` job of a deleted cluster deletes the cluster and this job's row with it
        (`result["cluster_deleted"]`): its outcome is then the completion event alone, about `last_seen`.
        """
        try:
            job = self.transition(job_id, "completed", result=result)
        except NotFoundError:
            if last_seen is None or not (isinstance(result, dict) and result.get("cluster_deleted")):
                raise
            job = last_seen
        self.announce(job, "job_completed", f"{job.type} job completed", {"result": result},
                      correlation_id=correlation_id)
        return job

    def fail(self, job_id: str, reason: str, correlation_id: str | None = None, *, flush: bool = False) -> Job:
        """Mark the job `failed` with `reason` and announce `job_failed` (IllegalTransition if it is final)."""
        job = self.transition(job_id, "failed", error=reason)
        self.announce(job, "job_failed", reason, {"error": reason}, correlation_id=correlation_id, flush=flush)
        return job

    def transition(self, job_id: str, new_status: str, progress: int | None = None,
                   result: Any = None, error: str | None = None) -> Job:
        """Move the job to `new_status` (optionally reporting progress, a result or an error), silently.

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

    def announce(self, job: Job, event_type: str, message: str, payload: dict[str, Any] | None = None, *,
                 correlation_id: str | None = None, flush: bool = False) -> bool:
        """Publish an event about `job` as saved. The database already holds the state it describes, so a
        broker outage is logged and counted, never a reason to redo the work. Unflushed events are sent
        when the caller's handler flushes the publisher."""
        return self._publisher().publish_best_effort(envelope(
            event_type, job_id=job.id, job_type=job.type, cluster_id=job.cluster_id, progress=job.progress,
            message=message, trace_id=job.trace_id, correlation_id=correlation_id, payload=payload,
            tenant_id=job.tenant_id), flush=flush)
