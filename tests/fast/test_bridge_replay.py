"""`./dev replay events`: the bridge's replay of the event handler's on-failure queue.

Real broker (the records are read back from a topic), real event handler (run in-process, as the
handler tests do). The on-failure queue is moto's SQS: the fast tier has no LocalStack (the LocalStack
tier's bridge writes the same messages to the real queue)."""
from __future__ import annotations

import json
import uuid

import boto3
import pytest
from kafka import KafkaProducer
from moto import mock_aws

from chalicelib.event_signing import HEADER, sign
from chalicelib.redis_client import get_redis
from chalicelib.settings import get_settings
from devstack.services import load_bridge_module
from msk_events import envelope
from test_event_handler import Context, cluster, dead_letters, handle  # noqa: F401 - fixtures

bridge = load_bridge_module()
QUEUE = "event-failures-replay-test"


@pytest.fixture
def topic(fresh_topic) -> str:  # noqa: ANN001
    """A fresh one-partition topic: offsets start at 0 (conftest.py)."""
    return fresh_topic(1, "replay")


@pytest.fixture
def sqs(monkeypatch):  # noqa: ANN001
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        yield client, client.create_queue(QueueName=QUEUE)["QueueUrl"]


def produce(topic: str, values: list[dict]) -> None:
    producer = KafkaProducer(bootstrap_servers=get_settings().kafka_bootstrap)
    for value in values:
        raw = json.dumps(value).encode()
        producer.send(topic, raw, key=value["cluster_id"].encode(), headers=[(HEADER, sign(raw))])
    producer.flush()
    producer.close()


def park(sqs_client, url: str, topic: str, start: int, end: int) -> None:  # noqa: ANN001
    records = [type("R", (), {"topic": topic, "partition": 0, "offset": o, "timestamp": 0})() for o in range(start, end + 1)]
    for body in bridge.build_failure_records(records, function_arn="arn:aws:lambda:us-east-1:000000000000:function:eh",
                                             bootstrap_servers="b", attempts=1, error={"statusCode": 200}):
        sqs_client.send_message(QueueUrl=url, MessageBody=json.dumps(body))


def worker(topic: str):  # noqa: ANN201
    mapping = bridge.Mapping(topic=topic, function_name="event-handler", consumer_group="g", on_failure_queue=QUEUE)
    import threading

    return bridge.MappingWorker(mapping, get_settings().kafka_bootstrap, "us-east-1", threading.Event())


def depth(sqs_client, url: str) -> int:  # noqa: ANN001
    attributes = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                                  "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attributes["Attributes"].values())


def test_parked_batches_are_applied_in_order_once_and_deleted_after_success(handle, dead_letters, cluster, topic, sqs):  # noqa: F811
    client, url = sqs
    job_id = f"job-{uuid.uuid4()}"
    events = [envelope(t, cluster["id"], job_id=job_id, progress=p, timestamp=f"2026-01-01T00:00:0{i}Z")
              for i, (t, p) in enumerate((("job_requested", 0), ("job_started", 5), ("job_progress", 40),
                                          ("job_completed", None)))]
    produce(topic, events)
    park(client, url, topic, 2, 3)  # parked out of order: the replay sorts by offset
    park(client, url, topic, 0, 1)
    seen: list[list[str]] = []

    def invoke(event: dict) -> None:
        seen.append([r["offset"] for records in event["records"].values() for r in records])
        assert event["eventSource"] == "aws:kafka"
        handle(json.loads(json.dumps(event)))
        return None

    assert bridge.replay_failures(worker(topic), invoke=invoke) == {"replayed": 2, "failed": 0, "records": 4}
    assert seen == [[0, 1], [2, 3]]
    model = get_redis().hgetall(f"events:job:{job_id}")
    assert (model["status"], model["last_event_type"]) == ("completed", "job_completed")
    assert depth(client, url) == 0
    # Replaying the same records again (e.g. a message delivered twice) changes nothing: dedup by event id.
    park(client, url, topic, 0, 3)
    results: list[dict] = []
    assert bridge.replay_failures(worker(topic), invoke=lambda e: results.append(handle(e))) == \
        {"replayed": 1, "failed": 0, "records": 4}
    assert results[0]["applied"] == 0 and results[0]["duplicates"] == 4


def test_a_failed_replay_keeps_its_message_and_the_partitions_later_slices(handle, dead_letters, cluster, topic, sqs):  # noqa: F811
    client, url = sqs
    produce(topic, [envelope("job_progress", cluster["id"], job_id=f"job-{uuid.uuid4()}", progress=10) for _ in range(3)])
    park(client, url, topic, 0, 0)
    park(client, url, topic, 1, 2)
    calls: list[dict] = []

    def failing(event: dict) -> dict:
        calls.append(event)
        return {"statusCode": 200, "functionError": "Unhandled", "payload": {"errorMessage": "mariadb down"}}

    assert bridge.replay_failures(worker(topic), invoke=failing) == {"replayed": 0, "failed": 2, "records": 0}
    assert len(calls) == 1  # the later slice of the same partition was not delivered before the earlier one
    assert depth(client, url) == 2  # both still parked, visible again
    # Records that are not in the topic (past its end, or gone by retention) are reported, not dropped.
    client.purge_queue(QueueUrl=url)
    park(client, url, topic, 5, 6)
    short = worker(topic)
    assert bridge.replay_failures(short, fetch=lambda *a: bridge.fetch_batch(*a, timeout_s=1.0),
                                  invoke=lambda e: None) == {"replayed": 0, "failed": 1, "records": 0}
    assert depth(client, url) == 1
