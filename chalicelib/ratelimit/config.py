"""Limiter configuration: scopes, defaults, and the Redis hashes that override them.

A limiter is named (`diagnosis`, `jobs_create`, ...) and scoped (`global`, `user:<id>`,
`cluster:<id>`). Its refill rate and capacity come from the hash `limiter_config:<name>:<scope>`,
then from `limiter_config:<name>:global`, then from the built-in defaults: the v1 contract's lookup
order, applied field by field because v1 clients may store only one of the two fields.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterator

import redis

from chalicelib.errors import ServiceUnavailableError, ValidationError
from chalicelib.observability import logger

SCOPE_TYPES = ("global", "user", "cluster")
CONFIG_KEY_PREFIX = "limiter_config:"

# Bounds on stored config. A capacity beyond this is a typo, not a policy, and a rate beyond it means
# "unlimited", which is what removing the limiter from the route table is for.
MAX_CAPACITY = 1_000_000
MAX_REFILL_RATE = 1_000_000.0
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_SCOPE_ID_LENGTH = 128


@dataclass(frozen=True)
class LimiterConfig:
    refill_rate: float
    capacity: int

    def as_dict(self) -> dict[str, float | int]:
        return {"refill_rate": self.refill_rate, "capacity": self.capacity}


# The v1 defaults: the original's env-overridable values, fixed here.
DEFAULT_CONFIG = LimiterConfig(refill_rate=0.2, capacity=5)
DEFAULTS: dict[str, LimiterConfig] = {
    "diagnosis": LimiterConfig(refill_rate=0.2, capacity=5),
    "jobs_create": LimiterConfig(refill_rate=0.1, capacity=3),
}


def default_config(name: str) -> LimiterConfig:
    return DEFAULTS.get(name, DEFAULT_CONFIG)


@dataclass(frozen=True)
class Scope:
    """Who a bucket limits: everyone (`global`), one user or one cluster."""

    type: str
    id: str | None = None

    @classmethod
    def of(cls, scope_type: str | None, scope_id: str | None) -> "Scope":
        """Build and validate a scope from API fields; ValidationError names the offending field."""
        scope_type = (scope_type or "global").strip()
        if scope_type not in SCOPE_TYPES:
            raise ValidationError(f"scope_type: must be one of {', '.join(SCOPE_TYPES)}")
        if scope_type == "global":
            return GLOBAL
        scope_id = (scope_id or "").strip()
        if not scope_id:
            raise ValidationError(f"scope_id: required for scope_type {scope_type}")
        if len(scope_id) > MAX_SCOPE_ID_LENGTH or any(c.isspace() or not c.isprintable() for c in scope_id):
            raise ValidationError(f"scope_id: at most {MAX_SCOPE_ID_LENGTH} printable characters without spaces")
        return cls(scope_type, scope_id)

    @classmethod
    def parse(cls, text: str) -> "Scope":
        """`global`, `user:<id>` or `cluster:<id>`, as stored in keys."""
        scope_type, _, scope_id = text.partition(":")
        return cls.of(scope_type, scope_id or None)

    def __str__(self) -> str:
        return self.type if self.id is None else f"{self.type}:{self.id}"


GLOBAL = Scope("global")


def validate_name(name: str | None) -> str:
    name = (name or "").strip()
    if not NAME_PATTERN.match(name):
        raise ValidationError("name: 1 to 64 letters, digits, '_', '.' or '-'")
    return name


def config_key(name: str, scope: Scope) -> str:
    """The Redis hash holding a limiter's config override, e.g. `limiter_config:diagnosis:cluster:c1`."""
    return f"{CONFIG_KEY_PREFIX}{name}:{scope}"


def _parse_stored(key: str, fields: dict[str, str]) -> tuple[float | None, int | None]:
    """Read a stored hash leniently: a field someone wrote by hand that breaks the bounds is ignored
    (and logged), so the lookup falls through to the next level instead of failing every request."""
    rate = capacity = None
    try:
        if "refill_rate" in fields:
            value = float(fields["refill_rate"])
            if math.isfinite(value) and 0 < value <= MAX_REFILL_RATE:
                rate = value
        if "capacity" in fields:
            value = float(fields["capacity"])
            if math.isfinite(value) and value == int(value) and 1 <= value <= MAX_CAPACITY:
                capacity = int(value)
    except ValueError:
        pass
    if ("refill_rate" in fields and rate is None) or ("capacity" in fields and capacity is None):
        logger.warning("ignoring invalid stored limiter config", extra={"key": key, "config": fields})
    return rate, capacity


def _unavailable(exc: redis.RedisError) -> ServiceUnavailableError:
    logger.warning("limiter config store unavailable", extra={"error": type(exc).__name__})
    return ServiceUnavailableError("rate limit config store unavailable")


class ConfigStore:
    """Reads and writes limiter config hashes. One place knows their layout."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def resolve(self, name: str, scope: Scope) -> LimiterConfig:
        """The effective config: scope hash, then global hash, then defaults; one round trip.
        Raises redis.RedisError when Redis is unreachable (the caller decides what that means)."""
        keys = [config_key(name, scope)]
        if scope != GLOBAL:
            keys.append(config_key(name, GLOBAL))
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        levels = [_parse_stored(key, fields) for key, fields in zip(keys, pipe.execute())]
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
        return _stored_view(key, fields)

    def save(self, name: str, scope: Scope, refill_rate: float | None, capacity: int | None) -> dict[str, float | int]:
        """Store the given fields (either or both) and return the stored override."""
        key = config_key(name, scope)
        mapping: dict[str, str] = {}
        if refill_rate is not None:
            mapping["refill_rate"] = repr(float(refill_rate))
        if capacity is not None:
            mapping["capacity"] = str(int(capacity))
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(key, mapping=mapping)
            pipe.hgetall(key)
            _, fields = pipe.execute()
        except redis.RedisError as exc:
            raise _unavailable(exc) from None
        return _stored_view(key, fields)

    def delete(self, key: str) -> bool:
        """Delete one config hash; True when it existed."""
        try:
            return bool(self._client.delete(key))
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
                    yield key, _stored_view(key, fields)
                    seen += 1
                    if seen >= limit:
                        return
        except redis.RedisError as exc:
            raise _unavailable(exc) from None


def _stored_view(key: str, fields: dict[str, str]) -> dict[str, float | int]:
    rate, capacity = _parse_stored(key, fields)
    view: dict[str, float | int] = {}
    if rate is not None:
        view["refill_rate"] = rate
    if capacity is not None:
        view["capacity"] = capacity
    return view


def split_config_key(key: str) -> tuple[str, str] | None:
    """(name, scope) of a `limiter_config:<name>:<scope>` key, or None for anything else."""
    if not key.startswith(CONFIG_KEY_PREFIX):
        return None
    name, sep, scope = key[len(CONFIG_KEY_PREFIX):].partition(":")
    return (name, scope) if sep and name and scope else None


def escape_glob(text: str) -> str:
    """Escape Redis glob metacharacters so user-supplied filters match literally in SCAN."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
