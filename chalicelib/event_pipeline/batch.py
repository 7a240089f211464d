"""One `aws:kafka` batch through the pipeline: decode, claim, apply or dead-letter, mark, count.

Records are decoded with Powertools' Kafka data classes (base64 key/value/headers) and validated into typed
events (`model.parse_event`). Records are applied in offset order within each topic-partition. A malformed
record (bad base64, bad JSON, missing fields, wrong types, no value) is counted, logged with its topic,
partition and offset, and dead-lettered; it never fails the batch. A transient failure while applying a
valid event (database, Redis, the broker or the job queue down: `waits_out`) fails the invocation: the claims
not yet applied are released and the event source retries the batch (for as long as the outage lasts: the
mapping's MaximumRetryAttempts is -1), whose already-applied events are then skipped as duplicates. Any other
failure applying an event is about that event's content: it is dead-lettered at once (`apply_failed`) and the
batch goes on.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import math
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEvent, KafkaEventRecord
from pydantic import ValidationError

from chalicelib.dependencies import is_outage
from chalicelib.event_signing import HEADER, untrusted_reason
from chalicelib.event_pipeline.counters import BatchCounts
from chalicelib.event_pipeline.dead_letters import get_dead_letters
from chalicelib.event_pipeline.handler import EventHandler
from chalicelib.event_pipeline.ledger import EventLedger, EventsInFlight
from chalicelib.event_pipeline.model import Envelope, malformed_reason, parse_event
from chalicelib.observability import logger
from chalicelib.warm import PerContainer

CLAIM_LEASE_SECONDS = 15
# When a batch fails after dead letters were handed over, how long to wait for the broker to store them.
SETTLE_ON_FAILURE_SECONDS = 2.0


class Decoded(NamedTuple):
    record: KafkaEventRecord
    key: str  # idempotency key
    event: Envelope | None = None
    reason: str | None = None  # why malformed
    error: str | None = None


def _record_key(data: dict[str, Any]) -> str:
    # The record's timestamp is part of its identity: an offset alone repeats when a topic is recreated
    # (or a broker's data reset), and the ledger would then skip new events as replays of old ones for
    # its whole TTL. A redelivery of the same record carries the same timestamp.
    return f"{data['topic']}:{data['partition']}:{data['offset']}:{data['timestamp']}"


_HEADER = HEADER.lower()


def _signature(data: dict[str, Any]) -> bytes | None:
    """The signature header's value, as Powertools' `decoded_headers` gives it (names compared regardless of
    case, the last one wins, byte values that came signed taken modulo 256), without decoding every header
    byte by byte in Python (issue 16: that was a third of a record's decoding)."""
    found = None
    for chunk in data.get("headers") or ():
        for name, value in chunk.items():
            if name.lower() == _HEADER:
                found = value
    if found is None:
        return None
    try:
        return bytes(found)
    except ValueError:  # negative (signed) byte values
        return bytes(b & 0xFF for b in found)


def decode(record: KafkaEventRecord) -> Decoded:
    """The record as a typed event, or as a malformed record with its reason. Reads the record's fields from
    its dict (`raw_event`): Powertools' properties cost more than the rest of decoding together."""
    data = record.raw_event
    if data.get("value") is None:
        return Decoded(record, _record_key(data), reason="missing_value", error="record has no value")
    try:
        raw = base64.b64decode(data["value"])  # as KafkaEventRecord.decoded_value
    except (binascii.Error, ValueError, TypeError) as exc:
        return Decoded(record, _record_key(data), reason="bad_base64", error=str(exc))
    reason = untrusted_reason(raw, _signature(data))
    if reason is not None:  # not produced by the app: never applied (issue 18)
        return Decoded(record, _record_key(data), reason=reason, error="record not signed by the app")
    try:
        event = parse_event(raw)
    except ValidationError as exc:
        return Decoded(record, _record_key(data), reason=malformed_reason(exc),
                       error=exc.errors(include_url=False, include_input=False).__repr__()[:1000])
    return Decoded(record, f"id:{event.id}" if event.id else _record_key(data), event=event)


def waits_out(exc: BaseException) -> bool:
    """True when applying failed because something the event needs is unreachable or busy (retry the batch
    until it is back; a deadlock or lock wait with another writer is "busy"), False when the event itself
    cannot be applied."""
    if isinstance(exc, EventsInFlight) or is_outage(exc):
        return True
    from chalicelib.repositories.base import is_contention  # the database layer, only on this failure path

    return is_contention(exc)


def _dead_letter(item: Decoded) -> dict[str, Any]:
    record = item.record
    try:
        cluster_key = record.decoded_key.decode("utf-8") if record.key else None
    except (binascii.Error, ValueError):
        cluster_key = None
    return {
        "type": "dead_letter", "reason": item.reason, "error": item.error, "cluster_id": cluster_key,
        "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset,
                   "timestamp": record.timestamp},
        "key": record.get("key"), "value": record.get("value"), "headers": record.get("headers") or [],
    }


class BatchProcessor:
    def __init__(self, redis: Any, handler: EventHandler, ledger: EventLedger, dead_letters: Any = None) -> None:
        self.redis = redis
        self.handler = handler
        self.ledger = ledger
        self._dead_letters = dead_letters

    @property
    def dead_letters(self):
        return self._dead_letters or get_dead_letters()

    def process(self, event: dict[str, Any], remaining_ms: int | None = None) -> dict[str, int]:
        """Apply a batch; returns {records, applied, duplicates, malformed}. Raises on a transient failure."""
        items = [decode(record) for record in KafkaEvent(event).records]
        if not items:
            return {"records": 0, "applied": 0, "duplicates": 0, "malformed": 0}
        # A claim is a short lease: an invocation killed mid-batch (timeout, crash, redeploy) holds its events
        # only that long, and the retry waits for it rather than failing (a retry that failed on it would
        # send the batch to the on-failure destination after the last attempt, unapplied).
        remaining = (remaining_ms or 60_000) / 1000
        lease = max(1, min(CLAIM_LEASE_SECONDS, math.ceil(remaining)))
        claimed = self.ledger.claim([i.key for i in items], lease, wait_seconds=max(0.0, remaining - lease - 5))
        counts = BatchCounts()
        applied = 0
        settling = False
        letters: list[Decoded] = []
        try:
            # The malformed records' letters go to the producer first, together (one produce request): the broker
            # stores them while the batch's events are applied (`_settle_letters` waits for them at the end).
            for item, ok in zip(items, claimed):
                if ok and item.event is None:
                    self._hand_over(item, letters)
            for item, ok in zip(items, claimed):
                if not ok:
                    counts.duplicate()
                elif item.event is None:
                    continue  # handed over above
                else:
                    try:
                        self.handler.apply(item.event, item.key, counts)
                    except Exception as exc:
                        if waits_out(exc):
                            raise
                        # Its own content cannot be applied (no retry can change that): dead-lettered at once.
                        self._hand_over(item._replace(reason="apply_failed", error=repr(exc)[:1000]), letters)
                        continue
                    applied += 1
            self.handler.flush(counts, mark=False)  # stored; their marks go with the letters' (one command)
            settling = True
            malformed = self._settle_letters(letters, counts)
        except BaseException:
            # Give back what was not applied (claims still in progress); applied events keep their mark. Letters
            # already handed to the producer when something else failed are settled if the broker stores them
            # (the retry would send them again otherwise); if it does not, their claims go back with the rest.
            self.handler.discard()
            if letters and not settling:
                with contextlib.suppress(Exception):  # briefly: a broker that is down must not hold the retry up
                    self._settle_letters(letters, counts, timeout=SETTLE_ON_FAILURE_SECONDS)
            self.ledger.release([i.key for i, ok in zip(items, claimed) if ok])
            raise
        finally:
            counts.record()
        return {"records": len(items), "applied": applied, "duplicates": len(items) - applied - malformed,
                "malformed": malformed}

    def _hand_over(self, item: Decoded, letters: list[Decoded]) -> None:
        """Hand the letter to the producer at once: the broker stores it while the batch's events are applied,
        and `_settle_letters` waits for it at the end (issue 16: the broker's round trip overlaps the database's
        instead of following it)."""
        self.dead_letters.send(_dead_letter(item))
        letters.append(item)

    def _settle_letters(self, letters: list[Decoded], counts: BatchCounts, timeout: float | None = None) -> int:
        """Wait until every letter handed over is stored (raise otherwise), then mark them, with the handler's
        settled events (one command), and count them. Returns how many.

        Should the broker not store them, the events the handler stored are still marked (then it raises): the
        retry must not apply them again, only send the letters again."""
        if letters:
            try:
                self.dead_letters.flush(timeout)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.handler.mark_settled(counts)
                raise
        self.handler.mark_settled(counts, also=[i.key for i in letters])
        for item in letters:
            counts.malformed(item.reason)
            logger.warning("malformed record dead-lettered", extra={
                "topic": item.record.topic, "partition": item.record.partition,
                "offset": item.record.offset, "reason": item.reason, "error": item.error})
        return len(letters)


def _new_processor() -> BatchProcessor:
    from chalicelib.redis_client import get_redis
    from chalicelib.settings import get_settings

    settings = get_settings()
    redis = get_redis()
    ledger = EventLedger(redis, settings.event_dedup_ttl_seconds)
    return BatchProcessor(redis, EventHandler(redis, ledger, scale_cooldown_seconds=settings.scale_cooldown_seconds), ledger)


_processor: PerContainer[BatchProcessor] = PerContainer(_new_processor)


def get_batch_processor() -> BatchProcessor:
    """The warm container's processor (Redis client, ledger, handler built once)."""
    return _processor.get()


def reset_batch_processor() -> None:
    """Forget the cached processor (tests that change settings)."""
    _processor.set(None)
