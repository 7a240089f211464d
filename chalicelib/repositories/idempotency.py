"""Idempotency keys in MySQL: claiming a key for a request, recording its response, replaying it."""
from __future__ import annotations

from typing import Any

import pymysql

from chalicelib import db
from chalicelib.repositories.base import ER_DUP_ENTRY


class IdempotencyRepository:
    def claim(self, caller: str, key: str, fingerprint: bytes, ttl_seconds: int) -> dict[str, Any] | None:
        """Claim `key` for this request: None when this call claimed it (serve the request), else the stored
        row (fingerprint, status_code, response; status_code None while the first request is in flight).
        A stored key older than `ttl_seconds` is forgotten and claimed afresh."""
        with db.transaction() as cur:
            cur.execute("DELETE FROM idempotency_keys WHERE caller = %s AND idem_key = %s "
                        "AND created_at < UTC_TIMESTAMP(6) - INTERVAL %s SECOND", (caller, key, ttl_seconds))
            try:
                cur.execute("INSERT INTO idempotency_keys (caller, idem_key, fingerprint, created_at) "
                            "VALUES (%s, %s, %s, UTC_TIMESTAMP(6))", (caller, key, fingerprint))
                return None
            except pymysql.err.IntegrityError as exc:
                if not exc.args or exc.args[0] != ER_DUP_ENTRY:
                    raise
            cur.execute("SELECT fingerprint, status_code, response FROM idempotency_keys "
                        "WHERE caller = %s AND idem_key = %s", (caller, key))
            return cur.fetchone()

    def record(self, caller: str, key: str, status_code: int, response: str) -> None:
        with db.transaction() as cur:
            cur.execute("UPDATE idempotency_keys SET status_code = %s, response = %s WHERE caller = %s AND idem_key = %s",
                        (status_code, response, caller, key))

    def release(self, caller: str, key: str) -> None:
        """Forget a claim whose request failed on our side (a 5xx), so that a retry is served afresh."""
        with db.transaction() as cur:
            cur.execute("DELETE FROM idempotency_keys WHERE caller = %s AND idem_key = %s", (caller, key))

    def purge_expired(self, ttl_seconds: int) -> int:
        with db.transaction() as cur:
            cur.execute("DELETE FROM idempotency_keys WHERE created_at < UTC_TIMESTAMP(6) - INTERVAL %s SECOND",
                        (ttl_seconds,))
            return cur.rowcount
