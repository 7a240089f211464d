"""Quotas in MySQL: the stored limits of a tenant or a cluster, and the usage they are compared with (read from
the `quota_usage` counters of migration 0021)."""
from __future__ import annotations

import json
from typing import Any

from chalicelib import db


def _usage_columns(scope: str, key: str, job_types: int, prefix: str = "") -> str:
    """A quota scope's usage as three columns, `{prefix}droplets`, `{prefix}concurrent_jobs` and
    `{prefix}deployments`, for `cluster_usage`, `tenant_usage` and `scopes`: each a SUM over the scope's slots of
    the `quota_usage` counters that migration 0021's triggers keep, in the writer's own transaction, for every
    live droplet, active job (per type) and active deployment. That migration is the one definition of what
    counts; a check reads at most (job types x 8 slots) counter rows per scope, whatever the usage (issue 16:
    the COUNT(*)s this replaces read one index entry per active job and live droplet of the tenant).
    `scope` is "cluster" or "tenant"; `key` the SQL of its id (a placeholder, or a column of an outer query),
    which appears three times, with `job_types` placeholders for the counted job types after the second."""
    def total(kind: str, parts: str = "") -> str:
        return (f"(SELECT COALESCE(SUM(n), 0) FROM quota_usage "
                f"WHERE scope = '{scope}' AND subject = {key} AND kind = '{kind}'{parts})")

    types = ", ".join(["%s"] * job_types)
    return (f"{total('live_droplets')} AS {prefix}droplets, "
            f"{total('active_jobs', f' AND part IN ({types})')} AS {prefix}concurrent_jobs, "
            f"{total('active_deployments')} AS {prefix}deployments")


class QuotaRepository:
    def stored(self, scope_type: str, scope_id: str) -> dict[str, int]:
        """The limits stored for this scope, by name (absent ones take their defaults)."""
        rows = db.query("SELECT limit_name, value FROM quotas WHERE scope_type = %s AND scope_id = %s",
                        (scope_type, scope_id))
        return {row["limit_name"]: int(row["value"]) for row in rows}

    def store(self, scope_type: str, scope_id: str, limits: dict[str, int]) -> None:
        """Set these limits of the scope (others keep theirs), in one transaction."""
        with db.transaction() as cur:
            cur.executemany("INSERT INTO quotas (scope_type, scope_id, limit_name, value) VALUES (%s, %s, %s, %s) "
                            "ON DUPLICATE KEY UPDATE value = VALUES(value)",
                            [(scope_type, scope_id, name, value) for name, value in limits.items()])

    def cluster_usage(self, cluster_id: str, job_types: tuple[str, ...]) -> dict[str, int]:
        """Live droplets, active jobs (of `job_types`) and active deployments of one cluster."""
        [row] = db.query(f"SELECT {_usage_columns('cluster', '%s', len(job_types))}",
                         (cluster_id, cluster_id, *job_types, cluster_id))
        return {k: int(v) for k, v in row.items()}

    def tenant_usage(self, tenant: str, job_types: tuple[str, ...]) -> dict[str, int]:
        """The same for one tenant: its droplets (with or without a cluster), jobs, and its clusters' deployments."""
        [row] = db.query(f"SELECT {_usage_columns('tenant', '%s', len(job_types))}",
                         (tenant, tenant, *job_types, tenant))
        return {k: int(v) for k, v in row.items()}

    def scopes(self, cluster_id: str, fallback_tenant: str, job_types: tuple[str, ...]) -> dict[str, Any]:
        """Everything a quota check of one cluster reads, in one statement (issue 16: it was ten): the owning
        tenant (`fallback_tenant` when the cluster does not exist), the limits stored for the cluster and for
        that tenant, and the usage of both (as `cluster_usage` and `tenant_usage` count it).

        `{"tenant": id, "stored": {"cluster": {...}, "tenant": {...}}, "usage": {"cluster": {...}, "tenant": {...}}}`"""
        [row] = db.query(
            "SELECT k.tenant, "
            "(SELECT JSON_OBJECTAGG(limit_name, value) FROM quotas WHERE scope_type = 'cluster' AND scope_id = k.cluster) "
            "AS cluster_stored, "
            "(SELECT JSON_OBJECTAGG(limit_name, value) FROM quotas WHERE scope_type = 'tenant' AND scope_id = k.tenant) "
            "AS tenant_stored, "
            f"{_usage_columns('cluster', 'k.cluster', len(job_types), prefix='cluster_')}, "
            f"{_usage_columns('tenant', 'k.tenant', len(job_types), prefix='tenant_')} "
            "FROM (SELECT %s AS cluster, COALESCE((SELECT tenant_id FROM clusters WHERE id = %s), %s) AS tenant) k",
            (*job_types, *job_types, cluster_id, cluster_id, fallback_tenant))
        usage = {scope: {name: int(row[f"{scope}_{name}"]) for name in ("droplets", "concurrent_jobs", "deployments")}
                 for scope in ("cluster", "tenant")}
        stored = {scope: {name: int(value) for name, value in json.loads(row[f"{scope}_stored"] or "{}").items()}
                  for scope in ("cluster", "tenant")}
        return {"tenant": row["tenant"], "stored": stored, "usage": usage}
