"""Quotas in MySQL: the stored limits of a tenant or a cluster, and the usage they are compared with."""
from __future__ import annotations

from chalicelib import db

# Droplets that count against a quota: every one not deleted (an `error` droplet still holds its record).
_LIVE_DROPLETS = "status <> 'deleted'"
_ACTIVE_JOBS = "status IN ('queued', 'processing')"
_ACTIVE_DEPLOYMENTS = "status IN ('pending', 'running', 'rolling_back')"


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
        placeholders = ", ".join(["%s"] * len(job_types))
        [row] = db.query(
            f"SELECT (SELECT COUNT(*) FROM droplets WHERE cluster_id = %s AND {_LIVE_DROPLETS}) AS droplets, "
            f"(SELECT COUNT(*) FROM jobs WHERE cluster_id = %s AND {_ACTIVE_JOBS} AND type IN ({placeholders})) "
            "AS concurrent_jobs, "
            f"(SELECT COUNT(*) FROM deployments WHERE cluster_id = %s AND {_ACTIVE_DEPLOYMENTS}) AS deployments",
            (cluster_id, cluster_id, *job_types, cluster_id))
        return {k: int(v) for k, v in row.items()}

    def tenant_usage(self, tenant: str, job_types: tuple[str, ...]) -> dict[str, int]:
        """The same over every cluster of one tenant (droplets and jobs carry their tenant; deployments
        follow their cluster)."""
        placeholders = ", ".join(["%s"] * len(job_types))
        [row] = db.query(
            f"SELECT (SELECT COUNT(*) FROM droplets WHERE tenant_id = %s AND {_LIVE_DROPLETS}) AS droplets, "
            f"(SELECT COUNT(*) FROM jobs WHERE tenant_id = %s AND {_ACTIVE_JOBS} AND type IN ({placeholders})) "
            "AS concurrent_jobs, "
            f"(SELECT COUNT(*) FROM deployments WHERE cluster_id IN (SELECT id FROM clusters WHERE tenant_id = %s) "
            f"AND {_ACTIVE_DEPLOYMENTS}) AS deployments", (tenant, tenant, *job_types, tenant))
        return {k: int(v) for k, v in row.items()}

    def tenant_of(self, cluster_id: str) -> str | None:
        """The tenant that owns the cluster (None when it does not exist), whatever the current confinement:
        a quota is the owner's, also when a worker enforces it."""
        rows = db.query("SELECT tenant_id FROM clusters WHERE id = %s", (cluster_id,))
        return rows[0]["tenant_id"] if rows else None
