"""One instance per warm container, created on first use and replaceable by tests; and `WarmHeap`, which takes
what a warm container has built out of the cyclic garbage collector's sight.

The settings, the Redis clients, the job queue, the event publisher, the dead-letter sink, the limiter
manager and the event batch processor each hold state worth keeping across invocations; `PerContainer`
is the one way they are created lazily (once, even when threads race, as under `chalice local`) and
swapped for a stand-in, or forgotten, in tests. (Instances per key - a boto3 client per service, a
Kafka producer per broker, a decision line per Redis client - are `functools.lru_cache`d functions.)
"""
from __future__ import annotations

import gc
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


class WarmHeap:
    """Once a container has handled its first invocation, what it has built (modules, models, schemas, clients,
    settings: most of the objects the collector tracks) lives as long as the container does. `settle()`, called at
    the start of each invocation, does at the second one, once: a full collection (the first invocation's garbage
    goes), then `gc.freeze()`, which moves every object still alive to a generation the collector no longer walks.

    Without it each full collection, triggered by the invocations' own allocations, walks all of them again (issue
    16: about 1.3 ms of CPU a batch of 100 in the event handler, as a pause of ~75 ms every ~60 batches). Nothing is
    kept alive that would otherwise be freed: reference counting frees frozen objects as before; only a reference
    cycle among them, should one become garbage later, is not collected."""

    def __init__(self) -> None:
        self._invocations = 0

    def settle(self) -> None:
        self._invocations += 1
        if self._invocations == 2:
            gc.collect()
            gc.freeze()
