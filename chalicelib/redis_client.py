"""The shared Redis client, created lazily once per warm container."""
from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from chalicelib.settings import get_settings
from chalicelib.warm import PerContainer


def get_redis() -> redis.Redis:
    """The container's shared client."""
    return _client.get()


def _new_client() -> redis.Redis:
    """A connection-pooled client with short timeouts: Redis backs fast paths, never slow ones.

    One quick retry (a dropped pooled connection is replaced) instead of redis-py's default ten with
    backoff to 1 s, which would turn a Redis outage into seconds of latency on every call.
    """
    return redis.Redis.from_url(
        get_settings().redis_url,
        socket_connect_timeout=1,
        socket_timeout=1,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        decode_responses=True,
    )


_client: PerContainer[redis.Redis] = PerContainer(_new_client)
