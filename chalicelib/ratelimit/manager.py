"""LimiterManager: named, scoped Redis buckets with cached config and a policy for when Redis is down."""
from __future__ import annotations

import threading
import time
from typing import Callable

import redis

from chalicelib.errors import ServiceUnavailableError
from chalicelib.observability import logger
from chalicelib.ratelimit import metrics
from chalicelib.ratelimit.config import LimiterConfig, Scope, default_config
from chalicelib.ratelimit.config_store import ConfigStore
from chalicelib.ratelimit.decision import Decision
from chalicelib.ratelimit.redis_bucket import RedisTokenBucket, bucket_key
from chalicelib.redis_client import get_redis
from chalicelib.settings import get_settings
from chalicelib.warm import PerContainer

# Bounds the per-container bucket cache: one entry per (limiter, scope) seen, and users are unbounded.
MAX_CACHED_BUCKETS = 10_000
# While Redis is down every request fails the same way; one log line per limiter per interval says it.
FAILURE_LOG_INTERVAL_SECONDS = 5.0
# After a failed round trip, decisions skip Redis for this long. A dead Redis costs the shared client's
# connect timeout and retries (seconds) per call; paying that on every request would turn an outage
# into a slow API. One request per interval and container probes Redis again.
REDIS_RETRY_AFTER_FAILURE_SECONDS = 2.0


class LimiterManager:
    """Hands out token buckets by limiter name and scope and takes decisions with them.

    Config is cached per warm container for `config_ttl` seconds, so a change made through the config
    API (or directly in Redis) is seen within that time without a Redis read per request. When Redis is
    unreachable a limiter admits (fail-open, the default) or denies (fail-closed, for names listed in
    `fail_closed`); either way the failure is logged and counted, and never surfaces as a 500. After a
    failure, decisions skip Redis for REDIS_RETRY_AFTER_FAILURE_SECONDS so an outage does not slow
    every request down.
    """

    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        config_ttl: float | None = None,
        fail_closed: frozenset[str] | set[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings = get_settings()
        self._client = client
        self.config_ttl = settings.ratelimit_config_ttl_seconds if config_ttl is None else config_ttl
        self.fail_closed = frozenset(settings.ratelimit_fail_closed if fail_closed is None else fail_closed)
        self._clock = clock
        # (name, scope) -> (bucket built from the config read at that time, when to read the config again)
        self._buckets: dict[tuple[str, str], tuple[RedisTokenBucket, float]] = {}
        self._lock = threading.Lock()
        self._last_failure_log: dict[str, float] = {}
        self._skip_redis_until = float("-inf")

    @property
    def client(self) -> redis.Redis:
        return self._client if self._client is not None else get_redis()

    @property
    def store(self) -> ConfigStore:
        return ConfigStore(self.client)

    def get_or_create(self, name: str, scope: Scope | str) -> RedisTokenBucket:
        """The bucket of limiter `name` for `scope` (a Scope or `global`/`user:<id>`/`cluster:<id>`),
        built from the effective config and kept while that config is fresh. A bucket is a handle on
        Redis state, so creating one costs only the config read. Raises redis.RedisError only when
        Redis is unreachable and nothing is cached."""
        scope = scope if isinstance(scope, Scope) else Scope.parse(scope)
        cache_key = (name, str(scope))
        now = self._clock()
        cached = self._buckets.get(cache_key)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            config = self.store.resolve(name, scope)
        except redis.RedisError:
            if cached is not None:
                return cached[0]  # a stale config beats none while Redis is away
            raise
        if cached is not None and (cached[0].refill_rate, cached[0].capacity) == (config.refill_rate, config.capacity):
            bucket = cached[0]
        else:
            bucket = RedisTokenBucket(self.client, bucket_key(name, str(scope)), config.refill_rate, config.capacity)
        with self._lock:
            self._buckets.pop(cache_key, None)
            self._buckets[cache_key] = (bucket, now + self.config_ttl)
            while len(self._buckets) > MAX_CACHED_BUCKETS:
                self._buckets.pop(next(iter(self._buckets)))  # oldest insertion first
        return bucket

    def config(self, name: str, scope: Scope | str) -> LimiterConfig:
        """The effective config of a limiter for a scope (cached like the bucket)."""
        bucket = self.get_or_create(name, scope)
        return LimiterConfig(bucket.refill_rate, bucket.capacity)

    def forget(self, name: str) -> None:
        """Drop this container's cached config of a limiter (all scopes: a global change affects them all)."""
        with self._lock:
            for key in [k for k in self._buckets if k[0] == name]:
                del self._buckets[key]

    def allow(self, name: str, scope: Scope | str, n: int = 1) -> Decision:
        """Decide one request against limiter `name` in `scope`, recording the metrics."""
        scope = scope if isinstance(scope, Scope) else Scope.parse(scope)
        if self._clock() < self._skip_redis_until:
            return self._without_redis(name, scope, None)
        try:
            decision = self.get_or_create(name, scope).allow(n)
        except redis.RedisError as exc:
            self._skip_redis_until = self._clock() + REDIS_RETRY_AFTER_FAILURE_SECONDS
            return self._without_redis(name, scope, exc)
        metrics.record_available(name, scope, decision.remaining)
        if not decision.allowed:
            metrics.record_exceeded(name, scope)
        return decision

    def status(self, name: str, scope: Scope) -> tuple[float, LimiterConfig]:
        """(tokens available now, effective config), taking nothing. ServiceUnavailableError without Redis."""
        try:
            bucket = self.get_or_create(name, scope)
            available = bucket.available()
        except redis.RedisError as exc:
            self._log_failure(name, exc)
            raise ServiceUnavailableError("rate limiter store unavailable") from None
        # No metric here: the status route takes any name, and labels must stay bounded.
        return available, LimiterConfig(bucket.refill_rate, bucket.capacity)

    def _without_redis(self, name: str, scope: Scope, exc: redis.RedisError | None) -> Decision:
        fail_open = name not in self.fail_closed
        metrics.record_store_failure(name, fail_open)
        self._log_failure(name, exc)
        cached = self._buckets.get((name, str(scope)))
        capacity = cached[0].capacity if cached is not None else default_config(name).capacity
        # Retry-After 1 s on a fail-closed denial: Redis outages are short or need a human anyway.
        return Decision(allowed=fail_open, remaining=0.0, retry_after=0.0 if fail_open else 1.0,
                        limit=capacity, degraded=True)

    def _log_failure(self, name: str, exc: Exception | None) -> None:
        now = self._clock()
        if now - self._last_failure_log.get(name, float("-inf")) >= FAILURE_LOG_INTERVAL_SECONDS:
            self._last_failure_log[name] = now
            logger.warning(
                "rate limiter store unreachable",
                extra={"limiter": name, "policy": "fail-closed" if name in self.fail_closed else "fail-open",
                       "error": type(exc).__name__ if exc is not None else "recent failure, not retried yet"},
            )


_manager: PerContainer[LimiterManager] = PerContainer(LimiterManager)


def get_limiter_manager() -> LimiterManager:
    """The manager of this warm container, built lazily on first use."""
    return _manager.get()
