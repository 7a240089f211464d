"""job_sweeper: a job stuck in `processing` past the deadline is failed with the reason; others are not."""
from __future__ import annotations

from chalicelib import db
from chalicelib.functions import job_sweeper


def test_a_job_stuck_in_processing_is_failed_and_a_fresh_one_is_left(client, make_cluster):
    cluster = make_cluster()
    ids = [client.post("/api/v1/jobs", {"type": "diagnose", "parameters": {"cluster_id": cluster["id"]}}).json["job"]["id"]
           for _ in range(3)]
    stuck, fresh, queued = ids
    with db.transaction() as cur:
        cur.execute("UPDATE jobs SET status = 'processing' WHERE id IN (%s, %s)", (stuck, fresh))
        cur.execute("UPDATE jobs SET updated_at = UTC_TIMESTAMP(6) - INTERVAL 1 HOUR WHERE id IN (%s, %s)",
                    (stuck, queued))

    result = job_sweeper.sweep()
    assert result["stuck"] == 1
    jobs = {i: client.get(f"/api/v1/jobs/{i}").json["job"] for i in ids}
    assert jobs[stuck]["status"] == "failed" and "while processing" in jobs[stuck]["error"]
    assert jobs[fresh]["status"] == "running" and jobs[queued]["status"] == "queued"  # `processing` on the wire
    assert job_sweeper.sweep()["stuck"] == 0  # nothing left to sweep


def test_dead_letters_fail_their_jobs_but_a_job_held_by_another_writer_keeps_its_message(client, make_cluster,
                                                                                         monkeypatch):
    """moto's in-process SQS stands in for the DLQ (only our receive/delete calls matter here); the row
    lock is a real second MariaDB session, so the sweeper meets a real lock wait."""
    import json

    import boto3
    from moto import mock_aws

    from chalicelib import aws
    from chalicelib.settings import get_settings

    cluster = make_cluster()
    queued, held, done = [client.post("/api/v1/jobs", {"type": "diagnose", "parameters": {
        "cluster_id": cluster["id"]}}).json["job"]["id"] for _ in range(3)]
    with db.transaction() as cur:
        cur.execute("UPDATE jobs SET status = 'completed', progress = 100 WHERE id = %s", (done,))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.client.cache_clear()
    locker = db.connect()
    try:
        with mock_aws():
            sqs = boto3.client("sqs", region_name="us-east-1")
            url = sqs.create_queue(QueueName=get_settings().jobs_dlq_name)["QueueUrl"]
            for job_id in (queued, held, done):
                sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"job_id": job_id, "trace_id": "t"}))
            with locker.cursor() as cur:
                cur.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (held,))
            assert job_sweeper.sweep_dead_letters(job_sweeper.JobService()) == 1
            locker.rollback()
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
            assert attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"  # the held job's
    finally:
        locker.close()
        aws.client.cache_clear()
    jobs = {i: client.get(f"/api/v1/jobs/{i}").json["job"] for i in (queued, held, done)}
    assert jobs[queued]["status"] == "failed" and jobs[queued]["error"].startswith("dead-lettered")
    assert jobs[held]["status"] == "queued" and jobs[done]["status"] == "completed"
