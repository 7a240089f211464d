"""job_sweeper: the scheduled function that ends jobs no worker will finish.

- A job in `processing` not updated for PROCESSING_DEADLINE_SECONDS: its worker died and every retry
  failed, or the message is gone. It is marked `failed` with that reason.
- A message in the jobs DLQ: its job exhausted maxReceiveCount. The job is marked `failed` and the
  message deleted (a redrive would only be acknowledged: the job is final).
Each job goes through JobService.transition, so a job that finished meanwhile is left alone.

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


def sweep_stuck(jobs: JobService, now: dt.datetime | None = None) -> int:
    now = (now or dt.datetime.now(dt.timezone.utc)).replace(tzinfo=None)
    deadline = now - dt.timedelta(seconds=PROCESSING_DEADLINE_SECONDS)
    return sum(bool(_fail(jobs, job_id, f"no progress for {PROCESSING_DEADLINE_SECONDS} s while processing"))
               for job_id in jobs.jobs.stale_ids("processing", deadline))


def sweep_dead_letters(jobs: JobService) -> int:
    swept = 0
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
                outcome = _fail(jobs, job_id, "dead-lettered: the worker failed on every delivery")
                if outcome is None:  # keep the message: deleting it would strand the job in `queued`
                    continue
                swept += outcome
            jobs_queue.delete_dead_letter(message)
    return swept


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
