"""Rate limiting: the token bucket in Redis, scoped limiters, the route table and its middleware.

- `redis_bucket.RedisTokenBucket`: one Lua script in Redis, shared by every Lambda instance.
- `manager.LimiterManager`: named, scoped buckets with cached config and a fail-open/closed policy.
- `config`: scopes, defaults and bounds; `config_store`: the `limiter_config:*` hashes in Redis.
- `routes.LIMITED_ROUTES`: which routes are limited, by which limiter, in which scope.
- `middleware.register_rate_limiting`: applies that table to HTTP requests.
- `metrics`: its series, recorded through `chalicelib.metrics`.

Names are imported on first use (PEP 562), so `app.py` registering the middleware does not load the
Redis client library into functions that never limit anything.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Decision": "chalicelib.ratelimit.decision",
    "LimiterConfig": "chalicelib.ratelimit.config",
    "LimiterManager": "chalicelib.ratelimit.manager",
    "RedisTokenBucket": "chalicelib.ratelimit.redis_bucket",
    "Scope": "chalicelib.ratelimit.config",
    "get_limiter_manager": "chalicelib.ratelimit.manager",
    "register_rate_limiting": "chalicelib.ratelimit.middleware",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
