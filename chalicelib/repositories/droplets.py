"""Droplets in MySQL."""
from __future__ import annotations

import datetime as dt
from typing import Any

from chalicelib import db
from chalicelib.errors import NotFoundError
from chalicelib.repositories.base import domain_errors, lock_cluster, new_id, tenant_filter, utc_text
from chalicelib.tenancy import owner_tenant

# A droplet under a known id, inserted from its cluster's row (its tenant read there, the row share-locked so the
# cluster cannot be deleted before the commit) unless a droplet with that id exists: `insert_if_absent` and `record`.
# Placeholders: id, name, region, provider, size, image, status, ip_address, cluster id; then `{cond}` (the tenant
# filter on clusters, and any further condition) and `{returning}` are filled in.
_INSERT_FROM_CLUSTER = (
    "INSERT INTO droplets (id, tenant_id, cluster_id, name, region, provider, size, image, status, ip_address) "
    "SELECT %s, clusters.tenant_id, clusters.id, %s, %s, %s, %s, %s, %s, %s FROM clusters "
    "WHERE clusters.id = %s{cond} LOCK IN SHARE MODE ON DUPLICATE KEY UPDATE droplets.id = droplets.id{returning}")

# What the provisioning pipeline may change on a droplet (`update`, `update_known`).
PIPELINE_FIELDS = ("status", "ip_address", "provider_instance_id")
_COLUMNS = ", ".join(["id", "tenant_id", "cluster_id", "name", "region", "provider", "size", "image", "status", "ip_address",
                      "provider_instance_id", "version", utc_text("created_at"), utc_text("updated_at")])


class DropletRepository:
    """A droplet belongs to its cluster's tenant (to the current one when it has no cluster); every statement
    is confined to the current tenant (`chalicelib.tenancy`)."""

    def create(self, *, name: str, region: str, size: str, image: str, provider: str,
               cluster_id: str | None = None, status: str = "provisioning") -> dict[str, Any]:
        """Insert a droplet; when `cluster_id` is given the cluster must exist (NotFoundError otherwise)."""
        droplet_id = new_id("droplet")
        with db.transaction() as cur, domain_errors("Cluster not found"):
            tenant = lock_cluster(cur, cluster_id) if cluster_id is not None else owner_tenant()
            cur.execute(
                "INSERT INTO droplets (id, tenant_id, cluster_id, name, region, provider, size, image, status) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (droplet_id, tenant, cluster_id, name, region, provider, size, image, status),
            )
            cur.execute(f"SELECT {_COLUMNS} FROM droplets WHERE id = %s", (droplet_id,))
            return cur.fetchone()

    def insert_if_absent(self, *, droplet_id: str, cluster_id: str, name: str, region: str, size: str,
                         image: str, provider: str, status: str, ip_address: str | None,
                         announced_by_job: str | None = None) -> bool:
        """Insert a droplet under a known id (one announced by an event) unless a row with that id
        exists; True if inserted. NotFoundError if the cluster is missing. Idempotent.

        A droplet announced by one of this app's own jobs (`announced_by_job` names a stored job) is never
        inserted here: that job wrote the droplet's row in the same transaction as the announcement's outbox
        row, so a missing row means the droplet was deleted since (a terminate job can finish before the
        event handler reads the announcement) and must not come back.

        One statement when the droplet is new (issue 16): the INSERT reads the cluster's tenant from the cluster
        row itself, share-locking it, so it cannot be deleted before the commit, and is conditional on the
        announcing job's absence. Only when nothing was inserted does a second statement tell a missing
        cluster (NotFoundError) from a droplet that is there already or a job's announcement. The usual
        announcement, by a job that is stored, is one read and no write."""
        cond, args = tenant_filter("clusters.tenant_id")
        if announced_by_job is not None:
            # Most announcements are this app's jobs': one read and no write transaction (issue 16, sixth round).
            # A job that is there wrote the row itself, so nothing is inserted; the read only tells a missing
            # cluster. An unknown job falls through to the conditional insert, which checks it again.
            known = db.query_one("SELECT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = %s) AS job, "
                                 f"EXISTS (SELECT 1 FROM clusters WHERE clusters.id = %s{cond}) AS cluster",
                                 (announced_by_job, cluster_id, *args))
            if known["job"]:
                if not known["cluster"]:
                    raise NotFoundError("Cluster not found")
                return False
        job, job_args = (" AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = %s)", (announced_by_job,)) \
            if announced_by_job is not None else ("", ())
        with db.transaction() as cur, domain_errors("Cluster not found"):
            cur.execute(
                _INSERT_FROM_CLUSTER.format(cond=cond + job, returning=""),
                (droplet_id, name, region, provider, size, image, status, ip_address, cluster_id, *args, *job_args),
            )
            if cur.rowcount == 1:
                return True
            lock_cluster(cur, cluster_id)  # NotFoundError when the cluster is missing
            return False

    def record(self, *, droplet_id: str, cluster_id: str, name: str, region: str, size: str, image: str,
               provider: str) -> tuple[dict[str, Any], bool]:
        """A job's droplet under its known id, `provisioning`: inserted unless a row with that id exists, and
        returned either way, in one statement (issue 16: `INSERT … SELECT … RETURNING`, the cluster's row
        share-locked as in `insert_if_absent`); the flag says whether it was inserted now. NotFoundError when
        the cluster is missing."""
        cond, args = tenant_filter("clusters.tenant_id")
        with db.transaction() as cur, domain_errors("Cluster not found"):
            # RETURNING gives the row either way (a result set's row count cannot tell which): a row inserted now has
            # this statement's NOW(6) as its created_at, a row that was there an earlier one.
            cur.execute(
                _INSERT_FROM_CLUSTER.format(
                    cond=cond, returning=f" RETURNING {_COLUMNS}, droplets.created_at = NOW(6) AS inserted_now"),
                (droplet_id, name, region, provider, size, image, "provisioning", None, cluster_id, *args),
            )
            row = cur.fetchone()
            if row is None:
                lock_cluster(cur, cluster_id)  # NotFoundError when the cluster is missing
                raise NotFoundError("Cluster not found")
            return row, bool(row.pop("inserted_now"))

    def get(self, droplet_id: str) -> dict[str, Any]:
        """The droplet; NotFoundError when missing."""
        cond, args = tenant_filter()
        with db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM droplets WHERE id = %s{cond}", (droplet_id, *args))
            row = cur.fetchone()
        if row is None:
            raise NotFoundError("Droplet not found")
        return row

    def list(self, cluster_id: str | None = None) -> list[dict[str, Any]]:
        """Droplets, oldest first, optionally of one cluster."""
        with db.transaction() as cur:
            if cluster_id is None:
                cond, args = tenant_filter(joiner=" WHERE ")
                cur.execute(f"SELECT {_COLUMNS} FROM droplets{cond} ORDER BY droplets.created_at, droplets.id", args)
            else:
                cond, args = tenant_filter()
                cur.execute(f"SELECT {_COLUMNS} FROM droplets WHERE cluster_id = %s{cond} "
                            "ORDER BY droplets.created_at, droplets.id", (cluster_id, *args))
            return list(cur.fetchall())

    def page(self, cluster_id: str | None, *, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """One page of droplets, oldest first, optionally of one cluster; and how many there are in all."""
        where, args = ("WHERE cluster_id = %s", (cluster_id,)) if cluster_id is not None else ("", ())
        cond, tenant_args = tenant_filter(joiner=" AND " if where else "WHERE ")
        where, args = where + cond, (*args, *tenant_args)
        with db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM droplets {where} ORDER BY droplets.created_at, droplets.id "
                        "LIMIT %s OFFSET %s", (*args, limit, offset))
            rows = list(cur.fetchall())
            cur.execute(f"SELECT COUNT(*) AS n FROM droplets {where}", args)
            return rows, cur.fetchone()["n"]

    def update(self, droplet_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Set status/ip_address/provider_instance_id (the provisioning pipeline's fields)."""
        fields = [f for f in PIPELINE_FIELDS if f in changes]
        assignments = "".join(f"{f} = %s, " for f in fields)
        cond, args = tenant_filter()
        with db.transaction() as cur:
            cur.execute(f"UPDATE droplets SET {assignments}version = version + 1 WHERE id = %s{cond}",
                        (*[changes[f] for f in fields], droplet_id, *args))
            cur.execute(f"SELECT {_COLUMNS} FROM droplets WHERE id = %s{cond}", (droplet_id, *args))
            row = cur.fetchone()
        if row is None:
            raise NotFoundError("Droplet not found")
        return row

    def update_known(self, droplet: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """`update` of a droplet the caller has just read or written (`droplet`, with its version): one UPDATE
        conditional on that version, and the row it leaves built from `droplet` instead of read back (issue 16).
        When someone else changed the droplet meanwhile, `update` applies the changes to the row as it is."""
        fields = [f for f in PIPELINE_FIELDS if f in changes]
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        cond, args = tenant_filter()
        with db.transaction() as cur:
            cur.execute(f"UPDATE droplets SET {''.join(f'{f} = %s, ' for f in fields)}updated_at = %s, "
                        f"version = version + 1 WHERE id = %s AND version = %s{cond}",
                        (*[changes[f] for f in fields], now, droplet["id"], droplet["version"], *args))
            if cur.rowcount != 1:
                return self.update(droplet["id"], changes)
        return {**droplet, **{f: changes[f] for f in fields}, "version": droplet["version"] + 1,
                "updated_at": f"{now:%Y-%m-%d %H:%M:%S.%f}Z"}

    def count_by_cluster_status(self, cluster_ids: list[str]) -> list[dict[str, Any]]:
        """Rows of cluster_id, status and n: how many droplets each of `cluster_ids` has in each status."""
        if not cluster_ids:
            return []
        cond, args = tenant_filter()
        with db.transaction() as cur:
            cur.execute("SELECT cluster_id, status, COUNT(*) AS n FROM droplets WHERE cluster_id IN ("
                        + ", ".join(["%s"] * len(cluster_ids)) + f"){cond} GROUP BY cluster_id, status",
                        (*cluster_ids, *args))
            return list(cur.fetchall())

    def retire(self, droplet_id: str, from_provider: str, to_provider: str) -> None:
        """Mark the droplet deleted and move one unit of catalogue usage from `from_provider` to
        `to_provider`, together (once: a re-run finds the droplet already deleted and moves nothing)."""
        cond, args = tenant_filter()
        with db.transaction() as cur:
            cur.execute(f"UPDATE droplets SET status = 'deleted', version = version + 1 "
                        f"WHERE id = %s AND status <> 'deleted'{cond}", (droplet_id, *args))
            if cur.rowcount == 1:
                cur.execute("UPDATE providers SET used = used + 1 WHERE name = %s", (to_provider,))
                cur.execute("UPDATE providers SET used = used - 1 WHERE name = %s AND used > 0", (from_provider,))

    def delete(self, droplet_id: str) -> None:
        """Remove the droplet; NotFoundError when missing."""
        cond, args = tenant_filter()
        with db.transaction() as cur:
            cur.execute(f"DELETE FROM droplets WHERE id = %s{cond}", (droplet_id, *args))
            if cur.rowcount == 0:
                raise NotFoundError("Droplet not found")
