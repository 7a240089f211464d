"""The deployed app on LocalStack, driven through its real triggers.

Each test goes through one wiring of the target topology: API Gateway -> api, SQS -> job_worker
(with the DLQ after maxReceiveCount), Kafka -> the MSK bridge -> event_handler, Lambda Invoke ->
metrics_exporter -> Pushgateway, the EventBridge schedule that fires the exporter, and log_retention
(scheduled hourly) pruning the deployed log store.
"""
from __future__ import annotations

import json
import time
import urllib.request
import uuid

import pytest
from polling import wait_for

pytestmark = pytest.mark.localstack


def http_get(url: str, timeout: float = 60, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_localstack_runs_the_stacks_services_and_no_cloudwatch(stack):
    # devstack.services.LOCALSTACK_SERVICES: every service the stack and its tests call is up; CloudWatch and
    # CloudWatch Logs are not, so a Lambda invoke costs LocalStack no calls to itself (issue 16, sixth round).
    from devstack.services import LOCALSTACK_SERVICES

    status, body = http_get(f"{stack['endpoint_url']}/_localstack/health")
    assert status == 200
    services = json.loads(body)["services"]
    not_up = {name: services.get(name) for name in LOCALSTACK_SERVICES
              if services.get(name) not in ("running", "available")}
    assert not_up == {}
    assert (services["cloudwatch"], services["logs"]) == ("disabled", "disabled")


def test_localstack_keeps_the_apps_connections_open(aws, stack):
    # chalicelib/aws.py: the app's clients ask for keep-alive, so LocalStack does not close each connection after
    # its response (as it does for a request that does not ask: the second client here).
    from chalicelib.aws import keep_connections_alive

    kept, plain = keep_connections_alive(aws("sqs")), aws("sqs")
    queue = stack["queues"]["jobs"].rsplit("/", 1)[1]
    for client, connection in ((kept, None), (plain, "close")):
        headers = client.get_queue_url(QueueName=queue)["ResponseMetadata"]["HTTPHeaders"]
        assert headers.get("connection") == connection


def test_api_answers_through_api_gateway(stack):
    status, body = http_get(f"{stack['api_url'].rstrip('/')}/api/v1/clusters")
    assert status == 200, body[:500]
    assert isinstance(json.loads(body), dict)


@pytest.fixture()
def queued_job(app_db, unique):
    """A cluster and a queued job written straight into the deployed app's database."""
    cluster_id, job_id = f"{unique}-c", f"{unique}-j"
    with app_db.cursor() as cur:
        cur.execute("INSERT INTO clusters (id, name, region) VALUES (%s, %s, %s)", (cluster_id, unique, "nyc1"))
        cur.execute(
            "INSERT INTO jobs (id, cluster_id, type, status, trace_id, parameters) VALUES (%s, %s, %s, %s, %s, %s)",
            (job_id, cluster_id, "diagnose", "queued", unique, json.dumps({})),
        )
    yield job_id
    with app_db.cursor() as cur:
        cur.execute("DELETE FROM clusters WHERE id = %s", (cluster_id,))  # cascades to the job


def test_the_stacks_sqs_mapping_is_enabled_and_reports_partial_failures(stack, aws):
    """Straight from the template (no patching after deploy): the mapping CloudFormation made is Enabled."""
    [mapping] = aws("lambda").list_event_source_mappings(FunctionName=stack["functions"]["job_worker"])["EventSourceMappings"]
    assert mapping["EventSourceArn"].endswith(f":{stack['queue_names']['jobs']}")
    assert (mapping["State"], mapping["FunctionResponseTypes"]) == ("Enabled", ["ReportBatchItemFailures"])
    assert aws("cloudformation").describe_stacks(StackName=stack["stack_name"])["Stacks"][0]["StackStatus"] in (
        "CREATE_COMPLETE", "UPDATE_COMPLETE")


def test_sqs_message_is_processed_by_the_worker(stack, aws, app_db, queued_job, unique):
    aws("sqs").send_message(
        QueueUrl=stack["queues"]["jobs"], MessageBody=json.dumps({"job_id": queued_job, "trace_id": unique})
    )

    def job_status():
        with app_db.cursor() as cur:
            cur.execute("SELECT status, progress FROM jobs WHERE id = %s", (queued_job,))
            row = cur.fetchone()
        return row if row and row["status"] == "completed" else None

    row = wait_for(job_status, timeout=60, what=f"job {queued_job} to be completed by job_worker")
    assert row["progress"] == 100


@pytest.fixture()
def fast_redelivery(stack, aws):
    """A 1 s visibility timeout on the jobs queue for the test, so maxReceiveCount is reached quickly."""
    sqs = aws("sqs")
    url = stack["queues"]["jobs"]
    before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"])["Attributes"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
    yield json.loads(before["RedrivePolicy"])
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": before["VisibilityTimeout"]})


def test_failing_message_ends_in_the_dlq(stack, aws, fast_redelivery, unique):
    sqs = aws("sqs")
    assert fast_redelivery["deadLetterTargetArn"].endswith(f":{stack['queue_names']['jobs_dlq']}")
    max_receive = int(fast_redelivery["maxReceiveCount"])
    body = f"not json {unique}"  # the worker can never process it
    sqs.send_message(QueueUrl=stack["queues"]["jobs"], MessageBody=body)
    dlq = stack["queues"]["jobs_dlq"]

    def find_in_dlq():
        messages = sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=0,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        return next((m for m in messages if m["Body"] == body), None)

    message = wait_for(find_in_dlq, timeout=90, what="the failing message to be dead-lettered")
    # It was received (and failed) maxReceiveCount times on the jobs queue before moving.
    assert int(message["Attributes"]["ApproximateReceiveCount"]) >= max_receive
    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])


def test_kafka_event_reaches_the_event_handler_through_the_bridge(function_env, app_redis, unique):
    from kafka import KafkaProducer

    from chalicelib.event_signing import HEADER, sign

    producer = KafkaProducer(bootstrap_servers=function_env.get("CG_KAFKA_BOOTSTRAP", "127.0.0.1:19092").split(","))
    job_id = f"job-{uuid.uuid4()}"
    event = {"type": "job_progress", "job_id": job_id, "job_type": "monitor", "cluster_id": unique, "progress": 42,
             "message": "", "timestamp": "2026-01-01T00:00:00Z", "trace_id": None, "correlation_id": None, "payload": {}}
    metadata = producer.send(
        function_env.get("CG_EVENTS_TOPIC", "cluster-events"),
        key=unique.encode(), value=json.dumps(event).encode(),
        headers=[("trace-id", unique.encode()), (HEADER, sign(json.dumps(event).encode()))],  # as the app signs
    ).get(timeout=30)
    producer.close()

    def read_model():
        return app_redis.hgetall(f"events:job:{job_id}") or None

    data = wait_for(read_model, timeout=60, what="event_handler to apply the event (is the MSK bridge running?)")
    assert (data["status"], data["progress"], data["cluster_id"]) == ("processing", "42", unique)
    # Applied under the record's own coordinates (it has no event id).
    assert app_redis.get(f"events:seen:{metadata.topic}:{metadata.partition}:{metadata.offset}:{metadata.timestamp}") == "d"


def scheduled_event(stack: dict, function: str = "metrics_exporter") -> dict:
    region = stack.get("region", "us-east-1")
    """The event EventBridge sends a scheduled target (Chalice's @app.schedule parses it)."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": region,
        "resources": [f"arn:aws:events:{region}:000000000000:rule/{stack['rules'][function]}"],
        "detail": {},
    }


def test_metrics_exporter_pushes_its_gauge(stack, aws, function_env):
    before = time.time()
    response = aws("lambda").invoke(
        FunctionName=stack["functions"]["metrics_exporter"],
        Payload=json.dumps(scheduled_event(stack)).encode(),
    )
    payload = response["Payload"].read()
    assert "FunctionError" not in response, payload[:1000]

    from chalicelib.functions.metrics_exporter import pushgateway_auth
    from chalicelib.settings import get_settings

    status, body = http_get(f"{function_env['CG_PUSHGATEWAY_URL'].rstrip('/')}/metrics", timeout=10,
                            headers=pushgateway_auth(get_settings()))
    assert status == 200
    samples = [
        line for line in body.decode().splitlines()
        if line.startswith("clustergenie_exporter_last_success_timestamp_seconds")
    ]
    assert samples, "the exporter's gauge is not on the pushgateway"
    assert max(float(line.rsplit(" ", 1)[1]) for line in samples) >= before - 1


def test_exporter_is_scheduled_every_minute(stack, aws):
    events = aws("events")
    function_arn = aws("lambda").get_function_configuration(FunctionName=stack["functions"]["metrics_exporter"])[
        "FunctionArn"
    ]
    rules = events.list_rule_names_by_target(TargetArn=function_arn)["RuleNames"]
    assert rules, "no EventBridge rule targets the metrics exporter"
    expressions = {events.describe_rule(Name=name)["ScheduleExpression"] for name in rules}
    assert "rate(1 minute)" in expressions


def schedule_expressions(stack: dict, aws, function: str) -> set[str]:  # noqa: ANN001
    events = aws("events")
    function_arn = aws("lambda").get_function_configuration(FunctionName=stack["functions"][function])["FunctionArn"]
    return {events.describe_rule(Name=name)["ScheduleExpression"]
            for name in events.list_rule_names_by_target(TargetArn=function_arn)["RuleNames"]}


def test_log_retention_prunes_the_deployed_log_store_and_runs_hourly(stack, aws, app_db, unique):
    assert "rate(1 hour)" in schedule_expressions(stack, aws, "log_retention")
    old, recent = f"retention-old-{unique}", f"retention-recent-{unique}"
    with app_db.cursor() as cur:
        for source, age_days in ((old, 30), (recent, 0)):
            cur.execute("INSERT INTO log_lines (source, ts, level, message, line) "
                        "VALUES (%s, UTC_TIMESTAMP(6) - INTERVAL %s DAY, 'INFO', %s, '{}')", (source, age_days, source))
    app_db.commit()
    try:
        response = aws("lambda").invoke(
            FunctionName=stack["functions"]["log_retention"],
            Payload=json.dumps(scheduled_event(stack, "log_retention")).encode())
        payload = response["Payload"].read()
        assert "FunctionError" not in response, payload[:1000]
        assert json.loads(payload)["deleted"] >= 1
        with app_db.cursor() as cur:
            cur.execute("SELECT source FROM log_lines WHERE source IN (%s, %s)", (old, recent))
            assert [row["source"] for row in cur.fetchall()] == [recent]
    finally:
        with app_db.cursor() as cur:
            cur.execute("DELETE FROM log_lines WHERE source IN (%s, %s)", (old, recent))
        app_db.commit()
