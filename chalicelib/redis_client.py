"""The shared Redis client, created lazily once per warm container."""
from __future__ import annotations

import functools

import redis

from chalicelib.settings import get_settings


@functools.lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    """A connection-pooled client with short timeouts: Redis backs fast paths, never slow ones."""
    return redis.Redis.from_url(
        get_settings().redis_url,
        socket_connect_timeout=1,
        socket_timeout=1,
        health_check_interval=30,
        decode_responses=True,
    )
