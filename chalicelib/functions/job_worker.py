"""job_worker: the SQS-triggered function that replaces the original WorkerPool.

One record handler per message, partial batch failures reported through `batchItemFailures`
(the event source mapping has ReportBatchItemFailures on), so one bad message is retried and, after
`maxReceiveCount`, dead-lettered without holding back the rest of the batch.

What each message leads to:
- malformed body: the record fails (retried, then dead-lettered; it can never succeed);
- a job that does not exist (deleted with its cluster): logged and acknowledged;
- a job already `completed` or `failed`: acknowledged without work;
- otherwise the job runs once, guarded by Powertools idempotency keyed on the job id (Redis), so a
  duplicate delivery while or after it runs does no second piece of work. A job that cannot succeed
  ends `failed` with its reason and is acknowledged; an outage (an unexpected exception) leaves the
  message to be retried;
- a record whose turn comes when too little of the invocation's time is left is not started: it is failed
  and handed back to the queue at once (batches are up to 100 jobs, and a cold start under load can take
  most of the first batch's time), so the function never times out mid-batch.

The batch's jobs are read in one statement before the first record runs; each record still decides on its
job's row as it was read, and one that someone else moved meanwhile is read again (issue 16).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.cache import CachePersistenceLayer

from chalicelib import metrics
from chalicelib.dependencies import is_outage
from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.models.domain import Job
from chalicelib.observability import logger
from chalicelib.outbox import get_outbox_relay
from chalicelib.redis_client import get_redis
from chalicelib.services.job_runner import STARTED_BY_FIRST_STEP, JobFailed, JobRun, StartRefused, run_job
from chalicelib.services.job_state import FINAL_STATUSES
from chalicelib.services.jobs import JobService

# A batch whose every record failed is reported like any other (all ids in batchItemFailures) instead of
# raising: SQS retries exactly those messages either way, and the function's error metric stays for crashes.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# A finished job's idempotency record outlives any redelivery SQS makes (retention is at most 14 days,
# but a redelivery of a finished job is also caught by its final status, so a day is plenty).
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
idempotency_config = IdempotencyConfig(event_key_jmespath="job_id", raise_on_no_idempotency_key=True,
                                       expires_after_seconds=IDEMPOTENCY_TTL_SECONDS)
# Keys are `idempotency:job_worker#<md5 of the job id>` in the shared Redis.
persistence = CachePersistenceLayer(client=get_redis())

jobs = JobService()


class MalformedJobMessage(ValueError):
    """The message body is not a job reference; it will never succeed and ends in the DLQ."""


class NotStartedInTime(RuntimeError):
    """The invocation's time was nearly spent before this record's turn: it is reported as failed without any
    work done and made visible again at once (`release_not_started`), instead of the function timing out
    mid-job and the whole batch with it (a cold start under load can take most of the first batch's time)."""


# A record is started only while at least this much of the invocation's time is left: one job's lock wait
# (db.LOCK_WAIT_SECONDS) and the relay after commit (RELAY_BUDGET_SECONDS) must still fit. Never more than
# this fraction of the time the invocation had (a short timeout keeps most of its time for work).
START_RESERVE_SECONDS = 7.5
START_RESERVE_FRACTION = 0.3


@dataclass
class JobBatch:
    """What one invocation knows about its batch. Powertools calls `record_handler` with the record alone, so
    the batch being processed is `_batch` (one at a time per container), replaced at each invocation."""

    start_deadline: float | None = None  # monotonic; None outside an invocation with a Lambda context
    invocation_end: float | None = None  # monotonic: when the function would time out
    # The batch's jobs, read in one statement before the first record runs (issue 16): each job's first
    # delivery in the batch takes its row from here (and removes it) instead of reading it alone.
    jobs: dict[str, Job] = field(default_factory=dict)
    not_started: list[SQSRecord] = field(default_factory=list)

    @classmethod
    def starting(cls, context: Any) -> "JobBatch":
        batch = cls()
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            remaining = context.get_remaining_time_in_millis() / 1000
            batch.invocation_end = time.monotonic() + remaining
            batch.start_deadline = batch.invocation_end - min(START_RESERVE_SECONDS, START_RESERVE_FRACTION * remaining)
        return batch


_batch = JobBatch()


def parse_message(record: SQSRecord) -> dict[str, str]:
    """`{job_id, trace_id, correlation_id}` from the record (the SQS message id correlates the events)."""
    try:
        body = json.loads(record.body)
    except (TypeError, ValueError):
        raise MalformedJobMessage(f"message {record.message_id} is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("job_id"), str) or not body["job_id"]:
        raise MalformedJobMessage(f"message {record.message_id} has no job_id")
    return {"job_id": body["job_id"], "trace_id": str(body.get("trace_id") or ""),
            "correlation_id": record.message_id}


def read_batch_jobs(event: dict[str, Any]) -> dict[str, Job]:
    """The jobs the batch's well-formed records name, by id; {} when they cannot be read (each record then
    reads its own job, and fails on its own, as without this)."""
    ids = []
    for record in event.get("Records") or []:
        try:
            ids.append(parse_message(SQSRecord(record))["job_id"])
        except (MalformedJobMessage, KeyError):  # left to its record, which fails on its own
            continue
    if not ids:
        return {}
    try:
        return jobs.get_many(ids)
    except Exception as exc:  # noqa: BLE001 - an outage: every record meets it on its own read
        logger.warning("the batch's jobs could not be read at once", extra={"error": repr(exc)})
        return {}


@idempotent_function(data_keyword_argument="message", persistence_store=persistence, config=idempotency_config,
                     key_prefix="idempotency:job_worker")
def process_job(message: dict[str, str]) -> dict[str, str]:
    """Run the referenced job to `completed` or `failed`, at most once per job id."""
    job = _batch.jobs.pop(message["job_id"], None)
    if job is not None:
        try:
            return _run(job, message, read_with_batch=True)
        except _ReadAgain:
            # Moved by someone else since the batch's read (a redelivery elsewhere, the sweeper): decided again
            # on the fresh row, as a first read would have found it.
            logger.info("job changed since the batch was read; read again")
    try:
        job = jobs.get(message["job_id"])
    except NotFoundError:
        logger.warning("job not found; message acknowledged")
        return {"job_id": message["job_id"], "outcome": "missing"}
    return _run(job, message)


class _ReadAgain(Exception):
    """The job's row read with the batch no longer allows the start: nothing was done, read it again."""


def _run(job: Job, message: dict[str, str], read_with_batch: bool = False) -> dict[str, str]:
    if job.status in FINAL_STATUSES:
        logger.info("job already finished; message acknowledged", extra={"status": job.status})
        return {"job_id": job.id, "outcome": job.status}
    if job.status == "processing":  # an earlier delivery crashed mid-job; the runners resume from their checkpoint
        logger.warning("resuming a job left in processing", extra={"progress": job.progress})
    started = time.perf_counter()
    correlation_id = message["correlation_id"]
    run = JobRun(job, jobs, correlation_id=correlation_id, started=False)
    try:
        if job.type not in STARTED_BY_FIRST_STEP:
            # Started alone, before the runner: it calls a provider, or runs for long, before its first write.
            # A runner in STARTED_BY_FIRST_STEP records the start in its first unit of work (JobRun).
            run.ensure_started()
        result = run_job(run)
        if not run.finished:
            run.ensure_started()  # a runner left to start itself that wrote nothing
    except StartRefused:
        # The row read with the batch was moved meanwhile, so nothing was done: the start was refused (with the
        # runner's first unit of work, rolled back, if it was in one). Decided again on the fresh row.
        if read_with_batch:
            raise _ReadAgain() from None
        raise
    except JobFailed as exc:
        # A start rolled back with the failing step is recorded with the failure: `job_started`, then `job_failed`.
        jobs.fail(job.id, str(exc), correlation_id, picked_up=job)
        logger.warning("job failed", extra={"reason": str(exc)})
        metrics.observe_job(job.type, "failed", time.perf_counter() - started)
        return {"job_id": job.id, "outcome": "failed"}
    except Exception as exc:
        # An outage (database, provider API, broker): SQS delivers the message again and the runner
        # resumes from its checkpoint. Counted, so retries show on the dashboards before the DLQ does.
        # Any other failure is the job's own: remembered, so the sweeper can say why if it never succeeds.
        metrics.observe_job(job.type, "retried", time.perf_counter() - started)
        # A lost race or a lock held elsewhere (ConflictError) is contention, not the job's own error either.
        own = not is_outage(exc) and not isinstance(exc, ConflictError)
        logger.warning("job delivery failed; SQS delivers it again", extra={"error": repr(exc), "own_error": own})
        if own:
            jobs.note_attempt_error(job.id, exc)
        raise
    # Logged by the move itself ("job transition" to `completed`), as every state change is.
    if not run.finished:  # else completed by the runner in its last unit of work (JobRun.finish)
        jobs.complete(job.id, result, correlation_id, last_seen=run.job)
    metrics.observe_job(job.type, "completed", time.perf_counter() - started)
    return {"job_id": job.id, "outcome": "completed"}


def record_handler(record: SQSRecord) -> dict[str, str]:
    if _batch.start_deadline is not None and time.monotonic() > _batch.start_deadline:
        _batch.not_started.append(record)
        raise NotStartedInTime(f"message {record.message_id}: too little of the invocation's time left to start")
    message = parse_message(record)
    logger.append_keys(job_id=message["job_id"], trace_id=message["trace_id"])
    try:
        return process_job(message=message)
    finally:
        logger.remove_keys(["job_id", "trace_id"])


def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process an SQS batch; failed records are returned in `batchItemFailures`."""
    global _batch
    _batch = batch = JobBatch.starting(context)
    if batch.invocation_end is not None:
        # An in-progress idempotency record expires when this invocation would have timed out, so a
        # redelivery after a killed worker can run the job again.
        idempotency_config.register_lambda_context(context)
    batch.jobs.update(read_batch_jobs(event))
    try:
        return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)
    finally:
        batch.jobs.clear()
        release_not_started(batch)
        relay_after_commit(batch)


# What a batch may spend publishing its events after commit: a broker outage costs a batch this much
# (then the relay backs off and the scheduled relay takes over), never a failed or repeated job.
RELAY_BUDGET_SECONDS = 2.0


def release_not_started(batch: JobBatch) -> None:
    """The records not started in time go back to the queue at once (another batch takes them), not after the
    queue's visibility timeout. Best effort: if this fails they come back after the visibility timeout."""
    if not batch.not_started:
        return
    try:
        from chalicelib.jobs_queue import release_for_redelivery

        release_for_redelivery(batch.not_started[0].event_source_arn, [r.receipt_handle for r in batch.not_started])
        logger.warning("records not started in time were released for redelivery",
                       extra={"records": len(batch.not_started)})
    except Exception:  # noqa: BLE001 - they are failed in batchItemFailures either way
        logger.exception("records not started in time could not be released; they return after the visibility timeout")
    finally:
        batch.not_started.clear()


def relay_after_commit(batch: JobBatch | None = None) -> None:
    """Publish the outbox (this batch's events first among any left over) within RELAY_BUDGET_SECONDS, and
    within the invocation's time (half a second kept for the response)."""
    budget = RELAY_BUDGET_SECONDS
    if batch is not None and batch.invocation_end is not None:
        budget = max(0.1, min(budget, batch.invocation_end - time.monotonic() - 0.5))
    try:
        get_outbox_relay().drain(budget_seconds=budget)
    except Exception:  # noqa: BLE001 - the jobs and their events are committed; the scheduled relay sends them
        logger.exception("outbox relay after commit failed")
