"""The one EventPublisher: v1 envelopes to the `cluster-events` topic (kafka-python).

The producer is created lazily, once per warm container and broker, and shared by every publisher. Events are keyed by `cluster_id`,
so a cluster's events stay ordered within one partition. `acks=all`: an event counts as published only
once every in-sync replica has it. Callers `flush()` before their handler returns, because a frozen
Lambda container would otherwise sit on unsent events.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any

from chalicelib import metrics
from chalicelib.observability import logger
from chalicelib.settings import get_settings
from chalicelib.warm import PerContainer

JOB_EVENT_TYPES = frozenset({"job_requested", "job_started", "job_progress", "droplet_created",
                             "job_completed", "job_failed"})


def envelope(event_type: str, *, job_id: str | None, job_type: str | None, cluster_id: str | None,
             progress: int | None, message: str, trace_id: str | None, correlation_id: str | None,
             payload: dict[str, Any] | None = None, tenant_id: str | None = None) -> dict[str, Any]:
    """The v1 event envelope (../shared/reference/api-v1.md), with an ISO-8601 UTC timestamp, plus the tenant
    of the job's cluster (issue 13): the event handler applies an event only within that tenant."""
    return {
        "type": event_type, "job_id": job_id, "job_type": job_type, "cluster_id": cluster_id, "tenant_id": tenant_id,
        "progress": progress, "message": message,
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        "trace_id": trace_id, "correlation_id": correlation_id, "payload": payload or {},
    }


def serialize(value: Any) -> bytes:
    """A record's value as produced (the producer's serializer, and what the signature covers); bytes are a value
    serialized already (`EventPublisher.publish` encodes once for the signature and the record)."""
    if isinstance(value, bytes):
        return value
    return json.dumps(value, separators=(",", ":"), default=str).encode()


@functools.lru_cache(maxsize=None)
def _producer_for(bootstrap: str) -> Any:
    """The container's one producer for `bootstrap`, shared by every EventPublisher (cluster-events and
    its dead-letter topic alike): one connection set and one I/O thread per container, not one per topic."""
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, retries=3,
        compression_type=get_settings().kafka_compression_type,
        max_block_ms=5000, request_timeout_ms=10000,
        bootstrap_timeout_ms=5000,  # kafka-python connects in the constructor: 30 s by default, not max_block_ms
        key_serializer=lambda k: k.encode() if k is not None else None,
        value_serializer=serialize,
    )


class EventPublisher:
    """Publishes envelopes to one topic (`settings.events_topic` unless told); the producer, shared per
    broker, connects on first use."""

    def __init__(self, bootstrap: str | None = None, topic: str | None = None) -> None:
        settings = get_settings()
        self.bootstrap = bootstrap or settings.kafka_bootstrap
        self.topic = topic or settings.events_topic
        self._producer: Any = None

    @property
    def producer(self) -> Any:
        if self._producer is None:
            self._producer = _producer_for(self.bootstrap)
        return self._producer

    def publish(self, event: dict[str, Any]) -> None:
        """Queue one envelope for sending (keyed by its cluster_id), signed (`chalicelib.event_signing`).
        Raises if the broker is unreachable."""
        from chalicelib.event_signing import HEADER, sign

        value = serialize(event)
        self.producer.send(self.topic, key=event.get("cluster_id"), value=value, headers=[(HEADER, sign(value))])

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued event is acknowledged (or raise after `timeout` seconds)."""
        if self._producer is not None:
            self._producer.flush(timeout=timeout)

    def publish_best_effort(self, event: dict[str, Any], *, flush: bool = True) -> bool:
        """Publish (and flush, unless the caller flushes later); on failure log and count instead of
        raising. For callers whose work is already committed (a queued job, a job's new state) and must
        not be reported as failed, or redone, because of the event."""
        try:
            self.publish(event)
            if flush:
                self.flush()
            return True
        except Exception:  # broker down, timeout, serialisation: the event is lost, the work is not
            metrics.inc(metrics.EVENT_PUBLISH_FAILURES, (event["type"],))
            logger.exception("event publish failed", extra={"event_type": event["type"], "job_id": event.get("job_id"),
                                                            "trace_id": event.get("trace_id")})
            return False


_publisher: PerContainer[EventPublisher] = PerContainer(EventPublisher)


def get_event_publisher() -> EventPublisher:
    """The warm container's EventPublisher."""
    return _publisher.get()


def set_event_publisher(publisher: EventPublisher | None) -> None:
    """Install `publisher` (tests); None restores the default on next use."""
    _publisher.set(publisher)
