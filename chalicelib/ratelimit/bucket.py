"""The in-memory token bucket: one process, one lock. Serves `chalice local` and single-process use;
the Redis bucket is the one that holds across Lambda instances."""
from __future__ import annotations

import threading
import time
from typing import Callable

from chalicelib.ratelimit.decision import Decision, check_request


class TokenBucket:
    """Refills continuously at `refill_rate` tokens per second up to `capacity`; starts full."""

    def __init__(self, refill_rate: float, capacity: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if refill_rate <= 0:
            raise ValueError("refill_rate must be positive")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.refill_rate = float(refill_rate)
        self.capacity = int(capacity)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(capacity)
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        # A clock that steps backwards must not drain the bucket.
        elapsed = max(0.0, now - self._last)
        self._tokens = min(float(self.capacity), self._tokens + elapsed * self.refill_rate)
        self._last = now

    def allow(self, n: int = 1) -> Decision:
        """Take `n` tokens if they are there. Raises ValueError when `n` exceeds the capacity."""
        check_request(n, self.capacity)
        with self._lock:
            self._refill()
            if self._tokens >= n:
                self._tokens -= n
                return Decision(True, self._tokens, 0.0, self.capacity)
            return Decision(False, self._tokens, (n - self._tokens) / self.refill_rate, self.capacity)

    def available(self) -> float:
        """Tokens available now, without taking any."""
        with self._lock:
            self._refill()
            return self._tokens
