"""job_sweeper: a job stuck in `processing` past the deadline, or dead-lettered, is failed with the reason
when its deliveries failed for an error of its own; when they failed for want of a dependency (no error
of its own recorded) it is handed back to the queue instead (issue 17)."""
from __future__ import annotations

from chalicelib import db
from chalicelib.functions import job_sweeper


def test_a_stuck_job_is_failed_for_its_own_error_and_redriven_otherwise(client, make_cluster, job_queue):  # noqa: ANN001
    from chalicelib.repositories import JobRepository

    cluster = make_cluster()
    ids = [job_sweeper.JobService().submit("monitor", cluster["id"], {}).id for _ in range(4)]  # past the limiter
    stuck, outage, fresh, queued = ids
    JobRepository().note_attempt_error(stuck, "KeyError: 'size'")
    with db.transaction() as cur:
        cur.execute("UPDATE jobs SET status = 'processing' WHERE id IN (%s, %s, %s)", (stuck, outage, fresh))
        cur.execute("UPDATE jobs SET updated_at = UTC_TIMESTAMP(6) - INTERVAL 1 HOUR WHERE id IN (%s, %s, %s)",
                    (stuck, outage, queued))
    sent_before = job_queue.sent_job_ids().count(outage)

    result = job_sweeper.sweep()
    assert result["stuck"] == {"failed": 1, "redriven": 1}
    jobs = {i: client.get(f"/api/v1/jobs/{i}").json["job"] for i in ids}
    assert jobs[stuck]["status"] == "failed" and "while processing" in jobs[stuck]["error"]
    assert "the job's own error: KeyError: 'size'" in jobs[stuck]["error"]
    assert jobs[outage]["status"] == "running" and job_queue.sent_job_ids().count(outage) == sent_before + 1
    assert JobRepository().attempt_record(outage) == (None, 1)
    assert jobs[fresh]["status"] == "running" and jobs[queued]["status"] == "queued"  # `processing` on the wire
    assert job_sweeper.sweep()["stuck"] == {"failed": 0, "redriven": 0}  # the redrive touched it: not stale now


def test_a_job_redriven_too_often_is_failed_saying_so(client, make_cluster, job_queue):  # noqa: ANN001
    cluster = make_cluster()
    job_id = job_sweeper.JobService().submit("monitor", cluster["id"], {}).id
    with db.transaction() as cur:
        cur.execute("UPDATE jobs SET status = 'processing', redrives = %s, "
                    "updated_at = UTC_TIMESTAMP(6) - INTERVAL 1 HOUR WHERE id = %s", (job_sweeper.MAX_REDRIVES, job_id))
    assert job_sweeper.sweep()["stuck"] == {"failed": 1, "redriven": 0}
    job = client.get(f"/api/v1/jobs/{job_id}").json["job"]
    assert job["status"] == "failed" and "redrives with no error of the job's own" in job["error"]


def test_dead_letters_fail_their_jobs_but_a_job_held_by_another_writer_keeps_its_message(client, make_cluster,
                                                                                         monkeypatch, job_queue):
    """moto's in-process SQS stands in for the DLQ (only our receive/delete calls matter here); the row
    lock is a real second MariaDB session, so the sweeper meets a real lock wait."""
    import json

    import boto3
    from moto import mock_aws

    from chalicelib import aws
    from chalicelib.settings import get_settings

    cluster = make_cluster()
    from chalicelib.repositories import JobRepository

    queued, held, done, outage = [job_sweeper.JobService().submit("monitor", cluster["id"], {}).id for _ in range(4)]
    for job_id in (queued, held):
        JobRepository().note_attempt_error(job_id, "ValueError: bad parameters")
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
            for job_id in (queued, held, done, outage):
                sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"job_id": job_id, "trace_id": "t"}))
            with locker.cursor() as cur:
                cur.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (held,))
            assert job_sweeper.sweep_dead_letters(job_sweeper.JobService()) == {"failed": 1, "redriven": 1}
            locker.rollback()
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
            assert attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"  # the held job's
    finally:
        locker.close()
        aws.client.cache_clear()
    jobs = {i: client.get(f"/api/v1/jobs/{i}").json["job"] for i in (queued, held, done, outage)}
    assert jobs[queued]["status"] == "failed" and jobs[queued]["error"].startswith("dead-lettered")
    assert "the job's own error: ValueError: bad parameters" in jobs[queued]["error"]
    assert jobs[outage]["status"] == "queued" and job_queue.sent_job_ids().count(outage) == 2  # submitted, redriven
    assert jobs[held]["status"] == "queued" and jobs[done]["status"] == "completed"
