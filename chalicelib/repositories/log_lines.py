"""The queryable log store: MySQL table `log_lines` (migration 0002), written by the log consumer."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from chalicelib import db
from chalicelib.repositories.base import tenant_filter, utc_text

KEYS = ("service", "environment", "function", "request_id", "job_id", "trace_id", "cluster_id")
MAX_LINES = 1000
_COLUMNS = ", ".join([utc_text("ts"), "level", "function", "request_id", "job_id", "trace_id", "cluster_id",
                      "message", "line"])


def parse_timestamp(value: Any) -> dt.datetime:
    """Powertools' `2026-11-27 21:15:38,431+0000` (or ISO 8601) as naive UTC; now when unreadable."""
    if isinstance(value, str):
        for fmt in ("%Y-%m-%d %H:%M:%S,%f%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
            try:
                return dt.datetime.strptime(value, fmt).astimezone(dt.timezone.utc).replace(tzinfo=None)
            except ValueError:
                continue
        try:
            parsed = dt.datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
            return parsed
        except ValueError:
            pass
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _text(value: Any, limit: int) -> str | None:
    return None if value is None or value == "" else str(value)[:limit]


def row_of(source: str, raw: str) -> tuple[Any, ...]:
    """A `log_lines` row from one shipped line (a line that is not a JSON object is kept as its text)."""
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        record = {"message": raw}
    return (source, parse_timestamp(record.get("timestamp")), str(record.get("level", "UNKNOWN"))[:16],
            *(_text(record.get(k), 64) for k in KEYS), str(record.get("message", ""))[:65535], raw)


class LogStore:
    def insert(self, rows: list[tuple[Any, ...]]) -> int:
        """Store rows from `row_of`; a line already stored (same source) is skipped. Returns rows added."""
        if not rows:
            return 0
        placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
        with db.transaction() as cur:
            cur.execute(
                "INSERT IGNORE INTO log_lines (source, ts, level, service, environment, function, request_id, "
                f"job_id, trace_id, cluster_id, message, line) VALUES {placeholders}",
                [value for row in rows for value in row],
            )
            return cur.rowcount

    def prune(self, before: dt.datetime, batch: int = 5000, max_batches: int = 20) -> int:
        """Delete lines timestamped before `before` (naive UTC), oldest first, `batch` rows per transaction
        (a range on idx_log_lines_ts, so locks stay short and the consumer's inserts are not held up).
        Stops after `max_batches`: a backlog is worked off over several runs. Returns rows deleted."""
        deleted = 0
        for _ in range(max_batches):
            with db.transaction() as cur:
                cur.execute("DELETE FROM log_lines WHERE ts < %s ORDER BY ts LIMIT %s", (before, batch))
                n = cur.rowcount
            deleted += n
            if n < batch:
                break
        return deleted

    def for_job(self, job_id: str, limit: int = MAX_LINES) -> list[dict[str, Any]]:
        """One job's lines from every function, oldest first (a range scan on idx_log_lines_job_ts)."""
        # Within a request, only a job of the caller's tenant (issue 13).
        cond, args = tenant_filter()
        tenant = f" AND job_id IN (SELECT id FROM jobs WHERE id = %s{cond})" if cond else ""
        with db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM log_lines FORCE INDEX (idx_log_lines_job_ts) "
                        f"WHERE job_id = %s{tenant} ORDER BY log_lines.ts, log_lines.id LIMIT %s",
                        (job_id, *((job_id, *args) if cond else ()), limit))
            return list(cur.fetchall())
