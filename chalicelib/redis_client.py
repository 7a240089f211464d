"""The shared Redis client, created lazily once per warm container; `PendingScript`, a script call whose answer is
read later."""
from __future__ import annotations

import json
from typing import Any

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


class PendingScript:
    """A script call sent now and answered later (`result`), so that its round trip overlaps other work (issue 16:
    the event handler's job read models are applied by Redis while MariaDB stores the batch's telemetry).

    The command goes out on a connection of the client's pool, held until `result` reads the answer. Should the
    send or the answer fail for the link's sake (a dropped pooled connection, a timeout), or Redis not know the
    script (NOSCRIPT), `result` runs the script again the ordinary way (registering it, with the client's retry):
    only for a script that may run twice with the same effect as once. An error of the script itself is raised."""

    def __init__(self, client: redis.Redis, script: Any, keys: list[Any], args: list[Any]) -> None:
        self._client, self._script, self._keys, self._args = client, script, keys, args
        self._conn: Any = None
        pool = client.connection_pool
        try:
            conn = pool.get_connection()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return  # `result` runs it the ordinary way (and raises if Redis stays unreachable)
        try:
            conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            conn.disconnect()
            pool.release(conn)
            return
        self._conn = conn

    def result(self) -> Any:
        """The script's answer (waiting for it); raises what the script raised."""
        conn, self._conn = self._conn, None
        if conn is not None:
            pool = self._client.connection_pool
            try:
                return conn.read_response()
            except redis.exceptions.NoScriptError:
                pass  # answered: the connection is in step; run it the ordinary way (loads it)
            except redis.ResponseError:
                raise  # the script's own error, answered: the connection is in step
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                conn.disconnect()  # whatever was left unread goes with it
            except BaseException:
                conn.disconnect()
                raise
            finally:
                pool.release(conn)
        return self._script(keys=self._keys, args=self._args)
