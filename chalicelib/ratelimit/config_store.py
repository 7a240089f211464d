"""Where limiter config lives: the `limiter_overrides` table in MariaDB (the durable copy, issue 17) and the
`limiter_config:<name>:<scope>` hashes in Redis, its cache on the hot path.

Writes go to MariaDB first, then to Redis. Reads come from Redis; the key `limiter_config_loaded` says the
cache holds every override, and when it is missing (a Redis that lost its data) the first read reloads all
overrides from MariaDB.
"""
from __future__ import annotations

from typing import Iterator

import redis

from chalicelib.errors import ServiceUnavailableError
from chalicelib.observability import logger
from chalicelib.ratelimit.config import GLOBAL, LimiterConfig, Scope, config_key, default_config, parse_stored, stored_view
from chalicelib.repositories.base import unit_of_work
from chalicelib.repositories.limiter_overrides import LimiterOverrideRepository

LOADED_KEY = "limiter_config_loaded"  # not under `limiter_config:`, so no scan or delete of configs meets it


def _fields(refill_rate: float | None, capacity: int | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    if refill_rate is not None:
        mapping["refill_rate"] = repr(float(refill_rate))
    if capacity is not None:
        mapping["capacity"] = str(int(capacity))
    return mapping


def _unavailable(exc: redis.RedisError) -> ServiceUnavailableError:
    logger.warning("limiter config store unavailable", extra={"error": type(exc).__name__})
    return ServiceUnavailableError("rate limit config store unavailable")


class ConfigStore:
    """Reads and writes limiter config hashes. One place knows their layout."""

    def __init__(self, client: redis.Redis, overrides: LimiterOverrideRepository | None = None) -> None:
        self._client = client
        self._overrides = overrides or LimiterOverrideRepository()

    def reload(self) -> int:
        """Copy every override from MariaDB into Redis and mark the cache complete; how many. Raises
        redis.RedisError without Redis; a MariaDB outage leaves the cache as it is (tried again next read)."""
        try:
            rows = self._overrides.all()
        except Exception as exc:  # noqa: BLE001 - MariaDB down: serve what Redis has, defaults for the rest
            logger.warning("limiter overrides not reloaded", extra={"error": repr(exc)})
            return 0
        pipe = self._client.pipeline(transaction=True)
        for row in rows:
            mapping = _fields(row["refill_rate"], row["capacity"])
            if mapping:
                pipe.hset(row["config_key"], mapping=mapping)
        pipe.set(LOADED_KEY, "1")
        pipe.execute()
        if rows:
            logger.info("limiter overrides reloaded into Redis", extra={"overrides": len(rows)})
        return len(rows)

    def resolve(self, name: str, scope: Scope) -> LimiterConfig:
        """The effective config: scope hash, then global hash, then defaults; one round trip.
        Raises redis.RedisError when Redis is unreachable (the caller decides what that means)."""
        keys = [config_key(name, scope)]
        if scope != GLOBAL:
            keys.append(config_key(name, GLOBAL))
        pipe = self._client.pipeline(transaction=False)
        pipe.exists(LOADED_KEY)
        for key in keys:
            pipe.hgetall(key)
        loaded, *stored = pipe.execute()
        if not loaded:
            self.reload()
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            stored = pipe.execute()
        levels = [parse_stored(key, fields) for key, fields in zip(keys, stored)]
        default = default_config(name)
        rate = next((r for r, _ in levels if r is not None), default.refill_rate)
        capacity = next((c for _, c in levels if c is not None), default.capacity)
        return LimiterConfig(rate, capacity)

    def get(self, name: str, scope: Scope) -> dict[str, float | int] | None:
        """The stored override for exactly this scope (no fallback), or None."""
        key = config_key(name, scope)
        try:
            fields = self._client.hgetall(key)
        except redis.RedisError as exc:
            raise _unavailable(exc) from None
        if not fields:
            return None
        return stored_view(key, fields)

    def save(self, name: str, scope: Scope, refill_rate: float | None, capacity: int | None) -> dict[str, float | int]:
        """Store the given fields (either or both) and return the stored override."""
        key = config_key(name, scope)
        mapping = _fields(refill_rate, capacity)
        # The durable copy and the cache together: Redis refusing rolls the MariaDB write back (a 503 then
        # leaves nothing half-written); MariaDB down is a 503 before Redis is touched.
        with unit_of_work():
            self._overrides.save(key, refill_rate, capacity)
            try:
                pipe = self._client.pipeline(transaction=True)
                pipe.hset(key, mapping=mapping)
                pipe.hgetall(key)
                _, fields = pipe.execute()
            except redis.RedisError as exc:
                raise _unavailable(exc) from None
        return stored_view(key, fields)

    def delete(self, key: str) -> bool:
        """Delete one override (MariaDB, then its cached hash); True when it existed."""
        with unit_of_work():
            existed = self._overrides.delete(key)
            try:
                return bool(self._client.delete(key)) or existed
            except redis.RedisError as exc:
                raise _unavailable(exc) from None

    def scan(self, pattern: str, limit: int = 1000) -> Iterator[tuple[str, dict[str, float | int]]]:
        """(key, stored override) for up to `limit` config hashes matching `pattern`, via SCAN (never KEYS,
        which blocks Redis for the whole keyspace)."""
        try:
            seen = 0
            for key in self._client.scan_iter(match=pattern, count=200, _type="hash"):
                fields = self._client.hgetall(key)
                if fields:
                    yield key, stored_view(key, fields)
                    seen += 1
                    if seen >= limit:
                        return
        except redis.RedisError as exc:
            raise _unavailable(exc) from None
