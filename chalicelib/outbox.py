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

It runs after commit at the end of every job-worker batch (bounded by a small time budget, so a broker
outage costs a worker at most that budget, never a failed job) and, as the sweeping relay, in the
scheduled `outbox_relay` function, which drains for most of each minute (docs/decisions.md).
"""
from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=None)
def _relay_producer_for(bootstrap: str) -> Any:
    """A producer for the relay alone: one in-flight request per connection (retries cannot reorder a
    partition), acks=all, and short blocking limits so an unreachable broker costs seconds, not minutes."""
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=2, retries=3, max_in_flight_requests_per_connection=1,
        max_block_ms=2000, request_timeout_ms=5000, reconnect_backoff_max_ms=2000,
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

    def drain(self, budget_seconds: float = 3.0, *, ignore_backoff: bool = False) -> RelayResult:
        """Publish unsent events, oldest first, until none is left, one fails, or `budget_seconds` pass."""
        now = time.monotonic()
        if not ignore_backoff and now < self._retry_at:
            return RelayResult(skipped="backoff")
        deadline = now + budget_seconds
        result = RelayResult()
        with self.outbox.relay_lock() as held:
            if not held:
                return RelayResult(skipped="locked")
            while time.monotonic() < deadline:
                rows = self.outbox.unsent(BATCH_ROWS)
                if not rows:
                    break
                sent = self._publish(rows, deadline)
                self.outbox.mark_sent([row["id"] for row in rows[:sent]])
                result.sent += sent
                if sent < len(rows):
                    result.failed = True
                    break
        if result.sent:
            metrics.inc(metrics.OUTBOX_RELAYED, ("sent",), result.sent)
        if result.failed:
            self._failures += 1
            self._retry_at = time.monotonic() + min(BACKOFF_MAX_SECONDS,
                                                    BACKOFF_FIRST_SECONDS * 2 ** (self._failures - 1))
            metrics.inc(metrics.OUTBOX_RELAYED, ("failed",))
        else:
            self._failures, self._retry_at = 0, 0.0
        return result

    def _publish(self, rows: list[dict[str, Any]], deadline: float) -> int:
        """Send `rows` in order; how many of them, from the first, the broker acknowledged."""
        futures: list[Any] = []
        try:
            from chalicelib.event_signing import HEADER, sign  # issue 18: every produced record is signed

            producer = _relay_producer_for(self.bootstrap)
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


def run_sweeping_relay(seconds: float, interval: float = 0.25) -> dict[str, Any]:
    """The scheduled relay: drain every `interval` for `seconds` (under the function's timeout), so an
    event no worker relayed (API-side writes, a worker killed after commit) goes out within a second."""
    relay = get_outbox_relay()
    end = time.monotonic() + seconds
    sent = rounds = 0
    while time.monotonic() < end:
        try:
            result = relay.drain(budget_seconds=min(5.0, max(0.5, end - time.monotonic())))
            sent += result.sent
        except Exception as exc:  # noqa: BLE001 - MariaDB down: try again next round
            logger.warning("outbox relay round failed", extra={"error": repr(exc)})
        rounds += 1
        metrics.flush()
        time.sleep(interval)
    return {"sent": sent, "rounds": rounds}
