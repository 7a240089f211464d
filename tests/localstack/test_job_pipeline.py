"""The job pipeline on LocalStack: API Gateway -> api -> SQS jobs queue -> the deployed job_worker
(its SQS event source mapping) -> MariaDB, Redis (idempotency) and cluster-events; the DLQ and the
deployed job_sweeper. Everything is the real deployed stack; the tests only add load and row locks.

Failures are provoked the way production meets them, without test hooks in the code:
- a poison message is a job whose row is locked by another transaction: every delivery waits out
  InnoDB's lock wait (`chalicelib.db.LOCK_WAIT_SECONDS`, per attempt) and fails with a conflict the
  worker leaves to SQS to retry;
- a worker killed mid-job is the job_worker's runtime process, found through /proc (its environment and
  the MariaDB connection that is waiting on a lock the test holds), killed with SIGKILL.
"""
from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pymysql
import pytest
from polling import wait_for, wait_for_job
from processes import function_pids, pid_with_local_port

pytestmark = pytest.mark.localstack



@pytest.fixture()
def api(stack):
    """`api(method, path, body=None, user=None)` -> (status, json) through API Gateway."""
    base = stack["api_url"].rstrip("/")

    def call(method: str, path: str, body: Any = None, user: str | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{base}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json",
                                                  # jobs_create is rate limited per caller: one caller per job
                                                  "X-User-ID": user or f"lstest-{uuid.uuid4().hex[:10]}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    return call


@pytest.fixture()
def cluster(app_db, unique):
    """A cluster written into the deployed app's database, removed (with its jobs and droplets) after."""
    cluster_id = f"{unique}-c"
    with app_db.cursor() as cur:
        cur.execute("INSERT INTO clusters (id, name, region) VALUES (%s, %s, %s)", (cluster_id, unique, "nyc3"))
    yield cluster_id
    with app_db.cursor() as cur:
        cur.execute("DELETE FROM clusters WHERE id = %s", (cluster_id,))


def insert_job(app_db, cluster_id: str, job_type: str = "provision", **parameters: str) -> tuple[str, str]:
    """A queued job row, as POST /jobs stores it; returns (job id, its SQS message body)."""
    job_id, trace_id = f"job-{uuid.uuid4()}", uuid.uuid4().hex
    with app_db.cursor() as cur:
        cur.execute("INSERT INTO jobs (id, cluster_id, type, status, trace_id, parameters) VALUES (%s, %s, %s, %s, %s, %s)",
                    (job_id, cluster_id, job_type, "queued", trace_id, json.dumps({"cluster_id": cluster_id, **parameters})))
    return job_id, json.dumps({"job_id": job_id, "trace_id": trace_id}, separators=(",", ":"))


def job(app_db, job_id: str) -> dict[str, Any]:
    with app_db.cursor() as cur:
        cur.execute("SELECT status, progress, error, result FROM jobs WHERE id = %s", (job_id,))
        return cur.fetchone()


def droplets(app_db, cluster_id: str) -> list[dict[str, Any]]:
    with app_db.cursor() as cur:
        cur.execute("SELECT * FROM droplets WHERE cluster_id = %s", (cluster_id,))
        return cur.fetchall()


@pytest.fixture()
def events(function_env):
    """`read(job_id, until_type)`: the job's events on cluster-events from the offsets the topic had when
    the test started, read by a fresh consumer group, in order."""
    from kafka import KafkaConsumer, TopicPartition

    topic = function_env.get("CG_EVENTS_TOPIC", "cluster-events")
    consumer = KafkaConsumer(bootstrap_servers=function_env.get("CG_KAFKA_BOOTSTRAP", "127.0.0.1:19092").split(","),
                             group_id=f"lstest-{uuid.uuid4()}", enable_auto_commit=False, consumer_timeout_ms=500)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    start = consumer.end_offsets(partitions)
    consumer.assign(partitions)

    # The documented bound for a job's events (docs/architecture.md, the outbox): the worker's relay publishes
    # them right after the batch; if it could not (its container backing off after a broker outage, as after
    # the fault tier), the job sweeper does within its minute. The wait is that bound, not the usual second.
    def read(job_id: str, until_type: str, timeout: float = 80.0, settle: float = 0.0) -> list[dict[str, Any]]:
        for tp in partitions:
            consumer.seek(tp, start[tp])
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        seen_at = None
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                found += [e for e in (json.loads(m.value) for m in batch) if e.get("job_id") == job_id]
            if seen_at is None and any(e["type"] == until_type for e in found):
                seen_at = time.monotonic()
            if seen_at is not None and time.monotonic() - seen_at >= settle:
                return found
        raise AssertionError(f"no {until_type} for {job_id}; got {[e['type'] for e in found]}")

    yield read
    consumer.close()


@pytest.fixture()
def visibility(stack, aws):
    """`visibility(seconds)`: set the jobs queue's VisibilityTimeout for this test; restored after."""
    sqs, url = aws("sqs"), stack["queues"]["jobs"]
    before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"])["Attributes"]

    def set_to(seconds: int) -> dict[str, Any]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(seconds)})
        return json.loads(before["RedrivePolicy"])

    yield set_to
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": before["VisibilityTimeout"]})


@pytest.fixture()
def locker(function_env):
    """A second database session that holds row locks (`FOR UPDATE`) until `release()`."""
    conn = pymysql.connect(host=function_env.get("CG_DB_HOST", "127.0.0.1"), port=int(function_env.get("CG_DB_PORT", "3306")),
                           user=function_env.get("CG_DB_USER", "clustergenie"), password=os.environ["CG_DB_PASSWORD"],
                           database=function_env.get("CG_DB_NAME", "clustergenie"), autocommit=False)

    class Locker:
        def lock(self, table: str, row_id: str) -> None:
            with conn.cursor() as cur:
                cur.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", (row_id,))
                assert cur.fetchone(), f"{table} {row_id} missing"

        def release(self) -> None:
            conn.rollback()

    yield Locker()
    conn.rollback()
    conn.close()


def test_a_provision_job_goes_from_post_to_completed_with_a_droplet_and_its_events_in_order(api, app_db, cluster,
                                                                                          events):
    status, body = api("POST", "/api/v1/jobs", {"type": "provision", "parameters": {"cluster_id": cluster}})
    assert status == 201, body
    job_id = body["job"]["id"]
    assert body["job"]["status"] == "queued"

    seen: list[tuple[str, int]] = []  # (status, progress) as a client polling the API sees them

    def read():
        code, answer = api("GET", f"/api/v1/jobs/{job_id}")
        assert code == 200, answer
        seen.append((answer["job"]["status"], answer["job"]["progress"]))
        return answer["job"]

    done = wait_for_job(read, timeout=60, interval=0.05, what=f"job {job_id} to finish")
    assert done["status"] == "completed", done
    progress = [p for _, p in seen]
    assert progress == sorted(progress) and progress[-1] == 100, seen

    [droplet] = droplets(app_db, cluster)
    assert droplet["status"] == "active" and droplet["ip_address"].startswith("10.")
    assert json.loads(done["result"])["droplet_id"] == droplet["id"]  # `result` is JSON text on the wire

    stream = events(job_id, "job_completed")
    types = [e["type"] for e in stream]
    assert types[:2] == ["job_requested", "job_started"] and types[-1] == "job_completed", types
    assert types.count("job_completed") == 1
    assert types.index("droplet_created") < types.index("job_completed") and "job_progress" in types
    event_progress = [e["progress"] for e in stream]
    assert event_progress == sorted(event_progress) and event_progress[-1] == 100, stream
    assert {e["trace_id"] for e in stream} == {done["trace_id"]}
    assert next(e for e in stream if e["type"] == "droplet_created")["payload"]["droplet"]["id"] == droplet["id"]


def test_the_same_message_delivered_twice_creates_one_droplet(stack, aws, app_db, cluster, events):
    job_id, body = insert_job(app_db, cluster)
    sqs = aws("sqs")
    for _ in range(2):  # the exact same body, two SQS messages: an at-least-once redelivery
        sqs.send_message(QueueUrl=stack["queues"]["jobs"], MessageBody=body,
                         MessageAttributes={"job_type": {"DataType": "String", "StringValue": "provision"}})
    assert wait_for_job(lambda: job(app_db, job_id), 60, what="the job")["status"] == "completed"
    stream = events(job_id, "job_completed", settle=5.0)  # time for the second delivery to be handled too
    assert [e["type"] for e in stream].count("job_completed") == 1
    assert [e["type"] for e in stream].count("job_started") == 1  # the duplicate did no work at all
    assert len(droplets(app_db, cluster)) == 1


def test_a_batch_with_one_poison_message_completes_nine_and_the_redriven_poison_after_the_lock(stack, aws, app_db, cluster,
                                                                                   visibility, locker):
    # Longer than one delivery of the poison (3 transition attempts each wait out the 5 s lock wait) so no
    # message of the batch is handed to a second worker while the first is still on it.
    redrive = visibility(20)
    max_receive = int(redrive["maxReceiveCount"])
    jobs = [insert_job(app_db, cluster) for _ in range(10)]
    poison_id = jobs[0][0]
    locker.lock("jobs", poison_id)  # another transaction holds the poison job's row: every attempt fails
    sqs = aws("sqs")
    sqs.send_message_batch(QueueUrl=stack["queues"]["jobs"], Entries=[
        {"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(jobs)])

    for job_id, _ in jobs[1:]:
        assert wait_for_job(lambda: job(app_db, job_id), 60, what=f"job {job_id}")["status"] == "completed"
    assert len(droplets(app_db, cluster)) == 9

    dlq = stack["queues"]["jobs_dlq"]

    poison_body = jobs[0][1]

    def dead_lettered():
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                       VisibilityTimeout=0).get("Messages", [])
        return any(m["Body"] == poison_body for m in messages)

    wait_for(dead_lettered, timeout=20 * (max_receive + 1) + 30, interval=1,
             what="the poison message to reach the DLQ")
    assert job(app_db, poison_id)["status"] == "queued"  # retried, never processed
    locker.release()

    region = stack.get("region", "us-east-1")
    scheduled = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": "000000000000", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "region": region, "detail": {},
                 "resources": [f"arn:aws:events:{region}:000000000000:rule/{stack['rules']['job_sweeper']}"]}
    # What the schedule does every minute, now: the deployed sweeper, invoked with its event. The poison
    # failed only because its row was locked elsewhere (no error of its own), so the sweeper hands it back
    # to the queue instead of failing it (issue 17), and with the lock gone it completes.

    def swept():
        response = aws("lambda").invoke(FunctionName=stack["functions"]["job_sweeper"], Payload=json.dumps(scheduled))
        result = json.loads(response["Payload"].read())
        assert "FunctionError" not in response, result
        row = job(app_db, poison_id)
        return row if row["status"] == "completed" else None

    wait_for(swept, timeout=90, interval=5, what="the sweeper to redrive the dead-lettered job and a worker to finish it")
    with app_db.cursor() as cur:
        cur.execute("SELECT redrives FROM jobs WHERE id = %s", (poison_id,))
        assert cur.fetchone()["redrives"] >= 1
    assert [job(app_db, j)["status"] for j, _ in jobs[1:]] == ["completed"] * 9
    assert len(droplets(app_db, cluster)) == 10


def test_a_worker_killed_mid_job_is_retried_and_completes_once(stack, aws, app_db, cluster, locker, events):
    # A droplet recorded as POST /droplets records it, and a provision job to launch it. The worker takes the job to
    # `processing` at 30% (committed), calls the provider, then blocks activating the droplet (its row is locked by
    # the test): a worker stopped mid-job, after its first commit, at a point the test can see.
    droplet_id = f"droplet-{uuid.uuid4()}"
    with app_db.cursor() as cur:
        cur.execute("INSERT INTO droplets (id, tenant_id, cluster_id, name, region, provider, size, image, status) "
                    "SELECT %s, tenant_id, id, 'killed-mid-job', 'nyc3', 'simulated', 's-1vcpu-1gb', "
                    "'ubuntu-22-04-x64', 'provisioning' FROM clusters WHERE id = %s", (droplet_id, cluster))
    job_id, body = insert_job(app_db, cluster, droplet_id=droplet_id)
    locker.lock("droplets", droplet_id)
    aws("sqs").send_message(QueueUrl=stack["queues"]["jobs"], MessageBody=body)

    def blocked_worker_connection():
        with app_db.cursor() as cur:
            cur.execute("SELECT HOST FROM information_schema.PROCESSLIST WHERE INFO LIKE %s",
                        (f"UPDATE droplets SET status%'{droplet_id}'%",))
            row = cur.fetchone()
        return row["HOST"] if row else None

    host = wait_for(blocked_worker_connection, timeout=30, interval=0.1, what="the worker to reach the droplet insert")
    assert job(app_db, job_id)["status"] == "processing"
    pid = pid_with_local_port(function_pids(stack["functions"]["job_worker"]), int(host.rsplit(":", 1)[1]))
    assert pid, f"no {stack['functions']['job_worker']} process owns the connection from {host}"
    os.kill(pid, signal.SIGKILL)
    locker.release()

    # SQS redelivers after the visibility timeout; the retry resumes the job left in `processing`.
    done = wait_for_job(lambda: job(app_db, job_id), timeout=90, interval=1, what="the retried job")
    assert done["status"] == "completed", done
    assert len(droplets(app_db, cluster)) == 1
    stream = events(job_id, "job_completed", settle=2.0)
    types = [e["type"] for e in stream]
    assert types.count("job_completed") == 1 and types.count("droplet_created") == 1
    assert types.count("job_started") == 2  # the killed run and the retry
    assert done["progress"] == 100 and json.loads(done["result"])["droplet_id"] == droplet_id


def test_an_aws_droplet_gets_a_real_ec2_instance_from_localstack(api, aws, app_db, cluster):
    status, body = api("POST", "/api/v1/jobs", {"type": "provision", "parameters": {
        "cluster_id": cluster, "provider": "aws", "size": "s-2vcpu-4gb"}})
    assert status == 201, body
    done = wait_for_job(lambda: job(app_db, body["job"]["id"]), 60, what="the aws provision job")
    assert done["status"] == "completed", done
    [droplet] = droplets(app_db, cluster)
    assert droplet["provider"] == "aws" and droplet["status"] == "active"
    ec2 = aws("ec2")
    [instance] = [i for r in ec2.describe_instances(InstanceIds=[droplet["provider_instance_id"]])["Reservations"]
                  for i in r["Instances"]]
    try:
        assert instance["PrivateIpAddress"] == droplet["ip_address"] and instance["InstanceType"] == "t3.medium"
        assert {"Key": "clustergenie:droplet_id", "Value": droplet["id"]} in instance["Tags"]
    finally:
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
