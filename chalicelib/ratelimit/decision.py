"""What a token bucket answers: allowed or not, what is left, and how long until enough has refilled."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """One rate-limit decision.

    `remaining` is the token count left after the decision (fractional: buckets refill continuously),
    `retry_after` the seconds until the requested tokens will be available (0 when allowed), and
    `limit` the bucket's capacity. `degraded` marks a decision taken by policy because the bucket's
    store was unreachable (fail-open or fail-closed), not by counting tokens. `at` is the Redis server
    time (Unix seconds) a Redis bucket decided at: the one clock all instances share.
    """

    allowed: bool
    remaining: float
    retry_after: float
    limit: int
    degraded: bool = False
    at: float | None = None

    def headers(self) -> dict[str, str]:
        """The HTTP headers a client sees: X-RateLimit-* always, Retry-After (whole seconds, rounded up) on denial."""
        headers = {"X-RateLimit-Limit": str(self.limit)}
        if not self.degraded:
            # A degraded decision counted nothing, so claiming a remaining count would be made up.
            headers["X-RateLimit-Remaining"] = str(max(0, math.floor(self.remaining)))
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


def check_request(n: int, capacity: int) -> None:
    """Reject requests no bucket could ever grant, rather than answer "retry later" forever."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if n > capacity:
        raise ValueError(f"n={n} exceeds the bucket capacity {capacity}; it can never be granted")
