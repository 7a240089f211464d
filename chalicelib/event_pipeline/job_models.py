"""The job read models the event handler keeps in Redis: `events:job:<job_id>`, a hash of status, progress,
last_event_type, last_event_at and cluster_id, served by `job_event_state` at GET /api/v1/jobs/{job_id}/event-state.

One Lua function (`APPLY_LUA`, `apply_job`) is the only writer: progress only rises (`job_completed` sets 100), a
final status (completed/failed) is never overwritten by a late non-final event, and last_event_type/last_event_at
only move forward in event time. The event handler's batch script (`handler._JOB_READ_MODELS`) calls it for each of
a batch's job events, with their ledger marks in the same atomic step; the write ceiling of `bench/bench_events.py`
calls the same script for a batch's job events (the job-state rows a bare client writes).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

JOB_KEY = "events:job:"
READ_MODEL_TTL_SECONDS = 7 * 24 * 3600
STATUS_OF = {"job_requested": "queued", "job_started": "processing", "job_progress": "processing",
             "job_completed": "completed", "job_failed": "failed"}

# apply_job(key, status, progress (-1 = none), event type, event time (fixed-width UTC text), cluster id, ttl)
APPLY_LUA = """
local final = {completed = true, failed = true}
local function apply_job(key, status, progress, event_type, at, cluster_id, ttl)
  local cur = redis.call('HMGET', key, 'status', 'progress', 'last_event_at')
  if not (cur[1] and final[cur[1]]) then
    redis.call('HSET', key, 'status', status)
  end
  progress = tonumber(progress)
  if progress >= 0 and (not cur[2] or progress > tonumber(cur[2])) then
    redis.call('HSET', key, 'progress', progress)
  end
  if not cur[3] or at >= cur[3] then
    redis.call('HSET', key, 'last_event_type', event_type, 'last_event_at', at)
  end
  redis.call('HSET', key, 'cluster_id', cluster_id)
  redis.call('EXPIRE', key, ttl)
end
"""
ARGS_PER_JOB = 6


def _utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def model_key(job_id: str) -> str:
    return JOB_KEY + job_id


def model_args(event: Any) -> list[Any]:
    """`apply_job`'s arguments after the key (ARGS_PER_JOB of them) for a job event (`model.JobEvent`)."""
    progress = 100 if event.type == "job_completed" else (-1 if event.progress is None else event.progress)
    return [STATUS_OF[event.type], progress, event.type, _utc_text(event.timestamp), event.cluster_id,
            READ_MODEL_TTL_SECONDS]


def job_event_state(redis: Any, job_id: str) -> dict[str, Any] | None:
    """The job as its events last described it (served at GET /api/v1/jobs/{job_id}/event-state), or
    None when no event about it was handled within READ_MODEL_TTL_SECONDS."""
    state = redis.hgetall(JOB_KEY + job_id)
    if not state:
        return None
    progress = state.get("progress")
    return {"job_id": job_id, "cluster_id": state.get("cluster_id"), "status": state.get("status"),
            "progress": None if progress is None else int(progress), "last_event_type": state.get("last_event_type"),
            "last_event_at": state.get("last_event_at")}
