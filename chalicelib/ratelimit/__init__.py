"""Rate limiting: token buckets in memory and in Redis, scoped limiters, the route table and its middleware.

- `bucket.TokenBucket`: in memory, one process.
- `redis_bucket.RedisTokenBucket`: one Lua script in Redis, shared by every Lambda instance.
- `manager.LimiterManager`: named, scoped buckets with cached config and a fail-open/closed policy.
- `config`: scopes, defaults and the `limiter_config:*` hashes.
- `routes.LIMITED_ROUTES`: which routes are limited, by which limiter, in which scope.
- `middleware.register_rate_limiting`: applies that table to HTTP requests.
- `metrics`: the Prometheus series.
"""
from chalicelib.ratelimit.bucket import TokenBucket
from chalicelib.ratelimit.config import LimiterConfig, Scope
from chalicelib.ratelimit.decision import Decision
from chalicelib.ratelimit.manager import LimiterManager, get_limiter_manager
from chalicelib.ratelimit.middleware import register_rate_limiting
from chalicelib.ratelimit.redis_bucket import RedisTokenBucket

__all__ = [
    "Decision",
    "LimiterConfig",
    "LimiterManager",
    "RedisTokenBucket",
    "Scope",
    "TokenBucket",
    "get_limiter_manager",
    "register_rate_limiting",
]
