"""Clusters in MySQL. A cluster's droplet list is read from the droplets table (one source of truth)."""
from __future__ import annotations

from typing import Any

from chalicelib import db
from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.repositories import row_counts
from chalicelib.repositories.base import domain_errors, new_id, tenant_filter, utc_text
from chalicelib.tenancy import owner_tenant

_COLUMNS = ", ".join(["id", "tenant_id", "name", "region", "status", utc_text("last_checked"), "version",
                      utc_text("created_at"), utc_text("updated_at")])
# Deleted droplets are history, not members.
_DROPLET_IDS = "SELECT id, cluster_id FROM droplets WHERE cluster_id {cond} AND status <> 'deleted' ORDER BY droplets.created_at, droplets.id"


def _attach_droplets(cur: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return rows
    by_id = {row["id"]: row for row in rows}
    for row in rows:
        row["droplets"] = []
    if len(rows) == 1:
        cur.execute(_DROPLET_IDS.format(cond="= %s"), (rows[0]["id"],))
    else:
        cur.execute(_DROPLET_IDS.format(cond="IN (" + ", ".join(["%s"] * len(rows)) + ")"), tuple(by_id))
    for droplet in cur.fetchall():
        by_id[droplet["cluster_id"]]["droplets"].append(droplet["id"])
    return rows


def store_health_sql(health: dict[str, tuple[int, str | None]], cond: str = "") -> str:
    """The one statement that stores many clusters' health (the event handler's, and `bench/bench_events.py`'s
    write ceiling): per cluster a compare-and-set on its version, in one UPDATE."""
    statuses = [cluster_id for cluster_id, (_, status) in health.items() if status is not None]
    status = ("CASE id " + " ".join(["WHEN %s THEN %s"] * len(statuses)) + " ELSE status END") if statuses else "status"
    return (f"UPDATE clusters SET status = {status}, last_checked = %s, version = version + 1 "
            "WHERE id IN (" + ", ".join(["%s"] * len(health)) + ") "
            "AND version = CASE id " + " ".join(["WHEN %s THEN %s"] * len(health)) + f" END{cond}")


def store_health_args(health: dict[str, tuple[int, str | None]], checked_at: Any, tenant_args: tuple = ()) -> tuple:
    statuses = [(cluster_id, status) for cluster_id, (_, status) in health.items() if status is not None]
    return (*[v for pair in statuses for v in pair], checked_at, *health,
            *[v for cluster_id, (version, _) in health.items() for v in (cluster_id, version)], *tenant_args)


class ClusterRepository:
    """Rows are dicts with the clusters columns plus `droplets` (list of droplet ids). Every statement is
    confined to the current tenant (`chalicelib.tenancy`): another tenant's cluster is not found."""

    def create(self, name: str, region: str, status: str = "healthy") -> dict[str, Any]:
        """Insert a new cluster in the current tenant and return it as stored."""
        cluster_id = new_id("cluster")
        with db.transaction() as cur, domain_errors():
            cur.execute(
                "INSERT INTO clusters (id, tenant_id, name, region, status) VALUES (%s, %s, %s, %s, %s)",
                (cluster_id, owner_tenant(), name, region, status),
            )
            cur.execute(f"SELECT {_COLUMNS} FROM clusters WHERE id = %s", (cluster_id,))
            row = cur.fetchone()
        row["droplets"] = []
        return row

    def get(self, cluster_id: str) -> dict[str, Any]:
        """The cluster with its droplet ids; NotFoundError when missing."""
        cond, args = tenant_filter()
        with db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM clusters WHERE id = %s{cond}", (cluster_id, *args))
            row = cur.fetchone()
            if row is None:
                raise NotFoundError("Cluster not found")
            return _attach_droplets(cur, [row])[0]

    def version_of(self, cluster_id: str) -> int:
        """The cluster's current version (what `update` expects); NotFoundError when missing."""
        cond, args = tenant_filter()
        with db.transaction() as cur:
            cur.execute(f"SELECT version FROM clusters WHERE id = %s{cond}", (cluster_id, *args))
            row = cur.fetchone()
        if row is None:
            raise NotFoundError("Cluster not found")
        return int(row["version"])

    def exists(self, cluster_id: str) -> bool:
        cond, args = tenant_filter()
        with db.transaction() as cur:
            cur.execute(f"SELECT 1 FROM clusters WHERE id = %s{cond}", (cluster_id, *args))
            return cur.fetchone() is not None

    def lock_for_health(self, cluster_ids: set[str]) -> dict[str, dict[str, Any]]:
        """{cluster id: {"tenant_id", "version"}} of those of `cluster_ids` that exist, locked for update until
        the caller's transaction ends (one statement, rows locked in primary-key order): nobody else changes or
        deletes them before `store_health`, so its compare-and-set holds. Inside `unit_of_work` only."""
        if not cluster_ids:
            return {}
        cond, args = tenant_filter()
        with db.transaction() as cur:
            cur.execute("SELECT id, tenant_id, version FROM clusters WHERE id IN ("
                        + ", ".join(["%s"] * len(cluster_ids)) + f"){cond} FOR UPDATE", (*sorted(cluster_ids), *args))
            return {row["id"]: {"tenant_id": row["tenant_id"], "version": int(row["version"])} for row in cur.fetchall()}

    def store_health(self, health: dict[str, tuple[int, str | None]], checked_at: Any) -> bool:
        """Set `last_checked` and (unless None) `status` of each cluster in `health` ({id: (expected version,
        status)}), each only at its expected version, bumping it: one statement (`store_health_sql`). True
        when every cluster was at its expected version; otherwise the caller re-reads (nothing is wrong with
        the ones that were)."""
        if not health:
            return True
        cond, args = tenant_filter()
        with db.transaction() as cur:
            cur.execute(store_health_sql(health, cond), store_health_args(health, checked_at, args))
            return cur.rowcount == len(health)

    def page(self, *, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """One page of clusters, oldest first, with droplet ids; and how many clusters there are (from
        `row_counts`, not a COUNT over the tenant's clusters)."""
        cond, args = tenant_filter(joiner=" WHERE ")
        with db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM clusters{cond} ORDER BY clusters.created_at, clusters.id LIMIT %s OFFSET %s",
                        (*args, limit, offset))
            rows = _attach_droplets(cur, list(cur.fetchall()))
            return rows, row_counts.tenant_total(cur, "clusters")

    def get_many(self, cluster_ids: set[str]) -> list[dict[str, Any]]:
        """Those of `cluster_ids` that exist, with droplet ids, in two queries."""
        if not cluster_ids:
            return []
        cond, args = tenant_filter()
        with db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM clusters WHERE id IN (" + ", ".join(["%s"] * len(cluster_ids)) + f"){cond}",
                        (*cluster_ids, *args))
            return _attach_droplets(cur, list(cur.fetchall()))

    def list(self) -> list[dict[str, Any]]:
        """Every cluster of the tenant, oldest first, with droplet ids (internal callers only: the API pages)."""
        cond, args = tenant_filter(joiner=" WHERE ")
        with db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM clusters{cond} ORDER BY clusters.created_at, clusters.id", args)
            return _attach_droplets(cur, list(cur.fetchall()))

    def update(self, cluster_id: str, expected_version: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply `changes` (name, region, status, last_checked) only if the row is still at
        `expected_version`, bumping the version. NotFoundError if missing, ConflictError if a
        concurrent update won."""
        allowed = ("name", "region", "status", "last_checked")
        fields = [f for f in allowed if f in changes]
        assignments = "".join(f"{f} = %s, " for f in fields)
        cond, args = tenant_filter()
        with db.transaction() as cur, domain_errors():
            cur.execute(
                f"UPDATE clusters SET {assignments}version = version + 1 WHERE id = %s AND version = %s{cond}",
                (*[changes[f] for f in fields], cluster_id, expected_version, *args),
            )
            if cur.rowcount == 0:
                cur.execute(f"SELECT version FROM clusters WHERE id = %s{cond}", (cluster_id, *args))
                current = cur.fetchone()
                if current is None:
                    raise NotFoundError("Cluster not found")
                raise ConflictError(
                    f"cluster {cluster_id} was modified concurrently (version {current['version']}, "
                    f"expected {expected_version}); re-read and retry"
                )
            cur.execute(f"SELECT {_COLUMNS} FROM clusters WHERE id = %s", (cluster_id,))
            return _attach_droplets(cur, [cur.fetchone()])[0]

    def delete(self, cluster_id: str) -> None:
        """Delete the cluster with its metrics, jobs and droplets in one transaction; NotFoundError if missing."""
        cond, args = tenant_filter()
        with db.transaction() as cur, domain_errors():
            # Lock the cluster first so no droplet or job can be attached while we cascade.
            cur.execute(f"SELECT id FROM clusters WHERE id = %s{cond} FOR UPDATE", (cluster_id, *args))
            if cur.fetchone() is None:
                raise NotFoundError("Cluster not found")
            # Explicit, child-first deletes: the outcome does not depend on the FK's ON DELETE clause.
            cur.execute("DELETE FROM metrics WHERE cluster_id = %s", (cluster_id,))
            cur.execute("DELETE FROM jobs WHERE cluster_id = %s", (cluster_id,))
            cur.execute("DELETE FROM droplets WHERE cluster_id = %s", (cluster_id,))
            cur.execute("DELETE FROM clusters WHERE id = %s", (cluster_id,))
