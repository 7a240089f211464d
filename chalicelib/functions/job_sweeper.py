"""job_sweeper: the scheduled function that settles jobs no worker will finish on its own.

- A job in `processing` not updated for PROCESSING_DEADLINE_SECONDS, or a message in the jobs DLQ (every
  delivery failed): if the worker recorded an error of the job's own (`attempt_error`), the job is marked
  `failed` saying so. Otherwise its deliveries failed because a dependency was down (or its worker was
  killed): the job is handed back to the queue (redriven), never failed for that, until MAX_REDRIVES
  redrives (hours of failed deliveries with no error of its own: then `failed`, saying that).
- The DLQ message is deleted once its job is settled (failed, redriven, finished or gone).
Each job goes through JobService, so a job that finished meanwhile is left alone.

It is also the sweeping outbox relay: first it publishes whatever the workers' after-commit relays left in
the outbox (a broker outage, a worker killed after its commit), for up to RELAY_BUDGET_SECONDS, and
removes sent rows older than a day.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from chalicelib import jobs_queue
from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.observability import logger
from chalicelib.outbox import get_outbox_relay
from chalicelib.services.job_state import FINAL_STATUSES
from chalicelib.services.jobs import JobService

# Longer than the worker's timeout times maxReceiveCount, so a job still being retried is never swept.
PROCESSING_DEADLINE_SECONDS = 15 * 60
MAX_DLQ_BATCHES = 10  # 100 messages per run; the schedule comes back in a minute
RELAY_BUDGET_SECONDS = 15.0  # of the function's 30 s; the next run comes in a minute
SENT_OUTBOX_KEPT_SECONDS = 24 * 3600


def _fail(jobs: JobService, job_id: str, reason: str) -> bool | None:
    """True if the job is failed now; False if it had finished meanwhile or is gone (deleted with its
    cluster); None if it could not be changed now (another writer holds it): try again next sweep."""
    try:
        job = jobs.fail(job_id, reason)
    except NotFoundError:
        return False
    except ConflictError:  # an illegal move (already final) or a lost race / lock wait: which one?
        try:
            return False if jobs.get(job_id).status in FINAL_STATUSES else None
        except NotFoundError:
            return False
    logger.warning("job swept", extra={"job_id": job.id, "trace_id": job.trace_id, "reason": reason})
    return True


MAX_REDRIVES = 30  # each after maxReceiveCount failed deliveries: hours of outage before a job gives up


def _settle(jobs: JobService, job_id: str, cause: str) -> str | None:
    """Fail the job for an error of its own, else redrive it. Returns "failed", "redriven", "settled"
    (finished meanwhile, or gone), or None if it could not be changed now (try again next sweep)."""
    try:
        job = jobs.get(job_id)
        own_error, redrives = jobs.attempt_record(job_id)
    except NotFoundError:
        return "settled"
    if job.status in FINAL_STATUSES:
        return "settled"
    if own_error or redrives >= MAX_REDRIVES:
        reason = (f"{cause}; the job's own error: {own_error}" if own_error else
                  f"{cause}, {redrives} redrives with no error of the job's own (its worker was killed or timed out every time)")
        outcome = _fail(jobs, job_id, reason)
        return None if outcome is None else ("failed" if outcome else "settled")
    try:
        jobs.redrive(job)
    except ConflictError:  # another writer holds the job: next sweep
        return None
    return "redriven"


def sweep_stuck(jobs: JobService, now: dt.datetime | None = None) -> dict[str, int]:
    now = (now or dt.datetime.now(dt.timezone.utc)).replace(tzinfo=None)
    deadline = now - dt.timedelta(seconds=PROCESSING_DEADLINE_SECONDS)
    outcomes = [_settle(jobs, job_id, f"no progress for {PROCESSING_DEADLINE_SECONDS} s while processing")
                for job_id in jobs.jobs.stale_ids("processing", deadline)]
    return {"failed": outcomes.count("failed"), "redriven": outcomes.count("redriven")}


def sweep_dead_letters(jobs: JobService) -> dict[str, int]:
    counts = {"failed": 0, "redriven": 0}
    for _ in range(MAX_DLQ_BATCHES):
        messages = jobs_queue.receive_dead_letters()
        if not messages:
            break
        for message in messages:
            try:
                job_id = json.loads(message["Body"])["job_id"]
            except (ValueError, KeyError, TypeError):
                job_id = None  # a malformed message names no job; it is only removed
            if isinstance(job_id, str):
                outcome = _settle(jobs, job_id, "dead-lettered: the worker failed on every delivery")
                if outcome is None:  # keep the message: deleting it would strand the job in `queued`
                    continue
                if outcome in counts:
                    counts[outcome] += 1
            jobs_queue.delete_dead_letter(message)
    return counts


def sweep() -> dict[str, Any]:
    """One sweep; returns how many jobs each rule failed. An unreachable DLQ skips that rule only."""
    result: dict[str, Any] = {"relayed": None, "stuck": None, "dead_lettered": None}
    try:
        relay = get_outbox_relay()
        result["relayed"] = relay.drain(budget_seconds=RELAY_BUDGET_SECONDS, ignore_backoff=True).sent
        relay.outbox.purge_sent(SENT_OUTBOX_KEPT_SECONDS)
    except Exception:
        logger.exception("outbox relay unavailable; unsent events wait for the next sweep")
    jobs = JobService()
    result["stuck"] = sweep_stuck(jobs)
    try:
        result["dead_lettered"] = sweep_dead_letters(jobs)
    except Exception:
        logger.exception("jobs DLQ unavailable; dead letters not swept this time")
    logger.info("job sweep done", extra=result)
    return result
