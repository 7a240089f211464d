"""The dead-letter destination for malformed records: the Kafka topic `cluster-events.dlq`.

Each dead letter is one JSON document: where the record came from (topic, partition, offset, timestamp),
why it was refused (`reason`: bad_base64, bad_json, missing_field, wrong_type, missing_value, and, for a record
not produced by the app (issue 18, chalicelib/event_signing.py), unsigned or bad_signature; `error`), and
the record itself as delivered (base64 `key` and `value`, `headers`), so it can be inspected and replayed.
It is keyed like the original (by cluster id), through the one EventPublisher (`chalicelib/events.py`).
"""
from __future__ import annotations

from typing import Any, Protocol

from chalicelib.settings import get_settings
from chalicelib.warm import PerContainer


class DeadLetterSink(Protocol):
    def send(self, letter: dict[str, Any]) -> None:
        """Queue one dead letter; raise if it cannot be handed over."""

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued letter is stored (raise otherwise, or after `timeout` seconds if given)."""


class KafkaDeadLetters:
    """Produces to `settings.events_dlq_topic` with the shared producer settings of EventPublisher."""

    def __init__(self, topic: str | None = None) -> None:
        from chalicelib.events import EventPublisher

        self._publisher = EventPublisher(topic=topic or get_settings().events_dlq_topic)

    def send(self, letter: dict[str, Any]) -> None:
        self._publisher.publish(letter)  # keyed by letter["cluster_id"], the original record's key

    def flush(self, timeout: float | None = None) -> None:
        if timeout is None:
            self._publisher.flush()
        else:
            self._publisher.flush(timeout=timeout)


class InMemoryDeadLetters:
    """Keeps letters in a list (fast tests)."""

    def __init__(self) -> None:
        self.letters: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []

    def send(self, letter: dict[str, Any]) -> None:
        self._pending.append(letter)

    def flush(self, timeout: float | None = None) -> None:
        self.letters.extend(self._pending)
        self._pending.clear()


_sink: PerContainer[DeadLetterSink] = PerContainer(KafkaDeadLetters)


def get_dead_letters() -> DeadLetterSink:
    """The warm container's dead-letter sink (the Kafka topic unless a test installed another)."""
    return _sink.get()


def set_dead_letters(sink: DeadLetterSink | None) -> None:
    _sink.set(sink)
