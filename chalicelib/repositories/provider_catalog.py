"""The scheduling catalogue of providers in MySQL (name, regions, capacity, used, classes, price).

Not to be confused with `chalicelib.providers`, the droplet providers that run machines: this table
only describes where clusters may be placed and what a droplet-hour costs there.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib import db
from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.repositories.base import domain_errors

_COLUMNS = "name, regions, capacity, used, classes, price_per_hour"


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    # JSON columns arrive as text; price_per_hour arrives as a Decimal (DECIMAL column, never a float).
    return {**row, "regions": json.loads(row["regions"]), "classes": json.loads(row["classes"])}


class ProviderCatalogRepository:
    def list(self) -> list[dict[str, Any]]:
        """Every catalogue entry, by name."""
        return [_decode(r) for r in db.query(f"SELECT {_COLUMNS} FROM providers ORDER BY name")]

    def get(self, name: str) -> dict[str, Any]:
        """The entry; NotFoundError when missing."""
        row = db.query_one(f"SELECT {_COLUMNS} FROM providers WHERE name = %s", (name,))
        if row is None:
            raise NotFoundError(f"Provider {name} not found")
        return _decode(row)

    def prices(self) -> dict[str, Any]:
        """{name: price_per_hour (Decimal)} for billing."""
        return {r["name"]: r["price_per_hour"] for r in db.query("SELECT name, price_per_hour FROM providers")}

    def delete(self, name: str) -> None:
        """Remove the entry: NotFoundError when missing, ConflictError while droplets not deleted run on it."""
        with db.transaction() as cur:
            cur.execute("SELECT name FROM providers WHERE name = %s FOR UPDATE", (name,))
            if cur.fetchone() is None:
                raise NotFoundError(f"Provider {name} not found")
            cur.execute("SELECT COUNT(*) AS n FROM droplets WHERE provider = %s AND status <> 'deleted'", (name,))
            if cur.fetchone()["n"]:
                raise ConflictError(f"provider {name} still has droplets; migrate or delete them first")
            cur.execute("DELETE FROM providers WHERE name = %s", (name,))

    def upsert(self, *, name: str, regions: list[str], capacity: int, used: int, classes: list[str],
               price_per_hour: Any) -> dict[str, Any]:
        """Create the entry, or replace every field of the existing one; return it as stored."""
        with db.transaction() as cur, domain_errors():
            cur.execute(
                "INSERT INTO providers (name, regions, capacity, used, classes, price_per_hour) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE regions = VALUES(regions), "
                "capacity = VALUES(capacity), used = VALUES(used), classes = VALUES(classes), "
                "price_per_hour = VALUES(price_per_hour)",
                (name, json.dumps(regions), capacity, used, json.dumps(classes), price_per_hour),
            )
            cur.execute(f"SELECT {_COLUMNS} FROM providers WHERE name = %s", (name,))
            return _decode(cur.fetchone())
