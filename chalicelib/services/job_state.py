"""The job status machine, in one place: the API, the job worker and the sweeper all go through it.

    queued ──▶ processing ──▶ completed
       │            │ ▲
       │            └─┘ (progress reports)
       └────────────┴──▶ failed

`completed` and `failed` are final. Progress is an integer 0..100 that never goes down; a completed
job is at 100. A queued job may fail directly (it could not be enqueued, or it was dead-lettered).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from chalicelib.errors import ConflictError, ValidationError
from chalicelib.models.domain import JobStatus

TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"processing", "failed"}),
    "processing": frozenset({"processing", "completed", "failed"}),
    "completed": frozenset(),
    "failed": frozenset(),
}
FINAL_STATUSES = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
MAX_ERROR_CHARS = 2000


class IllegalTransition(ConflictError):
    """The requested change breaks the status machine (409): the job is left as it was."""


def can_transition(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def next_state(job: Mapping[str, Any], new_status: JobStatus | str, *, progress: int | None = None,
               result: Any = None, error: str | None = None,
               now: dt.datetime | None = None) -> dict[str, Any]:
    """The fields to write to move `job` (which has `id`, `status`, `progress`) to `new_status`.

    Raises IllegalTransition for a forbidden move or a decreasing progress, ValidationError for a
    progress outside 0..100 or an unknown status. Pure: it reads nothing and writes nothing.
    """
    current = job["status"]
    if new_status not in TRANSITIONS:
        raise ValidationError(f"status: unknown job status {new_status!r}")
    if not can_transition(current, new_status):
        raise IllegalTransition(f"job {job['id']} cannot go from {current} to {new_status}")
    if progress is not None:
        if isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100:
            raise ValidationError("progress: must be an integer between 0 and 100")
        if progress < job["progress"]:
            raise IllegalTransition(f"job {job['id']}: progress cannot go down ({job['progress']} -> {progress})")
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(tzinfo=None)

    state: dict[str, Any] = {"status": new_status}
    if progress is not None:
        state["progress"] = progress
    if current == "queued" and new_status == "processing":
        state["started_at"] = now
    if new_status == "completed":
        state["progress"] = 100
        state["completed_at"] = now
        state["error"] = None
    if new_status == "failed":
        state["completed_at"] = now
        state["error"] = (error or "failed")[:MAX_ERROR_CHARS]
    elif error is not None and new_status != "completed":
        state["error"] = error[:MAX_ERROR_CHARS]
    if result is not None:
        state["result"] = result
    return state
