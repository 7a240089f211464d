"""The audit log in MySQL: appended to and read, never updated or deleted by the app."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib import db
from chalicelib.repositories.base import utc_text

_COLUMNS = ", ".join(["id", utc_text("occurred_at"), "tenant_id", "principal", "role", "action", "resource_id",
                      "outcome", "request_id"])


class AuditLogRepository:
    def append(self, *, tenant_id: str, principal: str, role: str, action: str, resource_id: str | None,
               outcome: int, request_id: str) -> None:
        with db.transaction() as cur:
            cur.execute(
                "INSERT INTO audit_log (tenant_id, principal, role, action, resource_id, outcome, request_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (tenant_id, principal[:128], role, action[:128], resource_id[:128] if resource_id else None,
                 outcome, request_id[:128]))

    def page(self, *, tenant_id: str | None, principal: str | None, resource_id: str | None,
             since: datetime | None, until: datetime | None, before_id: int | None, limit: int) -> list[dict[str, Any]]:
        """Newest first; `before_id` is the cursor (the last id of the previous page)."""
        conds: list[str] = []
        args: list[Any] = []
        for cond, value in (("tenant_id = %s", tenant_id), ("principal = %s", principal),
                            ("resource_id = %s", resource_id), ("audit_log.occurred_at >= %s", since),
                            ("audit_log.occurred_at < %s", until), ("id < %s", before_id)):
            if value is not None:
                conds.append(cond)
                args.append(value)
        where = ("WHERE " + " AND ".join(conds)) if conds else ""
        with db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM audit_log {where} ORDER BY id DESC LIMIT %s", (*args, limit))
            return list(cur.fetchall())
