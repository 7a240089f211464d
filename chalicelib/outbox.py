"""The outbox relay: publishes the events the app wrote to its outbox table, in order, to Kafka.

Every producer (JobService for job and droplet events, DeploymentService for deployment events, the
autoscaler through JobService) writes its event into `outbox` in the same MariaDB transaction as the
state change the event announces (`OutboxRepository.add` inside `unit_of_work`); nothing on a request or
job path talks to the broker. The relay then:

- holds the one relay lock (MariaDB GET_LOCK) while it publishes, so two relays never interleave a key's
  events; a relay that finds the lock taken leaves the work to the holder;
- reads unsent rows in id order (the order of the state changes) and sends them with a producer that has
  one request in flight per connection and acks=all, so each partition receives them in that order;
- stamps `sent_at` on the rows the broker acknowledged, up to the first one it did not: that row and
  everything after it are sent again next time (at least once; each event carries its outbox `id`,
  which the event pipeline's ledger deduplicates on);
- after a failure, backs off (1 s doubling to 30 s) before this container tries again.

- a relay that held the lock looks once more after releasing it: events committed by a relay that found
  the lock taken in the meantime are sent now, not left for the next batch or the next sweep;
- after a failure, drops its producer (a client that lost its broker may never recover: kafka-python
  keeps failing sends of a producer whose state went bad) and builds a new one on the next attempt.

It runs after commit at the end of every job-worker batch (bounded by a small time budget, so a broker
outage costs a worker at most that budget, never a failed job) and, as the sweeping relay, at the start of
the scheduled job sweeper every minute, ignoring the backoff (docs/decisions.md).
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from chalicelib import metrics
from chalicelib.observability import logger
from chalicelib.repositories.outbox import OutboxRepository, unit_of_work
from chalicelib.settings import get_settings

BATCH_ROWS = 200
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
MAX_BLOCK_SECONDS = 2.0  # the relay's producer blocks at most this long on a send, and on connecting

__all__ = ["OutboxRelay", "RelayResult", "record_event", "get_outbox_relay", "unit_of_work"]


def record_event(event: dict[str, Any], *, topic: str | None = None, outbox: OutboxRepository | None = None) -> str:
    """Write `event` (a v1 envelope) to the outbox under a fresh event id, which the published event
    carries as `id`; inside the caller's `unit_of_work` it commits with the state change. Keyed like
    before: by `cluster_id`, so a cluster's events stay in one partition."""
    event_id = str(uuid.uuid4())
    body = {**event, "id": event_id}
    (outbox or OutboxRepository()).add(event_id=event_id, topic=topic or get_settings().events_topic,
                                       partition_key=event.get("cluster_id"), event=body)
    return event_id


def _new_relay_producer(bootstrap: str, deadline: float) -> Any:
    """A producer for the relay alone: one in-flight request per connection (retries cannot reorder a
    partition), acks=all, and short blocking limits so an unreachable broker costs seconds, not minutes.
    kafka-python connects in the constructor, for up to its `bootstrap_timeout_ms` (30 s by default), whatever
    `max_block_ms` says: the relay bounds it by MAX_BLOCK_SECONDS and by its `deadline` (monotonic), at least 0.5 s.
    Not idempotent: delivery is at least once by design (the ledger deduplicates on the event id), and
    kafka-python's idempotent mode fails in-flight batches and bumps its epoch when the broker restarts."""
    from kafka import KafkaProducer

    bootstrap_seconds = max(0.5, min(MAX_BLOCK_SECONDS, deadline - time.monotonic()))
    return KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=2, retries=3, max_in_flight_requests_per_connection=1,
        compression_type=get_settings().kafka_compression_type,
        enable_idempotence=False, max_block_ms=int(MAX_BLOCK_SECONDS * 1000), request_timeout_ms=5000, reconnect_backoff_max_ms=2000,
        bootstrap_timeout_ms=int(bootstrap_seconds * 1000),
        key_serializer=lambda k: k.encode() if k is not None else None,
    )


@dataclass
class RelayResult:
    sent: int = 0
    failed: bool = False
    skipped: str | None = None  # "backoff" | "locked" when nothing was tried


class OutboxRelay:
    def __init__(self, outbox: OutboxRepository | None = None, bootstrap: str | None = None) -> None:
        self.outbox = outbox or OutboxRepository()
        self.bootstrap = bootstrap or get_settings().kafka_bootstrap
        self._failures = 0
        self._retry_at = 0.0
        self._producer: Any = None  # built on first use, dropped after a failure

    def drain(self, budget_seconds: float = 3.0, *, ignore_backoff: bool = False) -> RelayResult:
        """Publish unsent events, oldest first, until none is left, one fails, or `budget_seconds` pass."""
        now = time.monotonic()
        if not ignore_backoff and now < self._retry_at:
            return RelayResult(skipped="backoff")
        deadline = now + budget_seconds
        result = RelayResult()
        while True:
            with self.outbox.relay_lock() as held:
                if not held:  # the holder sends these events, and looks again after it lets go
                    result.skipped = None if result.sent else "locked"
                    break
                self._send_unsent(result, deadline)
            # Events another relay committed while this one held the lock: that relay found the lock taken
            # and left them here. Sent now, not at the next batch or sweep.
            if result.failed or time.monotonic() >= deadline or not self.outbox.unsent(1):
                break
        if result.sent:
            metrics.inc(metrics.OUTBOX_RELAYED, ("sent",), result.sent)
        if result.failed:
            self._drop_producer()
            self._failures += 1
            self._retry_at = time.monotonic() + min(BACKOFF_MAX_SECONDS,
                                                    BACKOFF_FIRST_SECONDS * 2 ** (self._failures - 1))
            metrics.inc(metrics.OUTBOX_RELAYED, ("failed",))
        else:
            self._failures, self._retry_at = 0, 0.0
        return result

    def _send_unsent(self, result: RelayResult, deadline: float) -> None:
        """While holding the lock: publish unsent rows in order until none is left, one fails, or the deadline."""
        while time.monotonic() < deadline:
            rows = self.outbox.unsent(BATCH_ROWS)
            if not rows:
                return
            sent = self._publish(rows, deadline)
            self.outbox.mark_sent([row["id"] for row in rows[:sent]])
            result.sent += sent
            if sent < len(rows):
                result.failed = True
                return

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception as exc:  # noqa: BLE001 - it is being thrown away either way
                logger.warning("outbox relay: closing a failed producer", extra={"error": repr(exc)})

    def _publish(self, rows: list[dict[str, Any]], deadline: float) -> int:
        """Send `rows` in order; how many of them, from the first, the broker acknowledged."""
        futures: list[Any] = []
        try:
            from chalicelib.event_signing import HEADER, sign  # issue 18: every produced record is signed

            if self._producer is None:
                self._producer = _new_relay_producer(self.bootstrap, deadline)
            producer = self._producer
            for row in rows:
                value = row["body"].encode()
                futures.append(producer.send(row["topic"], key=row["partition_key"], value=value,
                                             headers=[(HEADER, sign(value))]))
            producer.flush(timeout=max(0.5, deadline - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - broker unreachable: what was acknowledged is counted below
            logger.warning("outbox relay: broker unavailable", extra={"error": repr(exc)})
        acknowledged = 0
        for row, future in zip(rows, futures):
            if future.is_done and future.succeeded():
                acknowledged += 1
                continue
            error = repr(future.exception) if future.is_done else "not acknowledged in time"
            self.outbox.record_failure(row["id"], error)
            logger.warning("outbox relay: event not published; retried later",
                           extra={"outbox_id": row["id"], "event_id": row["event_id"], "error": error})
            break
        return acknowledged


_relays: dict[str, OutboxRelay] = {}


def get_outbox_relay() -> OutboxRelay:
    """The warm container's relay (its backoff state lives as long as the container)."""
    bootstrap = get_settings().kafka_bootstrap
    if bootstrap not in _relays:
        _relays[bootstrap] = OutboxRelay(bootstrap=bootstrap)
    return _relays[bootstrap]

