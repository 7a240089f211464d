"""Totals of paged listings, read from the counters of migration 0019 (`row_counts`), kept by triggers in
the same transaction as every insert and delete of a counted row.

A COUNT(*) over a tenant's jobs or metrics reads every one of them; a total here is SUM(n) over at most
(metric types x 8 slots) rows of one primary-key prefix, whatever the number of rows counted (issue 16).
Read inside the listing's transaction, the total belongs to the same snapshot as its page.
"""
from __future__ import annotations

from typing import Any

from chalicelib.repositories.base import tenant_filter


def _sum(cur: Any, kind: str, conditions: list[str], args: list[Any]) -> int:
    where = "".join(f" AND {c}" for c in conditions)
    cur.execute(f"SELECT COALESCE(SUM(n), 0) AS n FROM row_counts WHERE kind = %s{where}", (kind, *args))
    return int(cur.fetchone()["n"])


def tenant_total(cur: Any, kind: str) -> int:
    """How many `kind` rows ('clusters', 'jobs') the current tenant has; every tenant's outside a request."""
    cond, args = tenant_filter(column="subject", joiner="")
    return _sum(cur, kind, [cond] if cond else [], list(args))


def metrics_total(cur: Any, *, cluster_id: str | None, metric_type: str | None) -> int:
    """How many metric samples match a listing's filters: of the current tenant's clusters, or of `cluster_id`
    (which the caller has found in the current tenant)."""
    conditions: list[str] = []
    args: list[Any] = []
    if cluster_id is not None:  # the caller has checked that the cluster is the tenant's
        kind = "metrics_cluster"
        conditions.append("subject = %s")
        args.append(cluster_id)
    else:
        kind = "metrics_tenant"
        cond, tenant_args = tenant_filter(column="subject", joiner="")
        if cond:
            conditions.append(cond)
            args.extend(tenant_args)
    if metric_type is not None:
        conditions.append("part = %s")
        args.append(metric_type)
    return _sum(cur, kind, conditions, args)
