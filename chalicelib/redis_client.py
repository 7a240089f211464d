"""The shared Redis client, created lazily once per warm container."""
from __future__ import annotations

import json

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from chalicelib.settings import Settings, get_settings
from chalicelib.warm import PerContainer


def get_redis() -> redis.Redis:
    """The container's shared client."""
    return _client.get()


def redis_password(settings: Settings) -> str | None:
    """The password Redis requires (issue 18): from the settings (local runs, tests) or from the Secrets
    Manager secret (deployed; read when a container builds its client); None when neither is set."""
    if settings.redis_password is not None:
        return settings.redis_password
    if settings.redis_secret_id:
        from chalicelib.aws import client

        secret = client("secretsmanager").get_secret_value(SecretId=settings.redis_secret_id)
        return json.loads(secret["SecretString"])["password"]
    return None


def _new_client() -> redis.Redis:
    """A connection-pooled client with short timeouts: Redis backs fast paths, never slow ones.

    One quick retry (a dropped pooled connection is replaced) instead of redis-py's default ten with
    backoff to 1 s, which would turn a Redis outage into seconds of latency on every call.
    """
    settings = get_settings()
    return redis.Redis.from_url(
        settings.redis_url,
        password=redis_password(settings),
        socket_connect_timeout=1,
        socket_timeout=1,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        decode_responses=True,
    )


_client: PerContainer[redis.Redis] = PerContainer(_new_client)
