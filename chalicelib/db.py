"""The one MySQL access helper.

A single pymysql connection per warm container, created lazily and reused across invocations.
Before each unit of work it is checked, so a connection dropped by the server (wait_timeout, KILL,
failover, a restarted MariaDB) is replaced instead of failing the request: a local poll of the socket
every time (free), and a real ping (one round trip) when the connection has been idle for a while.
"""
from __future__ import annotations

import contextlib
import json
import select
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pymysql.cursors

from chalicelib.errors import DependencyUnavailableError
from chalicelib.settings import Settings, get_settings

_lock = threading.RLock()
_connection: pymysql.connections.Connection | None = None


# A row lock held elsewhere fails the statement after this long (InnoDB's default is 50 s). Even after a
# job transition's 3 attempts (15 s) it is shorter than the job worker's 25 s timeout, so the worker fails
# that one record (retried by SQS) instead of timing out the whole batch.
LOCK_WAIT_SECONDS = 5


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
        init_command="SET time_zone = '+00:00', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE', "
                     f"SESSION innodb_lock_wait_timeout = {LOCK_WAIT_SECONDS}",
    )


# A connection idle longer than this is pinged before use (a frozen Lambda container may come back to
# a connection the network silently dropped). A busy connection is only checked locally (below).
IDLE_PING_SECONDS = 10.0
_last_used = 0.0


def _closed_by_server(conn: pymysql.connections.Connection) -> bool:
    """True when the server has spoken unasked, i.e. closed the link (KILL, wait_timeout, restart).

    Between commands a healthy connection has nothing to read, so a zero-timeout poll of the socket
    detects a server-side close without the round trip of a ping.
    """
    sock = getattr(conn, "_sock", None)
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


# Client and server codes that say the server cannot be reached or went away (not that the statement is
# wrong): can't connect, gone away, lost connection, server shutting down, connection killed, too many.
UNREACHABLE_CODES = frozenset({2002, 2003, 2005, 2006, 2013, 2055, 1053, 1927, 1040, 1152, 1158, 1159, 1160, 1161})


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, pymysql.err.InterfaceError):  # a closed connection used again
        return True
    return isinstance(exc, pymysql.err.OperationalError) and bool(exc.args) and exc.args[0] in UNREACHABLE_CODES


def get_connection() -> pymysql.connections.Connection:
    """The warm container's connection, (re)connected when needed; DependencyUnavailableError("mariadb")
    when the server cannot be reached."""
    try:
        return _get_connection()
    except pymysql.err.Error as exc:
        if _unreachable(exc):
            raise DependencyUnavailableError("mariadb", repr(exc)) from exc
        raise


def _get_connection() -> pymysql.connections.Connection:
    global _connection, _last_used
    with _lock:
        now = time.monotonic()
        if _connection is None or not _connection.open:
            _connection = connect()
        elif now - _last_used > IDLE_PING_SECONDS or _closed_by_server(_connection):
            try:
                _connection.ping(reconnect=True)
            except pymysql.err.Error:
                _connection = connect()
        _last_used = now
        return _connection


def reset_connection() -> None:
    """Drop the cached connection (tests use it to simulate a dropped link)."""
    global _connection
    with _lock:
        if _connection is not None:
            with contextlib.suppress(Exception):
                _connection.close()
        _connection = None


# How deep the lock holder is in nested `transaction()`s: an inner one joins the outer transaction, so a
# state change and the outbox row announcing it commit together (chalicelib/repositories/outbox.py).
_depth = 0
# Rows held back until the outermost transaction commits (`defer`): per kind, the function that writes them
# and the rows, in the order they were deferred. Kinds are written in the order they were first deferred.
_deferred: dict[str, tuple[Callable[[pymysql.cursors.DictCursor, list[Any]], None], list[Any]]] = {}


def defer(kind: str, write: Callable[[pymysql.cursors.DictCursor, list[Any]], None], row: Any) -> None:
    """Hold `row` back until the current transaction is about to commit, then write all of its kind with one
    call of `write(cursor, rows)` (one multi-row statement instead of one per row; issue 16).

    Inside the transaction, so the rows commit with everything else in it or not at all; a rollback drops
    them. Only for rows nothing reads back before the commit (the outbox: the relay reads after it)."""
    with _lock:  # the transaction's owner holds it: another thread waits here, then finds no transaction of its own
        if not _depth:
            raise RuntimeError("db.defer outside a transaction")
        _deferred.setdefault(kind, (write, []))[1].append(row)


def _write_deferred(cursor: pymysql.cursors.DictCursor) -> None:
    while _deferred:
        kind = next(iter(_deferred))
        write, rows = _deferred.pop(kind)
        write(cursor, rows)


@contextlib.contextmanager
def transaction() -> Iterator[pymysql.cursors.DictCursor]:
    """A cursor inside one transaction: committed on success, rolled back on any error; nested inside
    another `transaction()` it is part of that one (committed with it). The server
    going away meanwhile is DependencyUnavailableError("mariadb") (the connection is dropped, the next
    unit of work reconnects)."""
    global _depth
    with _lock:
        if _depth:  # inside another unit of work: join it; the outermost one commits or rolls back
            cursor = _connection.cursor()
            _depth += 1
            try:
                yield cursor
            finally:
                _depth -= 1
                with contextlib.suppress(Exception):
                    cursor.close()
            return
        conn = get_connection()
        cursor = conn.cursor()
        _depth = 1
        _deferred.clear()
        try:
            yield cursor
            _write_deferred(cursor)
            conn.commit()
        except BaseException as exc:
            _deferred.clear()
            with contextlib.suppress(Exception):
                conn.rollback()
            if isinstance(exc, pymysql.err.Error) and _unreachable(exc):
                reset_connection()
                raise DependencyUnavailableError("mariadb", repr(exc)) from exc
            raise
        finally:
            _depth = 0
            with contextlib.suppress(Exception):
                cursor.close()


def query(sql: str, args: Any = None) -> list[dict[str, Any]]:
    """Run one read-only statement and return its rows."""
    with transaction() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def query_one(sql: str, args: Any = None) -> dict[str, Any] | None:
    rows = query(sql, args)
    return rows[0] if rows else None
