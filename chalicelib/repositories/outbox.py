"""The transactional outbox in MySQL: events written with the state change they announce, read back
in id order by the relay (`chalicelib.outbox`), stamped once the broker has them."""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from chalicelib import db
from chalicelib.repositories.base import unit_of_work, utc_text

__all__ = ["RELAY_LOCK", "OutboxRepository", "unit_of_work"]

RELAY_LOCK = "clustergenie_outbox_relay"


def _insert_rows(cur: Any, rows: list[tuple[Any, ...]]) -> None:
    cur.execute("INSERT INTO outbox (event_id, topic, partition_key, event_type, job_id, body) VALUES "
                + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows)), [value for row in rows for value in row])


class OutboxRepository:
    def add(self, *, event_id: str, topic: str, partition_key: str | None, event: dict[str, Any]) -> None:
        """Store one event to publish (inside the caller's unit of work, if any). The row is written when the
        unit of work commits, with every other event of it in one multi-row INSERT (`db.defer`, issue 16):
        the rows get their ids, and so their publishing order, in the order they were added."""
        with db.transaction():
            db.defer("outbox", _insert_rows, (event_id, topic, partition_key, event.get("type", ""),
                                              event.get("job_id"), json.dumps(event, separators=(",", ":"), default=str)))

    def unsent(self, limit: int) -> list[dict[str, Any]]:
        """The oldest unsent events, in the order they were written (id order)."""
        with db.transaction() as cur:
            cur.execute("SELECT id, event_id, topic, partition_key, body, attempts FROM outbox "
                        "WHERE sent_at IS NULL ORDER BY id LIMIT %s", (limit,))
            return list(cur.fetchall())

    def mark_sent(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        marks = ", ".join(["%s"] * len(ids))
        with db.transaction() as cur:
            cur.execute(f"UPDATE outbox SET sent_at = UTC_TIMESTAMP(6), attempts = attempts + 1 WHERE id IN ({marks})",
                        tuple(ids))

    def record_failure(self, row_id: int, error: str) -> None:
        with db.transaction() as cur:
            cur.execute("UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE id = %s",
                        (error[:512], row_id))

    def backlog(self) -> tuple[int, float]:
        """(unsent rows, age in seconds of the oldest unsent row; 0 when none)."""
        with db.transaction() as cur:
            cur.execute("SELECT COUNT(*) AS n, TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(6)) AS age "
                        "FROM outbox WHERE sent_at IS NULL")
            row = cur.fetchone()
        return int(row["n"]), max(0.0, float(row["age"] or 0) / 1e6)

    def events_of_job(self, job_id: str) -> list[dict[str, Any]]:
        """A job's events in the order they were written (tests, diagnosis)."""
        with db.transaction() as cur:
            cur.execute(f"SELECT id, event_id, event_type, body, {utc_text('sent_at')} FROM outbox "
                        "WHERE job_id = %s ORDER BY id", (job_id,))
            return list(cur.fetchall())

    def purge_sent(self, older_than_seconds: int, limit: int = 5000) -> int:
        """Delete sent rows older than `older_than_seconds`; how many went."""
        with db.transaction() as cur:
            cur.execute("DELETE FROM outbox WHERE sent_at IS NOT NULL "
                        "AND sent_at < UTC_TIMESTAMP(6) - INTERVAL %s SECOND ORDER BY id LIMIT %s",
                        (older_than_seconds, limit))
            return cur.rowcount

    @contextlib.contextmanager
    def relay_lock(self) -> Iterator[bool]:
        """Yields True while this connection holds the one relay lock (False: another relay is publishing,
        so this one must not: two relays would interleave a key's events)."""
        row = db.query_one("SELECT GET_LOCK(%s, 0) AS got", (RELAY_LOCK,))
        held = bool(row and row["got"] == 1)
        try:
            yield held
        finally:
            if held:
                with contextlib.suppress(Exception):
                    db.query_one("SELECT RELEASE_LOCK(%s) AS released", (RELAY_LOCK,))
