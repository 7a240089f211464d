"""Proving that a refused request wrote nothing: row counts and checksums of tables, before and after."""
from __future__ import annotations

from typing import Any

from chalicelib import db

CORE_TABLES = ("outbox", "metrics", "jobs", "droplets", "clusters")  # children first (outbox: no keys)


def table_snapshot(tables: tuple[str, ...] = CORE_TABLES) -> dict[str, tuple[int, Any]]:
    """Row count and content checksum of each table (to prove a refused request wrote nothing)."""
    snapshot = {}
    with db.transaction() as cur:
        for table in tables:
            cur.execute(f"SELECT COUNT(*) AS n FROM {table}")
            count = cur.fetchone()["n"]
            cur.execute(f"CHECKSUM TABLE {table}")
            snapshot[table] = (count, cur.fetchone()["Checksum"])
    return snapshot
