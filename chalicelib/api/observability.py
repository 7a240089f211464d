"""Observability routes: rate-limiter state, the persisted limiter config and the job queue (v1 contract)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic
from pydantic import ConfigDict, Field

from chalicelib.api.routing import current_request
from chalicelib.errors import NotFoundError, ValidationError
from chalicelib.http import parse_body, parse_query
from chalicelib.ratelimit.config import (
    CONFIG_KEY_PREFIX,
    MAX_CAPACITY,
    MAX_REFILL_RATE,
    Scope,
    config_key,
    escape_glob,
    split_config_key,
    validate_name,
)

if TYPE_CHECKING:
    from chalicelib.ratelimit.manager import LimiterManager


def get_limiter_manager() -> "LimiterManager":
    """This container's limiter manager, imported on first use so that importing app.py does not
    load the Redis client library into functions that serve no HTTP."""
    from chalicelib.ratelimit.manager import get_limiter_manager as container_manager

    return container_manager()

# A listing is for people and dashboards; past this many entries, filter by name or scope.
MAX_LISTED_CONFIGS = 1000


class LimiterRef(pydantic.BaseModel):
    """A limiter and scope, as named in query strings and bodies."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    scope_type: str | None = None
    scope_id: str | None = None

    def resolve(self) -> tuple[str, Scope]:
        return validate_name(self.name), Scope.of(self.scope_type, self.scope_id)


class LimiterConfigBody(LimiterRef):
    """POST body: the limiter, its scope, and at least one of refill_rate and capacity."""

    model_config = ConfigDict(extra="forbid")

    # Strict: JSON numbers only, so `true` or "5" is a 400 rather than a silently coerced limit.
    refill_rate: float | None = Field(default=None, gt=0, le=MAX_REFILL_RATE, allow_inf_nan=False, strict=True)
    capacity: float | None = Field(default=None, ge=1, le=MAX_CAPACITY, allow_inf_nan=False, strict=True)

    @pydantic.field_validator("capacity")
    @classmethod
    def _whole_capacity(cls, value: float | None) -> float | None:
        if value is not None and value != int(value):
            raise ValueError("must be a whole number")
        return value


class LimiterDeleteBody(LimiterRef):
    """DELETE body (or query): either the config `key` or the limiter's name and scope."""

    key: str | None = None


def ratelimit_status() -> dict[str, Any]:
    """A bucket's state now: `{name, scope, available, capacity, rate_per_sec}`; nothing is consumed."""
    name, scope = parse_query(current_request(), LimiterRef).resolve()
    available, config = get_limiter_manager().status(name, scope)
    return {
        "name": name,
        "scope": str(scope),
        "available": round(available, 3),
        "capacity": config.capacity,
        "rate_per_sec": config.refill_rate,
    }


def save_ratelimit_config() -> dict[str, Any]:
    """Store a limiter config override; every container sees it within the config cache TTL."""
    body = parse_body(current_request(), LimiterConfigBody)
    name, scope = body.resolve()
    if body.refill_rate is None and body.capacity is None:
        raise ValidationError("refill_rate or capacity required")
    manager = get_limiter_manager()
    capacity = None if body.capacity is None else int(body.capacity)
    stored = manager.store.save(name, scope, body.refill_rate, capacity)
    manager.forget(name)  # this container sees the change at once
    key = config_key(name, scope)
    return {"ok": True, "config_key": key, "key": key, "name": name, "scope": str(scope), "config": stored}


def get_ratelimit_config() -> dict[str, Any]:
    """The override stored for exactly this limiter and scope (404 when there is none)."""
    name, scope = parse_query(current_request(), LimiterRef).resolve()
    stored = get_limiter_manager().store.get(name, scope)
    if stored is None:
        raise NotFoundError("not found")
    return {"key": config_key(name, scope), "name": name, "scope": str(scope), "config": stored}


def delete_ratelimit_config() -> dict[str, Any]:
    """Delete one override, named by `key` or by name and scope, in the body or the query string."""
    request = current_request()
    if (request.raw_body or b"").strip():
        ref = parse_body(request, LimiterDeleteBody)
    else:
        ref = parse_query(request, LimiterDeleteBody)
    if ref.key:
        parts = split_config_key(ref.key)
        if parts is None:
            # Only config hashes may be deleted through this route, never an arbitrary Redis key.
            raise ValidationError(f"key: must start with {CONFIG_KEY_PREFIX}<name>:<scope>")
        name, scope = validate_name(parts[0]), Scope.parse(parts[1])
    else:
        name, scope = ref.resolve()
    key = config_key(name, scope)
    manager = get_limiter_manager()
    if not manager.store.delete(key):
        raise NotFoundError("not found")
    manager.forget(name)
    return {"ok": True, "deleted": key}


def list_ratelimit_configs() -> dict[str, Any]:
    """Stored overrides, optionally filtered by `name`, `scope_type` and `scope_id` (a scope type alone
    lists every user or every cluster): `{count, items: [{key, name, scope, config}]}`. Uses SCAN,
    never KEYS; at most MAX_LISTED_CONFIGS items."""
    ref = parse_query(current_request(), LimiterRef)
    name_part = validate_name(ref.name) if ref.name else "*"  # a valid name has no glob characters
    scope_part = "*"
    if ref.scope_type:
        if ref.scope_type in ("user", "cluster") and not ref.scope_id:
            scope_part = f"{ref.scope_type}:*"  # every override of that scope type
        else:
            scope_part = escape_glob(str(Scope.of(ref.scope_type, ref.scope_id)))
    pattern = f"{CONFIG_KEY_PREFIX}{name_part}:{scope_part}"
    items = []
    for key, stored in get_limiter_manager().store.scan(pattern, limit=MAX_LISTED_CONFIGS):
        parts = split_config_key(key)
        if parts is not None:
            items.append({"key": key, "name": parts[0], "scope": parts[1], "config": stored})
    items.sort(key=lambda item: item["key"])
    return {"count": len(items), "items": items}


def workerpool_status() -> dict[str, Any]:
    """The job queue (visible, in flight, dead-lettered) and jobs by status, in place of the worker pool."""
    from chalicelib.services.workerpool import workerpool_status as status

    return status()
