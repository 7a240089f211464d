"""The MSK bridge's progress report (issue 17): lag per partition of its group measured on the real broker,
the status file `./dev status` and `./dev up` read, the gauges pushed to the real Pushgateway, and
the progress check that decides a running bridge must be restarted."""
from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from chalicelib.settings import get_settings
from devstack.config import StackConfig
from devstack.services import Bridge, load_bridge_module

bridge = load_bridge_module()


@pytest.fixture
def topic(fresh_topic) -> str:  # noqa: ANN001
    """A fresh two-partition topic (conftest.py)."""
    return fresh_topic(2, "lag")


def test_lag_is_end_minus_committed_per_partition(topic):  # noqa: ANN001
    bootstrap = get_settings().kafka_bootstrap
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(5):
        producer.send(topic, b"x", partition=0)
    for i in range(3):
        producer.send(topic, b"y", partition=1)
    producer.flush()
    producer.close()
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        assert bridge.partition_lag(consumer, topic) == {0: 5, 1: 3}  # nothing committed: the whole log
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(4, "", -1)})
        assert bridge.partition_lag(consumer, topic) == {0: 1, 1: 3}
    finally:
        consumer.close()


def _worker(topic: str) -> object:
    mapping = bridge.Mapping(topic=topic, function_name="event-handler", consumer_group="cluster-events")
    worker = bridge.MappingWorker(mapping, "127.0.0.1:1", "us-east-1", threading.Event())
    worker.last_delivery = 1_700_000_000.5
    return worker


LAGS = {"event-handler": bridge.LagMeasurement({0: 7, 1: 0}, 1_700_000_001.0)}


def test_the_status_file_and_the_pushed_gauges_carry_lag_and_last_delivery(tmp_path, base_stack):  # noqa: ANN001
    document = bridge.status_document([_worker("cluster-events")], LAGS, started_at=1_699_999_000.0)
    path = tmp_path / "status.json"
    bridge.write_status(str(path), document)
    item = json.loads(path.read_text())["mappings"]["event-handler"]
    assert (item["lag"], item["total_lag"], item["last_delivery_at"]) == ({"0": 7, "1": 0}, 7, 1_700_000_000.5)
    cfg = StackConfig.from_env()
    url, auth = f"http://127.0.0.1:{cfg.pushgateway_port}", (cfg.PUSHGATEWAY_USER, cfg.pushgateway_password())
    bridge.push_lag(url, document, auth)
    from devstack.services import basic_auth_header

    request = urllib.request.Request(f"{url}/metrics", headers=basic_auth_header(*auth))
    text = urllib.request.urlopen(request, timeout=5).read().decode()
    assert 'clustergenie_consumer_lag{group="cluster-events",instance="",job="clustergenie_msk_bridge",partition="0",topic="cluster-events"} 7' in text
    assert "clustergenie_bridge_last_delivery_timestamp_seconds{" in text


def test_a_running_bridge_is_judged_by_progress_not_by_its_pid(tmp_path):  # noqa: ANN001
    check = Bridge(StackConfig.from_env()).not_progressing
    now = time.time()
    healthy = {"updated_at": now - 2, "started_at": now - 600,
               "mappings": {"eh": {"alive": True, "total_lag": 4, "last_delivery_at": now - 10}}}
    assert check(healthy, now) is None
    assert "stale" in check({**healthy, "updated_at": now - 120}, now)  # the main loop hung, or it was killed
    assert check({}, now) == "no status file"
    stalled = {**healthy, "mappings": {"eh": {"alive": True, "total_lag": 4, "last_delivery_at": now - 900}}}
    assert "delivered nothing" in check(stalled, now)
    idle = {**healthy, "mappings": {"eh": {"alive": True, "total_lag": 0, "last_delivery_at": now - 900}}}
    assert check(idle, now) is None  # nothing waiting: an idle bridge is a healthy one
    dead_thread = {**healthy, "mappings": {"eh": {"alive": False, "total_lag": 0, "last_delivery_at": None}}}
    assert "stopped" in check(dead_thread, now)


def test_a_mappings_pollers_are_reported_as_one_mapping():
    first, second = _worker("cluster-events"), _worker("cluster-events")
    first.last_delivery, second.last_delivery = 1_700_000_100.0, 1_700_000_090.0
    lags = {"event-handler": bridge.LagMeasurement({0: 0, 1: 2}, 1_700_000_060.0)}
    item = bridge.status_document([first, second], lags, started_at=1_699_999_000.0)["mappings"]["event-handler"]
    assert item["last_delivery_at"] == 1_700_000_100.0  # the latest delivery of any poller
    assert (item["lag"], item["total_lag"], item["lag_measured_at"]) == ({"0": 0, "1": 2}, 2, 1_700_000_060.0)
    assert item["alive"] is False  # threads not started: a mapping is alive only when all its pollers are



def test_a_mapping_not_measured_yet_reports_no_lag():
    item = bridge.status_document([_worker("cluster-events")], {}, started_at=1_699_999_000.0)["mappings"]["event-handler"]
    assert (item["lag"], item["total_lag"], item["lag_measured_at"]) == ({}, 0, None)


def test_the_lag_monitor_keeps_an_idle_mappings_lag_current(topic):  # noqa: ANN001
    """The lag is measured off the delivery threads: a group that commits while no poller of the bridge delivers
    anything (an idle mapping) is seen at its new lag by the next measurement, not at the one from before its
    last batch (which could raise ConsumerLagHigh and restart a healthy bridge)."""
    bootstrap = get_settings().kafka_bootstrap
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(4):
        producer.send(topic, b"x", partition=i % 2)
    producer.flush()
    producer.close()
    group = f"g-{uuid.uuid4().hex[:8]}"
    mapping = bridge.Mapping(topic=topic, function_name="event-handler", consumer_group=group)
    monitor = bridge.LagMonitor([mapping], bootstrap, threading.Event())
    try:
        monitor.measure()
        first = monitor.latest["event-handler"]
        assert first.lag == {0: 2, 1: 2}
        committer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        try:  # the mapping's poller delivered everything and committed; then the topic went quiet
            committer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1),
                              TopicPartition(topic, 1): OffsetAndMetadata(2, "", -1)})
        finally:
            committer.close()
        monitor.measure()
        second = monitor.latest["event-handler"]
        assert second.lag == {0: 0, 1: 0} and second.measured_at >= first.measured_at
    finally:
        monitor.stop_event.set()
        for group_name in list(monitor._consumers):
            monitor._drop(group_name)


def test_a_failed_lag_measurement_keeps_the_last_one_and_raises_nothing():
    """An unreachable broker: the round logs, keeps the last measurement (its age shows in `lag_measured_at`)
    and drops the consumer, so the next round starts on a fresh one."""
    mapping = bridge.Mapping(topic="cluster-events", function_name="event-handler", consumer_group="g")
    monitor = bridge.LagMonitor([mapping], "127.0.0.1:1", threading.Event())  # nothing listens on port 1
    monitor.latest = dict(LAGS)
    monitor.measure()
    assert monitor.latest == LAGS and monitor._consumers == {}
