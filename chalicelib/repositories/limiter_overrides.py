"""Rate-limit overrides in MySQL: the durable copy of the `limiter_config:*` hashes (Redis caches them)."""
from __future__ import annotations

from typing import Any

from chalicelib import db


class LimiterOverrideRepository:
    def save(self, config_key: str, refill_rate: float | None, capacity: int | None) -> None:
        """Set the given fields (either or both) of the override, creating it if needed."""
        with db.transaction() as cur:
            cur.execute(
                "INSERT INTO limiter_overrides (config_key, refill_rate, capacity) VALUES (%s, %s, %s) "
                "ON DUPLICATE KEY UPDATE refill_rate = COALESCE(VALUES(refill_rate), refill_rate), "
                "capacity = COALESCE(VALUES(capacity), capacity)",
                (config_key, refill_rate, capacity),
            )

    def delete(self, config_key: str) -> bool:
        with db.transaction() as cur:
            cur.execute("DELETE FROM limiter_overrides WHERE config_key = %s", (config_key,))
            return cur.rowcount > 0

    def all(self) -> list[dict[str, Any]]:
        """Every override (config_key, refill_rate, capacity)."""
        return db.query("SELECT config_key, refill_rate, capacity FROM limiter_overrides ORDER BY config_key")
