"""Jobs: creation hands the stored job to the JobQueue; listing pages exactly; the status machine holds."""
from __future__ import annotations

import json
import re
import uuid

import pytest

from chalicelib.errors import ConflictError, NotFoundError, ValidationError
from chalicelib.jobs_queue import SqsJobQueue
from chalicelib.services.job_state import IllegalTransition
from chalicelib.services.jobs import JobService


def create_job(client, cluster_id: str, job_type: str = "scale", **params: str):
    # A caller of its own per job: these tests are about jobs, not about the `jobs_create` limit.
    return client.post("/api/v1/jobs", {"type": job_type, "parameters": {"cluster_id": cluster_id, **params}},
                       headers={"X-User-ID": f"user-{uuid.uuid4()}"})


def test_create_job_stores_it_queued_and_enqueues_it(client, make_cluster, job_queue):
    cluster = make_cluster()
    response = create_job(client, cluster["id"], "scale", action="scale_up")
    assert response.status_code == 201 and set(response.json) == {"job", "message"}
    job = response.json["job"]
    assert re.fullmatch(r"job-[0-9a-f-]{36}", job["id"])
    assert job["status"] == "queued" and job["progress"] == 0 and job["cluster_id"] == cluster["id"]
    # The original's encoding: the parameters as JSON text, keys sorted, no spaces.
    assert job["parameters"] == json.dumps({"action": "scale_up", "cluster_id": cluster["id"]}, separators=(",", ":"))
    assert not {"result", "error", "completed_at", "started_at"} & set(job)  # omitted while empty, never null
    uuid.UUID(job["trace_id"])

    [message] = job_queue.messages
    assert json.loads(message["MessageBody"]) == {"job_id": job["id"], "trace_id": job["trace_id"]}
    assert message["MessageAttributes"]["job_type"] == {"DataType": "String", "StringValue": "scale"}

    got = client.get(f"/api/v1/jobs/{job['id']}")
    assert got.status_code == 200 and got.json == {"job": job, "message": "Job retrieved"}


def test_list_jobs_pages_sorts_and_counts_exactly(client, make_cluster):
    cluster = make_cluster()
    ids = [create_job(client, cluster["id"]).json["job"]["id"] for _ in range(7)]

    first = client.get("/api/v1/jobs?page=1&page_size=3&sort_by=id&sort_dir=asc").json
    second = client.get("/api/v1/jobs?page=2&page_size=3&sort_by=id&sort_dir=asc").json
    third = client.get("/api/v1/jobs?page=3&page_size=3&sort_by=id&sort_dir=asc").json
    assert (first["page"], first["page_size"], first["total"]) == (1, 3, 7)
    assert [j["id"] for j in first["jobs"] + second["jobs"] + third["jobs"]] == sorted(ids)

    newest_first = client.get("/api/v1/jobs?page_size=100").json
    assert [j["id"] for j in newest_first["jobs"]] == list(reversed(ids))
    assert newest_first["total"] == 7 and newest_first["page"] == 1

    defaults = client.get("/api/v1/jobs").json
    assert defaults["page_size"] == 5 and len(defaults["jobs"]) == 5 and defaults["total"] == 7
    assert client.get("/api/v1/jobs?page=9").json == {"jobs": [], "page": 9, "page_size": 5, "total": 7}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort_by=drop%20table", "sort_by"),
        ("sort_by=created_at;DROP TABLE jobs", "sort_by"),
        ("sort_dir=sideways", "sort_dir"),
        ("sort_by=progress", "sort_by"),
    ],
)
def test_list_jobs_rejects_bad_paging(client, query, field):
    response = client.get(f"/api/v1/jobs?{query}")
    assert response.status_code == 400 and field in response.json["error"]


@pytest.mark.parametrize(
    ("query", "page", "page_size"),
    [("page=0", 1, 5), ("page=-1", 1, 5), ("page=abc", 1, 5), ("page=", 1, 5), ("page_size=0", 1, 5),
     ("page_size=10000", 1, 100), ("_=123&limit=5", 1, 5)],
)
def test_list_jobs_paging_falls_back_as_the_original_did(client, query, page, page_size):
    # Not positive integers -> the defaults; above the maximum -> the maximum; unread parameters ignored.
    response = client.get(f"/api/v1/jobs?{query}")
    assert response.status_code == 200
    assert (response.json["page"], response.json["page_size"]) == (page, page_size)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "destroy", "parameters": {"cluster_id": "c"}}, "type"),
        ({"type": 1, "parameters": {"cluster_id": "c"}}, "type"),
        ({"type": "scale"}, "parameters"),
        ({"type": "scale", "parameters": {}}, "cluster_id"),
        ({"type": "scale", "parameters": {"cluster_id": "  "}}, "cluster_id"),
        ({"type": "scale", "parameters": {"cluster_id": "c", "count": 3}}, "parameters.count"),
        ({"type": "scale", "parameters": "cluster_id=c"}, "parameters"),
        ({"type": "scale", "parameters": {"cluster_id": "c"}, "priority": "high"}, "priority"),
    ],
)
def test_create_job_rejects_bad_input(client, make_cluster, snapshot, job_queue, body, field):
    make_cluster()
    before = snapshot()
    response = client.post("/api/v1/jobs", body)
    assert response.status_code == 400 and field in response.json["error"]
    assert snapshot() == before and job_queue.messages == []


def test_create_job_for_a_missing_cluster_is_404(client, make_cluster, snapshot, job_queue):
    make_cluster()
    before = snapshot()
    response = create_job(client, "cluster-missing")
    assert response.status_code == 404 and response.json == {"error": "Cluster not found"}
    assert snapshot() == before and job_queue.messages == []


def test_enqueue_failure_marks_the_job_failed_and_answers_503(client, make_cluster, job_queue):
    cluster = make_cluster()
    job_queue.fail_with = ConnectionError("queue endpoint unreachable")
    response = create_job(client, cluster["id"])
    assert response.status_code == 503 and "marked failed" in response.json["error"]
    [job] = client.get("/api/v1/jobs").json["jobs"]
    assert job["status"] == "failed" and job["completed_at"] is not None
    assert job["error"].startswith("enqueue failed: ConnectionError: queue endpoint unreachable")


def test_missing_job_is_404(client):
    response = client.get("/api/v1/jobs/job-nope")
    assert response.status_code == 404 and response.json == {"error": "Job not found"}


def test_jobs_are_rate_limited_per_caller(client, make_cluster):
    cluster = make_cluster()
    body = {"type": "monitor", "parameters": {"cluster_id": cluster["id"]}}
    statuses = [client.post("/api/v1/jobs", body, headers={"X-User-ID": "alice"}).status_code for _ in range(5)]
    assert statuses[:3] == [201, 201, 201] and statuses[3:] == [429, 429]
    assert client.post("/api/v1/jobs", body, headers={"X-User-ID": "bob"}).status_code == 201


# --- the status machine --------------------------------------------------------------------------------
@pytest.fixture
def queued_job(client, make_cluster):
    return create_job(client, make_cluster()["id"]).json["job"]


def test_a_job_runs_queued_processing_completed(client, queued_job):
    service = JobService()
    job = service.transition(queued_job["id"], "processing", progress=10)
    assert (job.status, job.progress) == ("processing", 10) and job.started_at is not None
    job = service.transition(queued_job["id"], "processing", progress=60)
    assert job.progress == 60
    job = service.transition(queued_job["id"], "completed", result={"droplets_added": 1})
    assert (job.status, job.progress, job.result) == ("completed", 100, {"droplets_added": 1})
    assert job.completed_at is not None and job.error is None

    over_http = client.get(f"/api/v1/jobs/{queued_job['id']}").json["job"]
    assert over_http["status"] == "completed" and over_http["result"] == '{"droplets_added":1}'


def test_a_running_job_is_running_on_the_wire(client, queued_job):
    # The original's word for a job a worker is running (the console's "active" filter reads it).
    JobService().transition(queued_job["id"], "processing", progress=10)
    assert client.get(f"/api/v1/jobs/{queued_job['id']}").json["job"]["status"] == "running"


def test_a_job_can_fail_with_a_reason(queued_job):
    service = JobService()
    service.transition(queued_job["id"], "processing", progress=30)
    job = service.transition(queued_job["id"], "failed", error="provider refused")
    assert (job.status, job.progress, job.error) == ("failed", 30, "provider refused")


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], "completed"),                        # queued cannot skip processing
        ([], "queued"),
        (["processing"], "queued"),
        (["processing", "completed"], "processing"),
        (["processing", "completed"], "failed"),
        (["processing", "completed"], "completed"),
        (["failed"], "processing"),
        (["failed"], "completed"),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(queued_job, path, illegal):
    service = JobService()
    for status in path:
        service.transition(queued_job["id"], status)
    before = service.get(queued_job["id"])
    with pytest.raises(IllegalTransition):
        service.transition(queued_job["id"], illegal)
    assert service.get(queued_job["id"]) == before


def test_progress_never_decreases_and_stays_within_0_to_100(queued_job):
    service = JobService()
    service.transition(queued_job["id"], "processing", progress=50)
    with pytest.raises(IllegalTransition, match="progress cannot go down"):
        service.transition(queued_job["id"], "processing", progress=40)
    for bad in (-1, 101, 2.5, True):
        with pytest.raises(ValidationError):
            service.transition(queued_job["id"], "processing", progress=bad)
    with pytest.raises(IllegalTransition):
        service.transition(queued_job["id"], "failed", progress=10)
    assert service.get(queued_job["id"]).progress == 50
    assert service.transition(queued_job["id"], "processing", progress=50).progress == 50  # equal is fine


def test_a_stale_job_version_is_a_conflict(queued_job):
    service = JobService()
    row = service.jobs.get(queued_job["id"])
    service.transition(queued_job["id"], "processing")
    with pytest.raises(ConflictError):
        service.jobs.save_state(queued_job["id"], row["version"], {"status": "failed"})
    with pytest.raises(NotFoundError):
        service.transition("job-missing", "processing")


def test_sqs_job_queue_resolves_its_url_lazily_and_sends_the_reference(monkeypatch, queued_job):
    calls = []

    class FakeSqs:
        def get_queue_url(self, QueueName):  # noqa: N803 - boto3's spelling
            calls.append(("get_queue_url", QueueName))
            return {"QueueUrl": "http://127.0.0.1:4566/000000000000/" + QueueName}

        def send_message(self, **kwargs):
            calls.append(("send_message", kwargs))

    import chalicelib.aws

    monkeypatch.setattr(chalicelib.aws, "client", lambda service: FakeSqs())
    queue = SqsJobQueue("clustergenie-jobs")
    assert calls == []  # nothing resolved at construction
    job = JobService().get(queued_job["id"])
    queue.send(job)
    queue.send(job)
    assert [c[0] for c in calls] == ["get_queue_url", "send_message", "send_message"]
    sent = calls[1][1]
    assert sent["QueueUrl"].endswith("/clustergenie-jobs")
    assert json.loads(sent["MessageBody"]) == {"job_id": job.id, "trace_id": job.trace_id}
    assert sent["MessageAttributes"]["job_type"]["StringValue"] == job.type


@pytest.mark.parametrize("sort_by", ["created_at", "id"])
@pytest.mark.parametrize("sort_dir", ["asc", "desc"])
def test_every_job_listing_order_reads_an_index(mariadb, sort_by, sort_dir):  # noqa: ANN001
    from chalicelib import db
    from chalicelib.repositories.jobs import page_sql

    [plan] = db.query("EXPLAIN " + page_sql(sort_by, sort_dir), (50, 0))
    assert plan["key"] in ("idx_jobs_created", "PRIMARY") and "filesort" not in (plan["Extra"] or ""), plan
