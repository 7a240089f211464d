"""log_retention: the scheduled function that keeps the log store (`log_lines`) to its retention period.

Lines whose own timestamp is older than `CG_LOG_RETENTION_DAYS` (default 7) are deleted, oldest first,
in short batches (`LogStore.prune`); a backlog larger than one run's share is worked off by the next
runs. Without it the table grows with every line every function ever logged.

The same hourly run forgets Idempotency-Keys past their 24 hours (issue 18; a claim also forgets an expired
key of its own, so this only keeps the table small).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from chalicelib.observability import logger
from chalicelib.repositories.log_lines import LogStore
from chalicelib.settings import get_settings


def run(now: dt.datetime | None = None, store: LogStore | None = None) -> dict[str, Any]:
    days = get_settings().log_retention_days  # at least 1: the settings refuse less
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(tzinfo=None)
    cutoff = now - dt.timedelta(days=days)
    deleted = (store or LogStore()).prune(cutoff)
    logger.info("log lines pruned", extra={"deleted": deleted, "cutoff": cutoff.isoformat() + "Z"})
    from chalicelib.idempotency import TTL_SECONDS
    from chalicelib.repositories.idempotency import IdempotencyRepository

    logger.info("idempotency keys expired", extra={"deleted": IdempotencyRepository().purge_expired(TTL_SECONDS)})
    return {"deleted": deleted, "cutoff": cutoff.isoformat() + "Z"}
