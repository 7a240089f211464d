"""JobService: the one owner of the job lifecycle.

It creates jobs (store, announce, enqueue), moves them through the status machine and records the
event for each state it saved: the worker, the job runners, the sweeper and every internal caller go
through it, and the event envelope is built only here (and for other topics in `events.envelope`).

Each state change and the event announcing it are one MariaDB transaction: the event goes to the
outbox (`chalicelib.outbox.record_event`), never straight to Kafka, so no caller waits on the broker,
a crash between the two loses nothing, and a job's events are published in the order of its changes.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.errors import ConflictError, NotFoundError, ServiceUnavailableError
from chalicelib.events import envelope
from chalicelib.jobs_queue import JobQueue, get_job_queue
from chalicelib.models.domain import Job
from chalicelib.observability import logger
from chalicelib.outbox import record_event, unit_of_work
from chalicelib.repositories import JobRepository
from chalicelib.services import job_state
from chalicelib.services.quotas import QuotaService

if TYPE_CHECKING:
    from chalicelib.models.requests import JobListQuery

# A lost optimistic race is retried against the fresh row: the status machine re-checks it.
_TRANSITION_ATTEMPTS = 3


class JobService:
    def __init__(self, jobs: JobRepository | None = None, queue: Callable[[], JobQueue] = get_job_queue) -> None:
        self.jobs = jobs or JobRepository()
        self._queue = queue

    # --- creating a job ----------------------------------------------------------------------------------
    def submit(self, job_type: str, cluster_id: str, parameters: dict[str, str], *,
               correlation_id: str | None = None, caller: str = "anonymous") -> Job:
        """Validate, store the job as `queued` with a fresh trace id and its `job_requested` event (with
        `correlation_id`, the id of whatever asked for the job) in one transaction, then hand the job to
        the JobQueue.

        ValidationError for an unknown type or bad parameters (nothing stored); QuotaExceededError (409)
        when the job would take its cluster or tenant beyond a quota; NotFoundError if the cluster does not
        exist. If the queue refuses the job, the job is marked `failed` ("enqueue failed:
        ...", with a `job_failed` event) and ServiceUnavailableError is raised: a job that no worker will
        ever see must not stay `queued`.
        """
        # The request models load only where a job is submitted (the API), not in the worker (issue 16).
        from chalicelib.models.requests import JobSpec
        from chalicelib.models.validation import validate

        spec = validate(JobSpec, {"type": job_type, "cluster_id": cluster_id,
                                  "parameters": {**parameters, "cluster_id": cluster_id}})
        # The quota check (409 naming the limit, issue 18), the insert and its event: one transaction, one
        # commit (issue 16); a refused check writes nothing.
        with unit_of_work():
            QuotaService().check_job(spec.type, spec.cluster_id, spec.parameters)
            job = Job.from_row(self.jobs.create(job_type=spec.type, cluster_id=spec.cluster_id,
                                                parameters=spec.parameters, trace_id=str(uuid.uuid4())))
            # In the outbox before the job reaches the queue, and the outbox is published in id order:
            # `job_requested` is the first event of every job.
            self.announce(job, "job_requested", "job requested", {"parameters": job.parameters, "caller": caller},
                          correlation_id=correlation_id)
        log = {"job_id": job.id, "trace_id": job.trace_id, "job_type": job.type,
               "cluster_id": job.cluster_id, "caller": caller}
        try:
            self._queue().send(job)
        except Exception as exc:  # any queue failure: boto errors, timeouts, misconfiguration
            logger.exception("job enqueue failed", extra=log)
            self.fail(job.id, f"enqueue failed: {type(exc).__name__}: {exc}", correlation_id=correlation_id)
            raise ServiceUnavailableError(f"job queue unavailable; job {job.id} was marked failed, retry later") from None
        logger.info("job queued", extra=log)
        return job

    # --- deliveries that failed -----------------------------------------------------------------------
    def note_attempt_error(self, job_id: str, exc: BaseException) -> None:
        """Remember why a delivery failed when it was the job's own doing (not an outage: those are only
        retried), so the sweeper can fail a dead-lettered job with its reason. Best effort."""
        try:
            self.jobs.note_attempt_error(job_id, f"{type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001 - the delivery is retried either way
            logger.exception("job attempt error not recorded", extra={"job_id": job_id})

    def attempt_record(self, job_id: str) -> tuple[str | None, int]:
        """(the job's own latest delivery error, or None; how many times it was redriven)."""
        return self.jobs.attempt_record(job_id)

    def redrive(self, job: Job) -> None:
        """Hand a job whose deliveries failed for want of a dependency back to the queue (counted)."""
        self.jobs.count_redrive(job.id)
        self._queue().send(job)
        logger.warning("job redriven", extra={"job_id": job.id, "trace_id": job.trace_id})

    # --- reading -----------------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        """The job; NotFoundError when missing."""
        return Job.from_row(self.jobs.get(job_id))

    def get_many(self, job_ids: list[str]) -> dict[str, Job]:
        """The existing jobs of `job_ids` by id, read in one statement (absent ids: no such job)."""
        return {job.id: job for job in Job.from_rows(self.jobs.get_many(sorted(set(job_ids))))}

    def list(self, query: JobListQuery) -> tuple[list[Job], int]:
        """One page of jobs (sorted on an allow-listed column) and the exact total."""
        rows, total = self.jobs.list(page=query.page, page_size=query.page_size,
                                     sort_by=query.sort_by, sort_dir=query.sort_dir)
        return Job.from_rows(rows), total

    # --- moving a job, each move saved first and then announced ------------------------------------------
    def start(self, job: Job, correlation_id: str | None = None, *,
              first_report: tuple[int, str, Any] | None = None) -> Job:
        """`queued` -> `processing` at 5%; a job left `processing` by a crashed delivery resumes as it is.
        Either way `job_started` is announced.

        `first_report`: (progress, message, result) of the run's first progress report, made with the start: one
        write for both moves of a job the caller holds (issue 16), announced as `job_started`, then `job_progress`."""
        with unit_of_work():
            moves = [("processing", {"progress": 5})] if job.status == "queued" else []
            if first_report is not None:
                progress, _, result = first_report
                moves.append(("processing", {"progress": progress, "result": result}))
            after = self._move(job, moves)
            started = after[0] if job.status == "queued" else job
            self.announce(started, "job_started", f"{job.type} job started", correlation_id=correlation_id)
            if first_report is not None:
                self.announce(after[-1], "job_progress", first_report[1], correlation_id=correlation_id)
        return after[-1] if after else job

    def report_progress(self, job_id: str, progress: int, message: str, result: Any = None,
                        correlation_id: str | None = None, *, known: Job | None = None) -> Job:
        """Record progress (and optionally a checkpoint in `result`), then announce `job_progress`
        (`known`: the job as this caller last saved it, see `transition`)."""
        with unit_of_work():
            job = self.transition(job_id, "processing", progress=progress, result=result, known=known)
            self.announce(job, "job_progress", message, correlation_id=correlation_id)
        return job

    def complete(self, job_id: str, result: Any, correlation_id: str | None = None, *,
                 last_seen: Job | None = None, last_report: tuple[int, str] | None = None) -> Job:
        """Mark the job `completed` with `result` and announce `job_completed`.

        The last `terminate` job of a deleted cluster deletes the cluster and this job's row with it
        (`result["cluster_deleted"]`): its outcome is then the completion event alone, about `last_seen`.

        `last_report`: (progress, message) of the run's last progress report, made with the completion: one write
        for both moves of `last_seen` (issue 16), announced as `job_progress`, then `job_completed`.
        """
        with unit_of_work():
            if last_report is not None and last_seen is not None:
                reported, job = self._move(last_seen, [("processing", {"progress": last_report[0]}),
                                                       ("completed", {"result": result})])
                self.announce(reported, "job_progress", last_report[1], correlation_id=correlation_id)
            else:
                try:
                    job = self.transition(job_id, "completed", result=result, known=last_seen)
                except NotFoundError:
                    if last_seen is None or not (isinstance(result, dict) and result.get("cluster_deleted")):
                        raise
                    job = last_seen
            self.announce(job, "job_completed", f"{job.type} job completed", {"result": result},
                          correlation_id=correlation_id)
        return job

    def fail(self, job_id: str, reason: str, correlation_id: str | None = None, *,
             picked_up: Job | None = None) -> Job:
        """Mark the job `failed` with `reason` and announce `job_failed` (IllegalTransition if it is final).

        `picked_up`: the job as the worker picked it up to run it. When it was `queued` and its start was rolled
        back with the step that failed (`JobRun.ensure_started`), the start is recorded first, in the same unit
        of work: a run's events are `job_started`, then `job_failed`, however far it got."""
        with unit_of_work():
            if picked_up is not None and picked_up.status == "queued":
                row = self.jobs.get(job_id, for_update=True)
                if row["status"] == "queued":
                    self.start(Job.from_row(row), correlation_id)
            job = self.transition(job_id, "failed", error=reason)
            self.announce(job, "job_failed", reason, {"error": reason}, correlation_id=correlation_id)
        return job

    def transition(self, job_id: str, new_status: str, progress: int | None = None,
                   result: Any = None, error: str | None = None, *, known: Job | None = None) -> Job:
        """Move the job to `new_status` (optionally reporting progress, a result or an error), silently.

        Illegal moves and decreasing progress raise IllegalTransition (409) and change nothing;
        NotFoundError if the job is missing. Concurrent writers are serialised by the job's version.

        `known` is the job as the caller last read or saved it (the worker carries its job through a run):
        the move is then checked against it and written with one UPDATE conditional on its version, nothing
        read before or after (issue 16). If another writer moved the job meanwhile, the UPDATE changes
        nothing and the move is decided again on the fresh row, as without `known`.
        """
        if known is not None and known.id == job_id:
            job = self._transition_known(known, new_status, progress=progress, result=result, error=error)
            if job is not None:
                return job
        for attempt in range(_TRANSITION_ATTEMPTS):
            row = self.jobs.get(job_id, for_update=True)  # the latest version, even inside a unit of work
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

    def _transition_known(self, job: Job, new_status: str, **change: Any) -> Job | None:
        """The move from `job` at its version, or None when the row is no longer at that version."""
        moved = self._moves_known(job, [(new_status, change)])
        return moved[0] if moved is not None else None

    def _moves_known(self, job: Job, moves: list[tuple[str, dict[str, Any]]]) -> list[Job] | None:
        """`moves` ((new status, change), each checked by the status machine from where the one before left the
        job) from `job` at its version, written as one UPDATE: the job after each move, or None (nothing written)
        when the row is no longer at that version."""
        now = dt.datetime.now(dt.timezone.utc)
        written: dict[str, Any] = {}
        after: list[Job] = []
        current = job
        for new_status, change in moves:
            state = job_state.next_state({"id": job.id, "status": current.status, "progress": current.progress},
                                         new_status, now=now, **change)
            written.update(state)
            saved = {k: (v.replace(tzinfo=dt.timezone.utc) if isinstance(v, dt.datetime) else v) for k, v in state.items()}
            current = current.model_copy(update={**saved, "updated_at": now, "version": job.version + 1})
            after.append(current)
        written["updated_at"] = now.replace(tzinfo=None)  # written, so that the saved job is known without reading it
        if not self.jobs.save_state_at(job.id, job.version, written):
            return None
        # One line per write of the row (its events tell each move): from where it was to where it is now.
        logger.info("job transition", extra={"job_id": job.id, "trace_id": job.trace_id, "from": job.status,
                                             "to": current.status, "progress": current.progress})
        return after

    def _move(self, job: Job, moves: list[tuple[str, dict[str, Any]]]) -> list[Job]:
        """`moves` of `job` as the caller holds it: one write (`_moves_known`); when someone else moved the job
        meanwhile, each move is decided again on the fresh row, one after the other (`transition`)."""
        if not moves:
            return []
        after = self._moves_known(job, moves)
        if after is None:
            after = [self.transition(job.id, new_status, **change) for new_status, change in moves]
        return after

    def announce(self, job: Job, event_type: str, message: str, payload: dict[str, Any] | None = None, *,
                 correlation_id: str | None = None) -> str:
        """Record an event about `job` as saved, in the outbox; called inside the unit of work that saved
        the state (or alone, for an event that changes no state: a droplet created). The relay publishes
        it; the event id is returned."""
        return record_event(envelope(
            event_type, job_id=job.id, job_type=job.type, cluster_id=job.cluster_id, progress=job.progress,
            message=message, trace_id=job.trace_id, correlation_id=correlation_id, payload=payload,
            tenant_id=job.tenant_id))
