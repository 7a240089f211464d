"""The MSK bridge's event shapes: what a function gets must be what Lambda's MSK poller delivers."""
from __future__ import annotations

import base64
import datetime
import json

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from aws_lambda_powertools.utilities.data_classes import KafkaEvent

from devstack.services import load_bridge_module

bridge = load_bridge_module()
ARN = "arn:aws:kafka:us-east-1:000000000000:cluster/test/abc-1"


def record(partition: int, offset: int, key: bytes | None = b"c-1", value: bytes | None = b'{"type":"x"}',
           headers=None, timestamp: int = 1_700_000_000_000, timestamp_type: int = 0, topic: str = "cluster-events"):
    return ConsumerRecord(
        topic=topic, partition=partition, leader_epoch=0, offset=offset, timestamp=timestamp,
        timestamp_type=timestamp_type, key=key, value=value, headers=headers or [], checksum=None,
        serialized_key_size=len(key or b""), serialized_value_size=len(value or b""), serialized_header_size=0,
    )


def test_event_has_the_msk_envelope():
    event = bridge.build_msk_event([record(0, 5)], ARN, "127.0.0.1:19092")
    assert event["eventSource"] == "aws:kafka"
    assert event["eventSourceArn"] == ARN
    assert event["bootstrapServers"] == "127.0.0.1:19092"
    assert list(event["records"]) == ["cluster-events-0"]


def test_records_are_grouped_by_topic_partition_and_ordered_by_offset():
    batch = [record(1, 7), record(0, 3), record(1, 6), record(0, 2)]
    event = bridge.build_msk_event(batch, ARN, "b:1")
    assert sorted(event["records"]) == ["cluster-events-0", "cluster-events-1"]
    assert [r["offset"] for r in event["records"]["cluster-events-0"]] == [2, 3]
    assert [r["offset"] for r in event["records"]["cluster-events-1"]] == [6, 7]


def test_record_fields_match_lambda():
    item = bridge.record_to_msk(
        record(2, 42, key=b"cluster-9", value=b'{"a":1}', headers=[("trace-id", b"abc"), ("empty", b"")],
               timestamp=1545084650987, timestamp_type=1)
    )
    assert item == {
        "topic": "cluster-events",
        "partition": 2,
        "offset": 42,
        "timestamp": 1545084650987,
        "timestampType": "LOG_APPEND_TIME",
        "key": base64.b64encode(b"cluster-9").decode(),
        "value": base64.b64encode(b'{"a":1}').decode(),
        "headers": [{"trace-id": [97, 98, 99]}, {"empty": []}],
    }
    assert bridge.record_to_msk(record(0, 1))["timestampType"] == "CREATE_TIME"


def test_null_key_and_value_are_left_out():
    item = bridge.record_to_msk(record(0, 1, key=None, value=None))
    assert "key" not in item and "value" not in item


def test_event_is_json_and_parses_with_powertools():
    """The thin handler (and later ones) read the event through powertools: it must understand it."""
    event = json.loads(json.dumps(bridge.build_msk_event(
        [record(0, 1, headers=[("h", b"v")]), record(1, 9, key=None)], ARN, "b:1")))
    parsed = KafkaEvent(event)
    assert parsed.event_source == "aws:kafka"
    assert parsed.event_source_arn == ARN
    items = list(parsed.records)
    assert [(r.partition, r.offset) for r in items] == [(0, 1), (1, 9)]
    assert items[0].decoded_key == b"c-1"
    assert items[0].json_value == {"type": "x"}
    assert items[0].decoded_headers == {"h": b"v"}


def test_next_offsets_are_last_plus_one_per_partition():
    batch = [record(0, 3), record(0, 5), record(1, 0), record(0, 4)]
    assert bridge.next_offsets(batch) == {("cluster-events", 0): 6, ("cluster-events", 1): 1}


def test_failure_records_carry_offset_range_and_error():
    now = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    error = {"statusCode": 200, "functionError": "Unhandled",
             "payload": {"errorType": "ValueError", "errorMessage": "boom"}}
    out = bridge.build_failure_records(
        [record(1, 11), record(0, 4), record(1, 10)],
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f", bootstrap_servers="b:1",
        attempts=4, error=error, now=now,
    )
    assert [(r["KafkaBatchInfo"]["partition"], r["KafkaBatchInfo"]["startOffset"], r["KafkaBatchInfo"]["endOffset"])
            for r in out] == [(0, 4, 4), (1, 10, 11)]
    first = out[1]
    assert first["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert first["requestContext"]["approximateInvokeCount"] == 4
    assert first["responseContext"]["functionError"] == "Unhandled"
    assert first["responseContext"]["errorPayload"]["errorMessage"] == "boom"
    assert first["KafkaBatchInfo"]["topic"] == "cluster-events"
    assert first["KafkaBatchInfo"]["batchSize"] == 2
    assert first["KafkaBatchInfo"]["approximateArrivalOfFirstRecord"] == "2023-11-14T22:13:20.000Z"
    assert first["timestamp"] == "2025-01-02T03:04:05.000Z"
    json.dumps(out)


def test_backoff_doubles_up_to_the_cap():
    delays = bridge.backoff_delays(1, 5)
    assert [next(delays) for _ in range(5)] == [1, 2, 4, 5, 5]


def test_bad_mapping_is_refused():
    with pytest.raises(ValueError):
        bridge.Mapping.from_dict({"topic": "t", "function_name": "f", "consumer_group": "g", "starting_position": "AT"})
    with pytest.raises(ValueError):
        bridge.Mapping.from_dict({"topic": "t", "function_name": "f", "consumer_group": "g", "typo": 1})


class ScriptedConsumer:
    """Stands in for KafkaConsumer to observe how the bridge polls and assigns: the real broker answers empty
    fetches at once, which made a blocking poll spin, and the partitions a topic has over time are scripted
    here; what matters is the bridge's call pattern (the real broker is exercised by the LocalStack and
    fault tiers)."""

    def __init__(self, replies: list[list], stop, stop_after: int, partitions: list[set[int]] | None = None) -> None:
        self.replies, self.stop, self.stop_after = replies, stop, stop_after
        self.calls: list[int] = []
        self.partitions = partitions or [{0}]  # what partitions_for_topic answers, call after call (last repeats)
        self.assigned: list = []
        self.assign_calls: list[list[int]] = []

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions.pop(0) if len(self.partitions) > 1 else self.partitions[0]

    def assignment(self) -> set:
        return set(self.assigned)

    def assign(self, partitions) -> None:
        self.assigned = list(partitions)
        self.assign_calls.append([tp.partition for tp in partitions])

    def poll(self, timeout_ms: int, max_records: int):
        self.calls.append(timeout_ms)
        if len(self.calls) >= self.stop_after:
            self.stop.set()
        records = self.replies.pop(0) if self.replies else []
        return {("cluster-events", 0): records} if records else {}


def _worker(stop, window: float = 0.2, batch_size: int = 10):
    mapping = bridge.Mapping.from_dict({"topic": "cluster-events", "function_name": "f", "consumer_group": "g",
                                        "batch_size": batch_size, "maximum_batching_window_seconds": window})
    return bridge.MappingWorker(mapping, "127.0.0.1:1", "us-east-1", stop)


def test_an_idle_mapping_never_blocks_in_poll_and_waits_between_polls():
    import threading
    import time

    stop = threading.Event()
    consumer = ScriptedConsumer([], stop, stop_after=5)
    started = time.monotonic()
    assert _worker(stop)._poll_batch(consumer) == []
    assert consumer.calls == [0] * 5  # never a blocking poll (it spins on this broker)
    assert time.monotonic() - started >= 4 * bridge.IDLE_POLL_SECONDS * 0.9  # it slept between them
    # ...longer and longer while nothing comes (0.05, 0.1, 0.2, 0.2 s: doubling up to the cap).
    assert (0.05 + 0.1 + 0.2 + 0.2) * 0.9 <= time.monotonic() - started <= 0.05 + 0.1 + 0.2 + 0.2 + 0.3


def test_the_mapping_takes_every_partition_by_assignment_and_picks_up_new_ones():
    """Issue 17: no group membership, so a killed bridge leaves no member its successor must wait for."""
    import threading

    stop = threading.Event()
    consumer = ScriptedConsumer([], stop, stop_after=1000, partitions=[set(), {0, 1}, {0, 1}, {0, 1, 2}])
    worker = _worker(stop)
    assert worker._assign(consumer) is False and consumer.assign_calls == []  # no topic yet: nothing assigned
    assert worker._assign(consumer) is True and consumer.assign_calls == [[0, 1]]
    assert worker._assign(consumer) is True and consumer.assign_calls == [[0, 1]]  # unchanged: not reassigned
    assert worker._assign(consumer) is True and consumer.assign_calls == [[0, 1], [0, 1, 2]]
    assert {tp.topic for tp in consumer.assigned} == {"cluster-events"}


def test_a_mapping_without_partitions_waits_and_never_polls():
    import threading

    stop = threading.Event()
    consumer = ScriptedConsumer([], stop, stop_after=1000, partitions=[set()])
    worker = _worker(stop)
    threading.Timer(3 * bridge.NO_PARTITIONS_RETRY_SECONDS, stop.set).start()
    worker._loop(consumer)
    assert consumer.calls == [] and consumer.assigned == []


def test_a_batch_closes_when_its_window_ends_or_it_is_full():
    import threading

    stop = threading.Event()
    first = [record(0, 0), record(0, 1)]
    consumer = ScriptedConsumer([first, [], [record(0, 2)]], stop, stop_after=1000)
    batch = _worker(stop, window=0.3)._poll_batch(consumer)
    assert [r.offset for r in batch] == [0, 1, 2] and not stop.is_set()
    full = ScriptedConsumer([[record(0, i) for i in range(3)], [record(0, 3)]], stop, stop_after=1000)
    assert [r.offset for r in _worker(stop, window=60, batch_size=4)._poll_batch(full)] == [0, 1, 2, 3]


def test_a_batch_closes_before_the_invoke_payload_limit_and_the_rest_comes_next_in_order(monkeypatch):
    """As an MSK event source closes a batch at 6 MB: what would pass the limit is fetched again (by a seek to
    its offset, per partition) for the next batch, so a large BatchSize cannot make an invoke too large."""
    import threading

    stop = threading.Event()
    records = [record(0, i, headers=[("cg-signature", b"k=0a1b2c3d,v1=" + b"f" * 64)]) for i in range(5)]
    monkeypatch.setattr(bridge, "MAX_PAYLOAD_BYTES", 3 * bridge.payload_size(records[0]))
    consumer = ScriptedConsumer([records], stop, stop_after=1000)
    seeks = []
    consumer.seek = lambda tp, offset: seeks.append((tp, offset))
    batch = _worker(stop, window=60, batch_size=10)._poll_batch(consumer)
    assert [r.offset for r in batch] == [0, 1, 2] and seeks == [(("cluster-events", 0), 3)]
    # The bound holds for the JSON the bridge sends.
    event = bridge.build_msk_event(batch, "arn", "b")
    assert len(json.dumps(event, separators=(",", ":"))) <= 3 * bridge.payload_size(records[0])


def test_minus_one_retries_a_failing_batch_until_it_succeeds_and_never_dead_letters_it():
    """Issue 17: MaximumRetryAttempts -1 (the template's event handler mapping) waits an outage out."""
    import threading

    with pytest.raises(ValueError):
        bridge.Mapping.from_dict({"topic": "t", "function_name": "f", "consumer_group": "g", "maximum_retry_attempts": -2})
    mapping = bridge.Mapping.from_dict({"topic": "t", "function_name": "f", "consumer_group": "g",
                                        "maximum_retry_attempts": -1, "on_failure_queue": "q",
                                        "retry_backoff_seconds": 0.001, "retry_backoff_max_seconds": 0.001})
    worker = bridge.MappingWorker(mapping, "127.0.0.1:1", "us-east-1", threading.Event())
    outcomes = [{"errorType": "DependencyUnavailableError"}] * 12 + [None]  # an outage 3 times the old limit
    worker._invoke = lambda event: outcomes.pop(0)
    worker._send_to_failure_destination = lambda *args: pytest.fail("dead-lettered during an outage")
    assert worker._deliver([record(0, 7)]) is True
    assert outcomes == []


def test_provisioned_pollers_share_the_partitions_each_partition_to_one_poller():
    """MaximumPollers pollers (issue 16): poller i takes the partitions p % n == i, so batches of different
    partitions are invoked concurrently while each partition has one batch in flight (its order kept); a
    poller with no partition idles without warnings until partitions are added."""
    import threading

    mapping = bridge.Mapping.from_dict({"topic": "cluster-events", "function_name": "f", "consumer_group": "g",
                                        "maximum_pollers": 2})
    owned = []
    for poller in range(2):
        worker = bridge.MappingWorker(mapping, "127.0.0.1:1", "us-east-1", threading.Event(), poller)
        consumer = ScriptedConsumer([], threading.Event(), 99, partitions=[{0, 1, 2}])
        assert worker._assign(consumer) is True
        owned.append(consumer.assign_calls[-1])
    assert owned == [[0, 2], [1]]
    lone = bridge.Mapping.from_dict({"topic": "t", "function_name": "f", "consumer_group": "g", "maximum_pollers": 3})
    idle = bridge.MappingWorker(lone, "127.0.0.1:1", "us-east-1", threading.Event(), 2)
    consumer = ScriptedConsumer([], threading.Event(), 99, partitions=[{0, 1}, {0, 1, 2}])
    assert idle._assign(consumer) is None and consumer.assign_calls == []
    assert idle._assign(consumer) is True and consumer.assign_calls == [[2]]
    with pytest.raises(ValueError):
        bridge.Mapping.from_dict({"topic": "t", "function_name": "f", "consumer_group": "g", "maximum_pollers": 0})


def test_a_trickle_within_a_batching_window_is_topped_up_a_few_times_not_every_idle_poll():
    """Issue 16: each poll is a fetch the broker answers; a 1 s window polled every 50 ms made 20 of them a
    second for a trickle. Now at most WINDOW_POLLS top-ups per window, and the window still closes the batch."""
    import threading
    import time

    stop = threading.Event()
    replies = [[record(0, 0)]] + [[] for _ in range(100)]
    consumer = ScriptedConsumer(replies, stop, stop_after=1000)
    started = time.monotonic()
    batch = _worker(stop, window=1.0)._poll_batch(consumer)
    took = time.monotonic() - started
    assert [r.offset for r in batch] == [0]
    assert 0.95 <= took <= 1.4  # the window closes the batch, on time
    # the first poll, the one right after records came, then one every window / WINDOW_POLLS
    assert len(consumer.calls) <= 2 + bridge.WINDOW_POLLS
