"""Pure logic, no service: the job status machine, the job spec a JobService validates, the error table."""
from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.errors import (
    AuthenticationError, ClusterGenieError, ConflictError, DependencyUnavailableError, IdempotencyKeyReusedError,
    NotFoundError, PayloadTooLargeError, PermissionDeniedError, RateLimitedError, ServiceUnavailableError,
    ValidationError,
)
from chalicelib.models.requests import JobSpec
from chalicelib.models.validation import validate
from chalicelib.services import job_state

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def job(status: str, progress: int = 0) -> dict:
    return {"id": "job-1", "status": status, "progress": progress}


def test_the_status_machine_moves_and_stamps():
    assert job_state.next_state(job("queued"), "processing", progress=5, now=NOW) == {
        "status": "processing", "progress": 5, "started_at": NOW.replace(tzinfo=None)}
    done = job_state.next_state(job("processing", 40), "completed", result={"ok": 1}, now=NOW)
    assert done == {"status": "completed", "progress": 100, "completed_at": NOW.replace(tzinfo=None), "error": None,
                    "result": {"ok": 1}}
    failed = job_state.next_state(job("queued"), "failed", error="x" * 3000, now=NOW)
    assert failed["status"] == "failed" and len(failed["error"]) == job_state.MAX_ERROR_CHARS


@pytest.mark.parametrize("current,new", [("completed", "processing"), ("failed", "completed"), ("queued", "completed")])
def test_final_and_skipped_states_are_illegal_moves(current, new):
    with pytest.raises(job_state.IllegalTransition):
        job_state.next_state(job(current), new)


def test_progress_is_bounded_and_never_goes_down():
    with pytest.raises(job_state.IllegalTransition, match="cannot go down"):
        job_state.next_state(job("processing", 50), "processing", progress=40)
    for bad in (-1, 101, 2.5, True):
        with pytest.raises(ValidationError):
            job_state.next_state(job("processing"), "processing", progress=bad)
    with pytest.raises(ValidationError, match="unknown job status"):
        job_state.next_state(job("queued"), "paused")


def test_a_job_spec_takes_internal_types_and_the_clients_parameter_rules():
    spec = validate(JobSpec, {"type": "deploy", "cluster_id": "cluster-1",
                              "parameters": {"cluster_id": "cluster-1", "deployment_id": "dep-1"}})
    assert spec.type == "deploy" and spec.parameters["deployment_id"] == "dep-1"
    with pytest.raises(ValidationError, match="type"):
        validate(JobSpec, {"type": "reboot", "cluster_id": "c", "parameters": {}})
    with pytest.raises(ValidationError, match="parameters"):
        validate(JobSpec, {"type": "scale", "cluster_id": "c", "parameters": {"bad key!": "1"}})
    with pytest.raises(ValidationError, match="parameters"):
        validate(JobSpec, {"type": "scale", "cluster_id": "c", "parameters": {"replicas": 3}})  # values are text
    with pytest.raises(ValidationError, match="cluster_id"):
        validate(JobSpec, {"type": "scale", "cluster_id": "", "parameters": {}})


def test_the_edge_maps_each_domain_error_to_one_status():
    from chalicelib.http import STATUS_FOR, domain_error_response

    expected = {ValidationError: 400, AuthenticationError: 401, PermissionDeniedError: 403, NotFoundError: 404,
                PayloadTooLargeError: 413, ConflictError: 409, RateLimitedError: 429, ServiceUnavailableError: 503,
                job_state.IllegalTransition: 409, IdempotencyKeyReusedError: 422, ClusterGenieError: 500}
    for error, status in expected.items():
        response = domain_error_response(error("what went wrong"), {"Retry-After": "1"})
        assert response.status_code == status and response.body == {"error": "what went wrong"}
        assert response.headers["Retry-After"] == "1" and response.headers["Content-Type"] == "application/json"
    unavailable = domain_error_response(DependencyUnavailableError("mariadb"))  # issue 17: with a Retry-After
    assert unavailable.status_code == 503 and unavailable.body == {"error": "mariadb unavailable; retry later"}
    assert int(unavailable.headers["Retry-After"]) > 0
    assert set(STATUS_FOR) <= set(expected) | {DependencyUnavailableError}
