"""The one MySQL access helper.

A single pymysql connection per warm container, created lazily and reused across invocations.
Before each unit of work it is pinged (with reconnect), so a connection dropped by the server
(wait_timeout, failover, a restarted MariaDB) is replaced instead of failing the request.
"""
from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pymysql
import pymysql.cursors

from chalicelib.settings import Settings, get_settings

_lock = threading.RLock()
_connection: pymysql.connections.Connection | None = None


def _resolve_password(settings: Settings) -> str:
    if settings.db_password is not None:
        return settings.db_password
    if settings.db_secret_id:
        from chalicelib.aws import client

        secret = client("secretsmanager").get_secret_value(SecretId=settings.db_secret_id)
        return json.loads(secret["SecretString"])["password"]
    return ""


def connect(settings: Settings | None = None) -> pymysql.connections.Connection:
    """Open a new connection with the project's session settings (UTC, strict mode, autocommit off)."""
    settings = settings or get_settings()
    return pymysql.connect(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_user,
        password=_resolve_password(settings),
        database=settings.db_name,
        charset="utf8mb4",
        cursorclass=pymysql.cursors.DictCursor,
        autocommit=False,
        connect_timeout=5,
        read_timeout=30,
        write_timeout=30,
        init_command="SET time_zone = '+00:00', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE'",
    )


def get_connection() -> pymysql.connections.Connection:
    """The warm container's connection, (re)connected when needed."""
    global _connection
    with _lock:
        if _connection is None or not _connection.open:
            _connection = connect()
        else:
            try:
                _connection.ping(reconnect=True)
            except pymysql.err.Error:
                _connection = connect()
        return _connection


def reset_connection() -> None:
    """Drop the cached connection (tests use it to simulate a dropped link)."""
    global _connection
    with _lock:
        if _connection is not None:
            with contextlib.suppress(Exception):
                _connection.close()
        _connection = None


@contextlib.contextmanager
def transaction() -> Iterator[pymysql.cursors.DictCursor]:
    """A cursor inside one transaction: committed on success, rolled back on any error."""
    with _lock:
        conn = get_connection()
        cursor = conn.cursor()
        try:
            yield cursor
            conn.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise
        finally:
            cursor.close()


def query(sql: str, args: Any = None) -> list[dict[str, Any]]:
    """Run one read-only statement and return its rows."""
    with transaction() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def query_one(sql: str, args: Any = None) -> dict[str, Any] | None:
    rows = query(sql, args)
    return rows[0] if rows else None
