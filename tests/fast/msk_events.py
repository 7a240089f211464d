"""Event fixtures in the exact MSK shape, built by the MSK bridge's own builder (one shape builder)."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord

from chalicelib.event_signing import HEADER, sign
from devstack.services import load_bridge_module

ARN = "arn:aws:kafka:us-east-1:000000000000:cluster/test/abc-1"
TOPIC = "cluster-events"



def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def envelope(event_type: str, cluster_id: str | None, **fields: Any) -> dict[str, Any]:
    """A v1 envelope (../shared/reference/api-v1.md)."""
    return {"type": event_type, "job_id": None, "job_type": None, "cluster_id": cluster_id, "progress": None,
            "message": "", "timestamp": now_iso(), "trace_id": None, "correlation_id": None, "payload": {},
            **fields}


RECORD_TIMESTAMP = 1_700_000_000_000  # CreateTime (ms) of every fixture record unless a test says otherwise


def kafka_record(value: Any, offset: int, partition: int = 0, key: str | bytes | None = None,
                 topic: str = TOPIC, timestamp: int = RECORD_TIMESTAMP, signed: bool = True) -> ConsumerRecord:
    """A kafka-python ConsumerRecord; dict values are JSON-encoded, bytes are sent as they are. Signed with the
    app's event key, as the app's producers sign (`signed=False`: a record from anyone else)."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value).encode()
    if key is None and isinstance(value, bytes):
        try:
            key = json.loads(value).get("cluster_id")
        except (ValueError, AttributeError):
            key = None
    if isinstance(key, str):
        key = key.encode()
    headers = [(HEADER, sign(value))] if signed and value is not None else []
    return ConsumerRecord(
        topic=topic, partition=partition, leader_epoch=0, offset=offset, timestamp=timestamp,
        timestamp_type=0, key=key, value=value, headers=headers, checksum=None,
        serialized_key_size=len(key or b""), serialized_value_size=len(value or b""), serialized_header_size=0,
    )


def msk_event(records: list[ConsumerRecord]) -> dict[str, Any]:
    """The `aws:kafka` event Lambda would deliver for these records (through JSON, as over the wire)."""
    return json.loads(json.dumps(load_bridge_module().build_msk_event(records, ARN, "127.0.0.1:19092")))


def batch_of(values: list[Any], partition: int = 0, start: int = 0, timestamp: int = RECORD_TIMESTAMP) -> dict[str, Any]:
    return msk_event([kafka_record(v, start + i, partition, timestamp=timestamp) for i, v in enumerate(values)])
