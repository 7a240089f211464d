"""API keys in MySQL: only the SHA-256 of each secret is stored, found by its public prefix."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import pymysql

from chalicelib import db
from chalicelib.errors import NotFoundError, ServiceUnavailableError
from chalicelib.observability import logger
from chalicelib.repositories.base import domain_errors, new_id, utc_text

# The hash never leaves this module except to the verifier (`lookup`); listings do not select it.
_PUBLIC = ", ".join(["id", "prefix", "name", "tenant_id", "role", "created_by", utc_text("expires_at"),
                     utc_text("last_used_at"), utc_text("revoked_at"), utc_text("created_at")])


class ApiKeyRepository:
    def create(self, prefix: str, secret_hash: bytes, name: str, tenant_id: str, role: str,
               created_by: str | None, expires_at: datetime | None) -> dict[str, Any]:
        key_id = new_id("key")
        with db.transaction() as cur, domain_errors():
            cur.execute(
                "INSERT INTO api_keys (id, prefix, secret_hash, name, tenant_id, role, created_by, expires_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (key_id, prefix, secret_hash, name, tenant_id, role, created_by, expires_at))
            cur.execute(f"SELECT {_PUBLIC} FROM api_keys WHERE id = %s", (key_id,))
            return cur.fetchone()

    def lookup(self, prefix: str) -> dict[str, Any] | None:
        """The usable key with this prefix (not revoked, not expired), hash included; None otherwise.
        Marks it used (last_used_at) in the same round of work. ServiceUnavailableError when MariaDB cannot be
        asked: a credential that cannot be checked is never taken as valid."""
        try:
            with db.transaction() as cur:
                cur.execute(
                    "SELECT id, secret_hash, name, tenant_id, role FROM api_keys WHERE prefix = %s "
                    "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > UTC_TIMESTAMP(6))", (prefix,))
                row = cur.fetchone()
                if row is not None:
                    cur.execute("UPDATE api_keys SET last_used_at = UTC_TIMESTAMP(6) WHERE id = %s", (row["id"],))
                return row
        except pymysql.err.Error:
            logger.warning("cannot verify an API key: the database is unavailable")
            raise ServiceUnavailableError("authentication is unavailable; retry") from None

    def list(self, tenant_id: str | None) -> list[dict[str, Any]]:
        """Keys of one tenant (None: every tenant), newest first."""
        where, args = ("WHERE tenant_id = %s", (tenant_id,)) if tenant_id is not None else ("", ())
        with db.transaction() as cur:
            cur.execute(f"SELECT {_PUBLIC} FROM api_keys {where} ORDER BY api_keys.created_at DESC, api_keys.id", args)
            return list(cur.fetchall())

    def revoke(self, key_id: str, tenant_id: str | None) -> dict[str, Any]:
        """Revoke the key (idempotent); NotFoundError when it is not in `tenant_id` (None: any tenant)."""
        tenant_cond, args = ("AND tenant_id = %s", (tenant_id,)) if tenant_id is not None else ("", ())
        with db.transaction() as cur:
            cur.execute(f"UPDATE api_keys SET revoked_at = COALESCE(revoked_at, UTC_TIMESTAMP(6)) "
                        f"WHERE id = %s {tenant_cond}", (key_id, *args))
            cur.execute(f"SELECT {_PUBLIC} FROM api_keys WHERE id = %s {tenant_cond}", (key_id, *args))
            row = cur.fetchone()
            if row is None:
                raise NotFoundError("API key not found")
            return row
