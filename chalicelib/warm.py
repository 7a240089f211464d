"""One instance per warm container, created on first use and replaceable by tests.

The settings, the Redis clients, the job queue, the event publisher, the dead-letter sink, the limiter
manager and the event batch processor each hold state worth keeping across invocations; `PerContainer`
is the one way they are created lazily (once, even when threads race, as under `chalice local`) and
swapped for a stand-in, or forgotten, in tests. (Instances per key - a boto3 client per service, a
Kafka producer per broker, a decision line per Redis client - are `functools.lru_cache`d functions.)
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerContainer(Generic[T]):
    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._instance: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """The instance, created by the factory on first use."""
        instance = self._instance
        if instance is None:
            with self._lock:
                if self._instance is None:
                    self._instance = self._factory()
                instance = self._instance
        return instance

    def set(self, instance: T | None) -> None:
        """Install `instance` (tests); None makes the next `get` create the default again."""
        self._instance = instance
