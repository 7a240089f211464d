"""GET /api/v1/observability/workerpool: jobs by status from the database, queue figures from SQS."""
from __future__ import annotations


def test_workerpool_reports_jobs_by_status_and_the_queue_figures(client, make_cluster, job_queue):
    cluster = make_cluster()
    for _ in range(2):
        assert client.post("/api/v1/jobs", {"type": "diagnose", "parameters": {"cluster_id": cluster["id"]}}).status_code == 201

    response = client.get("/api/v1/observability/workerpool")
    assert response.status_code == 200
    body = response.json
    assert body["jobs_by_status"] == {"queued": 2, "processing": 0, "completed": 0, "failed": 0}
    assert body["queue_name"] == "clustergenie-jobs" and body["dlq_name"] == "clustergenie-jobs-dlq"
    # The original's fields, mapped onto the SQS worker.
    assert body["worker_count"] == 10 and body["queue_capacity"] == 120_000
    queued = [j["id"] for j in client.get("/api/v1/jobs?sort_by=created_at&sort_dir=asc").json["jobs"]]
    assert sorted(body["queued_ids"]) == sorted(queued) and len(queued) == 2
    # The fast tier may run without LocalStack: then the queue figures are null and the reason is given.
    if body["queue_error"] is None:
        assert all(isinstance(body[k], int) for k in ("queue_length", "active_workers", "dlq_depth"))
    else:
        assert body["queue_length"] is None and body["active_workers"] is None and body["dlq_depth"] is None
