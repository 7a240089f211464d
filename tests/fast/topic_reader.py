"""Reading back what a test produced to a Kafka topic: the one helper the fast tier uses for it."""
from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from chalicelib.settings import get_settings


@contextlib.contextmanager
def topic_reader(topic: str, key_of: Callable[[dict[str, Any]], Any]) -> Iterator[Callable[..., list[dict]]]:
    """Yield `read(key, until_type, timeout=15)`: the events on `topic` produced since the reader opened
    whose `key_of(event) == key`, in order, once one of them has type `until_type`. A fresh consumer group
    reads from the offsets the topic had when the reader opened, so other tests' events never leak in."""
    consumer = KafkaConsumer(bootstrap_servers=get_settings().kafka_bootstrap, group_id=f"test-{uuid.uuid4()}",
                             enable_auto_commit=False, consumer_timeout_ms=500)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or [0]]
    start = consumer.end_offsets(partitions)
    consumer.assign(partitions)

    def read(key: Any, until_type: str, timeout: float = 15.0) -> list[dict[str, Any]]:
        for tp in partitions:
            consumer.seek(tp, start[tp])
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                found.extend(e for e in (json.loads(m.value) for m in batch) if key_of(e) == key)
            if any(e["type"] == until_type for e in found):
                return found
        raise AssertionError(f"no {until_type} for {key}; got {[e['type'] for e in found]}")

    try:
        yield read
    finally:
        consumer.close()
