"""JobService's domain calls (submit, start, report_progress, complete, fail) and the autoscaling service's
`react_to_alert`, against the real database and the in-memory job queue.

Events are read back from the outbox table, where JobService writes them in the transaction of the state
they announce (the relay and the Kafka path are covered by test_outbox, test_job_worker and the LocalStack tier).
"""
from __future__ import annotations

import json

import pytest

from chalicelib.errors import NotFoundError, ServiceUnavailableError, ValidationError
from chalicelib.services.autoscaling import AutoscalingService
from chalicelib.services.job_state import IllegalTransition
from chalicelib.services.jobs import JobService


class OutboxEvents:
    """The events in the outbox, in the order they were written."""

    @property
    def events(self) -> list[dict]:
        from chalicelib.repositories.outbox import OutboxRepository

        return [json.loads(row["body"]) for row in OutboxRepository().unsent(10_000)]


@pytest.fixture
def published(clean_db):  # noqa: ANN001
    return OutboxEvents()


@pytest.fixture
def jobs(clean_db, job_queue, published):  # noqa: ANN001
    return JobService()


@pytest.fixture
def cluster_id(clean_db):  # noqa: ANN001
    from chalicelib.repositories import ClusterRepository

    return ClusterRepository().create("svc", "nyc3")["id"]


def test_submit_validates_before_anything_is_stored(jobs, cluster_id, snapshot, job_queue, published):
    before = snapshot()
    with pytest.raises(ValidationError, match="type"):
        jobs.submit("reboot", cluster_id, {})
    with pytest.raises(ValidationError, match="parameters"):
        jobs.submit("scale", cluster_id, {"replicas": 3})  # an internal caller passing a number, not text
    with pytest.raises(NotFoundError):
        jobs.submit("scale", "cluster-missing", {"delta": "1"})
    assert snapshot() == before and job_queue.messages == [] and published.events == []


def test_submit_stores_announces_then_queues_an_internal_job(jobs, cluster_id, job_queue, published):
    job = jobs.submit("deploy", cluster_id, {"deployment_id": "dep-1", "action": "rollout"},
                      correlation_id="req-7", caller="deployments")
    assert (job.type, job.status, job.cluster_id) == ("deploy", "queued", cluster_id)
    assert job.parameters == {"deployment_id": "dep-1", "action": "rollout", "cluster_id": cluster_id}
    assert job_queue.sent_job_ids() == [job.id]
    [requested] = published.events
    assert requested["type"] == "job_requested" and requested["correlation_id"] == "req-7"
    assert requested["payload"] == {"parameters": job.parameters, "caller": "deployments"}
    assert requested["trace_id"] == job.trace_id


def test_submit_checks_inserts_and_announces_in_one_commit_then_sends(jobs, cluster_id, job_queue, monkeypatch):
    """The quota read, the cluster's share lock, the insert and its event: four statements, one commit (issue 16),
    and the message only after that commit (a message never names a job that is not stored)."""
    import pymysql.connections

    trace: list[str] = []
    connection = pymysql.connections.Connection
    real_query, real_commit, real_send = connection.query, connection.commit, job_queue.send
    monkeypatch.setattr(connection, "query", lambda conn, sql, unbuffered=False: (
        trace.append("statement"), real_query(conn, sql, unbuffered))[1])
    monkeypatch.setattr(connection, "commit", lambda conn: (trace.append("commit"), real_commit(conn))[1])
    monkeypatch.setattr(job_queue, "send", lambda job: (trace.append("send"), real_send(job))[1])
    job = jobs.submit("provision", cluster_id, {})
    assert trace == ["statement"] * 4 + ["commit", "send"]
    assert job_queue.sent_job_ids() == [job.id] and jobs.get(job.id).status == "queued"


def test_each_move_is_saved_then_announced_with_the_saved_state(jobs, cluster_id, published):
    job = jobs.submit("monitor", cluster_id, {})
    started = jobs.start(job, correlation_id="msg-1")
    assert (started.status, started.progress) == ("processing", 5)
    assert jobs.start(started, correlation_id="msg-2").progress == 5  # a redelivery resumes, no second move
    moved = jobs.report_progress(job.id, 60, "halfway", result={"step": 1}, correlation_id="msg-2")
    done = jobs.complete(job.id, {"metrics": {}}, correlation_id="msg-2")
    assert (moved.progress, moved.result, done.status, done.progress) == (60, {"step": 1}, "completed", 100)
    assert [(e["type"], e["progress"]) for e in published.events] == [
        ("job_requested", 0), ("job_started", 5), ("job_started", 5), ("job_progress", 60), ("job_completed", 100)]
    assert published.events[-1]["payload"] == {"result": {"metrics": {}}}
    assert jobs.get(job.id).status == "completed"
    with pytest.raises(IllegalTransition):
        jobs.fail(job.id, "too late")
    assert len(published.events) == 5  # a refused move announces nothing


def test_a_start_with_its_first_report_and_a_completion_with_its_last_are_one_write_each(jobs, cluster_id, published,
                                                                                        monkeypatch):
    """Issue 16: two moves of a job the caller holds are one UPDATE, each still announced in order with its state;
    the row ends as the two moves one after the other would have left it."""
    import pymysql.connections

    job = jobs.submit("provision", cluster_id, {})
    updates: list[str] = []
    real_query = pymysql.connections.Connection.query
    monkeypatch.setattr(pymysql.connections.Connection, "query", lambda conn, sql, unbuffered=False: (
        updates.append(sql) if sql.startswith("UPDATE jobs") else None, real_query(conn, sql, unbuffered))[1])
    started = jobs.start(job, "msg-1", first_report=(30, "recorded", {"droplet_id": "d-1"}))
    assert len(updates) == 1
    row = jobs.get(job.id)
    assert (row.status, row.progress, row.result, row.version) == ("processing", 30, {"droplet_id": "d-1"}, job.version + 1)
    assert row.started_at is not None and started.model_dump() == row.model_dump()
    done = jobs.complete(job.id, {"droplet_id": "d-1"}, "msg-1", last_seen=started, last_report=(90, "active"))
    assert len(updates) == 2
    row = jobs.get(job.id)
    assert (row.status, row.progress, row.completed_at is not None) == ("completed", 100, True)
    assert done.model_dump() == row.model_dump()
    assert [(e["type"], e["progress"], e["message"]) for e in published.events] == [
        ("job_requested", 0, "job requested"), ("job_started", 5, "provision job started"),
        ("job_progress", 30, "recorded"), ("job_progress", 90, "active"), ("job_completed", 100, "provision job completed")]


def test_a_start_with_its_first_report_on_a_job_moved_meanwhile_is_decided_again_and_refused(jobs, cluster_id,
                                                                                            published):
    job = jobs.submit("provision", cluster_id, {})
    jobs.fail(job.id, "dead-lettered")  # the sweeper, after the worker read the job
    with pytest.raises(IllegalTransition):
        jobs.start(job, "msg-1", first_report=(30, "recorded", {"droplet_id": "d-1"}))
    assert jobs.get(job.id).status == "failed"
    assert [e["type"] for e in published.events] == ["job_requested", "job_failed"]


def test_fail_saves_the_reason_and_announces_it(jobs, cluster_id, published):
    job = jobs.submit("diagnose", cluster_id, {})
    failed = jobs.fail(job.id, "provider refused", correlation_id="msg-9")
    assert (failed.status, failed.error) == ("failed", "provider refused")
    last = published.events[-1]
    assert (last["type"], last["message"], last["payload"], last["correlation_id"]) == (
        "job_failed", "provider refused", {"error": "provider refused"}, "msg-9")


def test_a_refused_enqueue_fails_the_job_and_says_so(jobs, cluster_id, job_queue, published):
    job_queue.fail_with = ConnectionError("queue down")
    with pytest.raises(ServiceUnavailableError, match="was marked failed"):
        jobs.submit("scale", cluster_id, {"delta": "1"}, correlation_id="req-1")
    assert [e["type"] for e in published.events] == ["job_requested", "job_failed"]
    failed = jobs.get(published.events[-1]["job_id"])
    assert failed.status == "failed" and failed.error.startswith("enqueue failed: ConnectionError")


def test_an_alert_on_a_cluster_without_policies_scales_once_per_cool_down(jobs, cluster_id, job_queue):
    service = AutoscalingService(jobs=jobs)
    first = service.react_to_alert(cluster_id, parameters={"delta": "1"}, cooldown_seconds=300, correlation_id="a1")
    again = service.react_to_alert(cluster_id, parameters={"delta": "1"}, cooldown_seconds=300, correlation_id="a2")
    assert first.job_id is not None and not first.cooled_down and first.evaluation.evaluated == 0
    assert again.job_id is None and again.cooled_down
    assert job_queue.sent_job_ids() == [first.job_id]
    with pytest.raises(NotFoundError):
        service.react_to_alert("cluster-missing", parameters={}, cooldown_seconds=300)


def test_an_alert_whose_job_cannot_be_queued_gives_the_cool_down_back(jobs, cluster_id, job_queue):
    service = AutoscalingService(jobs=jobs)
    job_queue.fail_with = ConnectionError("queue down")
    with pytest.raises(ServiceUnavailableError):
        service.react_to_alert(cluster_id, parameters={"delta": "1"}, cooldown_seconds=300)
    job_queue.fail_with = None
    retried = service.react_to_alert(cluster_id, parameters={"delta": "1"}, cooldown_seconds=300)
    assert retried.job_id is not None and job_queue.sent_job_ids() == [retried.job_id]
