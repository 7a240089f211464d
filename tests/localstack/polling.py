"""Waiting for the deployed stack: the one polling helper of the LocalStack and browser tiers."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, *, interval: float = 0.5, what: str = "condition") -> T:
    """Poll until predicate() returns something truthy and return it; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


FINAL_JOB_STATUSES = ("completed", "failed")


def wait_for_job(read: Callable[[], dict | None], timeout: float, *, interval: float = 0.5, what: str = "the job") -> dict:
    """Poll `read()` (the job as the API or the database has it) until the job has ended (completed or failed),
    and return it; every read goes through `read`, so a caller may record what it saw on the way."""
    def ended() -> dict | None:
        job = read()
        return job if job and job["status"] in FINAL_JOB_STATUSES else None

    return wait_for(ended, timeout, interval=interval, what=what)
