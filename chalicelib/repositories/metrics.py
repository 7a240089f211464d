"""Metrics in MySQL: listing, the latest sample per type, and recording samples."""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from typing import Any

from chalicelib import db
from chalicelib.models.domain import METRIC_TYPES
from chalicelib.repositories import row_counts
from chalicelib.repositories.base import domain_errors, tenant_filter, utc_text, via_cluster

_COLUMNS = ", ".join(["id", "cluster_id", "type", "value", "unit", utc_text("timestamp")])

# One backwards lookup on idx_metrics_cluster_type_ts per type, in a single round trip. The index is
# forced: on small or skewed tables the optimiser may prefer (cluster_id, timestamp) and scan a cluster's
# whole history instead.
def latest_per_type_sql(cond: str = "") -> str:
    """`cond`: the tenant condition (`via_cluster`), repeated in every branch with its args."""
    return " UNION ALL ".join(
        f"(SELECT {_COLUMNS} FROM metrics FORCE INDEX (idx_metrics_cluster_type_ts) "
        f"WHERE cluster_id = %s AND type = '{t}'{cond} ORDER BY metrics.timestamp DESC, metrics.id DESC LIMIT 1)"
        for t in METRIC_TYPES
    )


_LATEST_PER_TYPE = latest_per_type_sql()

# The newest value of each of `types` per cluster, one row per cluster (placeholders: the cluster ids, [tenant]).
def latest_values_sql(types: tuple[str, ...] = METRIC_TYPES) -> str:
    """`types`: literals of METRIC_TYPES (written into the statement), never input."""
    if not set(types) <= set(METRIC_TYPES):
        raise ValueError(f"not metric types: {types!r}")
    return "SELECT clusters.id AS cluster_id, " + ", ".join(
        f"(SELECT m.value FROM metrics m FORCE INDEX (idx_metrics_cluster_type_ts) WHERE m.cluster_id = clusters.id "
        f"AND m.type = '{t}' ORDER BY m.timestamp DESC, m.id DESC LIMIT 1) AS `{t}`" for t in types
    ) + " FROM clusters WHERE clusters.id IN ({ids}){cond}"


_LATEST_VALUES = latest_values_sql()

_TYPES = " UNION ALL ".join(f"SELECT '{t}' AS type" for t in METRIC_TYPES)  # fixed literals, not input

# Per (cluster, type): the id of the newest sample, by a backwards lookup on idx_metrics_cluster_type_ts
# (LIMIT 1; the index holds the primary key, so "timestamp DESC, id DESC" is its order), then the row by
# primary key. No scan of a cluster's history, whatever its length. One chunk of clusters at a time, by
# primary key after the last id of the previous chunk (placeholders: after id, [tenant,] chunk size), so a
# reader's memory is bounded by the chunk, never by the number of clusters (issue 18).
def latest_sql(cond: str = "") -> str:
    """`cond`: the tenant condition on the clusters (`tenant_filter`), or nothing (every tenant)."""
    return f"""
SELECT x.cluster_id, x.cluster_name, x.type, m.value, UNIX_TIMESTAMP(m.timestamp) AS ts
FROM (
    SELECT c.id AS cluster_id, c.name AS cluster_name, t.type,
           (SELECT mm.id FROM metrics mm FORCE INDEX (idx_metrics_cluster_type_ts)
             WHERE mm.cluster_id = c.id AND mm.type = t.type
             ORDER BY mm.timestamp DESC, mm.id DESC LIMIT 1) AS metric_id
    FROM (SELECT id, name FROM clusters WHERE id > %s{cond} ORDER BY id LIMIT %s) c CROSS JOIN ({_TYPES}) t
) x
LEFT JOIN metrics m ON m.id = x.metric_id
ORDER BY x.cluster_id
"""


LATEST_SQL = latest_sql()


def list_filter(*, by_cluster: bool, by_type: bool) -> str:
    """The WHERE clause of a metrics listing (placeholders in the order cluster_id, type)."""
    conditions = [c for c, on in (("cluster_id = %s", by_cluster), ("type = %s", by_type)) if on]
    return ("WHERE " + " AND ".join(conditions)) if conditions else ""


# The index of each filter combination (by_cluster, by_type), named in the statement: with the tenant's
# condition (`via_cluster`) the optimiser may otherwise turn the semi-join into a join driven by a scan of
# every sample and a filesort, or switch plans as the table grows (issue 16). Read backwards, each row's
# cluster checked by primary key until the page is full: flat while the tenant's samples are not rare among
# the newest of the filter's rows (a tenant column on metrics would lift that: docs/decisions.md).
LISTING_INDEX = {(False, False): "idx_metrics_ts", (False, True): "idx_metrics_type_ts",
                 (True, False): "idx_metrics_cluster_ts", (True, True): "idx_metrics_cluster_type_ts"}


def page_sql(where: str, index: str | None = None) -> str:
    """One page of a metrics listing, newest first; every filter combination has an index for this order
    (`index`: the one to read, from LISTING_INDEX)."""
    hint = f" FORCE INDEX ({index})" if index else ""
    return (f"SELECT {_COLUMNS} FROM metrics{hint} {where} "
            "ORDER BY metrics.timestamp DESC, metrics.id DESC LIMIT %s OFFSET %s")


class MetricRepository:
    def latest_of_every_cluster(self, chunk: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Chunks of rows, one row per (cluster, metric type), `chunk` clusters at a time in id order:
        cluster_id, cluster_name, type, value and ts (None when the cluster has no sample of that type).
        Confined to the current tenant inside a request; every tenant outside one (the exporter)."""
        cond, args = tenant_filter()
        sql = latest_sql(cond)
        after = ""
        while True:
            with db.transaction() as cur:
                cur.execute(sql, (after, *args, chunk))
                rows = list(cur.fetchall())
            if not rows:
                return
            yield rows
            after = rows[-1]["cluster_id"]

    def list(self, *, cluster_id: str | None, metric_type: str | None, page: int,
             page_size: int) -> tuple[list[dict[str, Any]], int]:
        """A page of samples, newest first, filtered by cluster and/or type, with the exact total (from
        `row_counts`, not a COUNT over the matching samples)."""
        args = [value for value in (cluster_id, metric_type) if value is not None]
        by_cluster, by_type = cluster_id is not None, metric_type is not None
        where = list_filter(by_cluster=by_cluster, by_type=by_type)
        with db.transaction() as cur:
            if by_cluster:
                # One cluster: its tenant is checked once, by primary key, instead of a semi-join per row.
                cond, tenant_args = tenant_filter()
                cur.execute(f"SELECT 1 FROM clusters WHERE id = %s{cond}", (cluster_id, *tenant_args))
                if cur.fetchone() is None:
                    return [], 0  # another tenant's cluster, or none: nothing to list (as before)
            else:
                cond, tenant_args = via_cluster(joiner=" AND " if where else "WHERE ")
                where, args = where + cond, [*args, *tenant_args]
            cur.execute(page_sql(where, LISTING_INDEX[(by_cluster, by_type)]),
                        (*args, page_size, (page - 1) * page_size))
            rows = list(cur.fetchall())
            total = row_counts.metrics_total(cur, cluster_id=cluster_id, metric_type=metric_type)
        return rows, total

    def latest_values(self, cluster_ids: list[str],
                      types: tuple[str, ...] = METRIC_TYPES) -> dict[str, dict[str, float]]:
        """{cluster id: {metric type: value of its most recent sample}} for many clusters in one statement
        (per cluster and type a backwards LIMIT 1 lookup on idx_metrics_cluster_type_ts, as `latest_per_type`);
        types a cluster never reported are absent, clusters that do not exist too. Only `types` are looked up
        (the health rules need three of the four: issue 16, a quarter of the statement's lookups)."""
        if not cluster_ids:
            return {}
        cond, args = tenant_filter("clusters.tenant_id")
        sql = _LATEST_VALUES if types == METRIC_TYPES else latest_values_sql(types)
        with db.transaction() as cur:
            cur.execute(sql.format(ids=", ".join(["%s"] * len(cluster_ids)), cond=cond), (*cluster_ids, *args))
            return {row["cluster_id"]: {t: float(row[t]) for t in types if row[t] is not None}
                    for row in cur.fetchall()}

    def latest_per_type(self, cluster_id: str) -> dict[str, dict[str, Any]]:
        """The most recent sample of each metric type the cluster has reported (absent types are absent)."""
        cond, args = via_cluster()
        with db.transaction() as cur:
            cur.execute(latest_per_type_sql(cond) if cond else _LATEST_PER_TYPE, (cluster_id, *args) * len(METRIC_TYPES))
            return {row["type"]: row for row in cur.fetchall()}

    def record(self, *, cluster_id: str, metric_type: str, value: float, unit: str,
               timestamp: dt.datetime) -> int:
        """Store one sample and return its id (NotFoundError if the cluster is gone)."""
        if timestamp.tzinfo is not None:
            timestamp = timestamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
        with db.transaction() as cur, domain_errors("Cluster not found"):
            cur.execute(
                "INSERT INTO metrics (cluster_id, type, value, unit, timestamp) VALUES (%s, %s, %s, %s, %s)",
                (cluster_id, metric_type, value, unit, timestamp),
            )
            return int(cur.lastrowid)

    def record_many(self, samples: list[tuple[str, str, float, str, dt.datetime]],
                    sources: list[str] | None = None) -> None:
        """Store (cluster_id, type, value, unit, timestamp) samples, of any clusters, in one transaction
        (NotFoundError, and nothing stored, if one of the clusters is gone).

        `sources` (one per sample) name where each sample came from; a sample whose source is already
        stored is skipped, so applying the same samples twice stores them once (migration 0005)."""
        if sources is not None and len(sources) != len(samples):
            raise ValueError("one source per sample")
        rows = [(c, t, v, u, ts.astimezone(dt.timezone.utc).replace(tzinfo=None) if ts.tzinfo else ts,
                 hashlib.md5(source.encode(), usedforsecurity=False).digest() if source else None)
                for (c, t, v, u, ts), source in zip(samples, sources or [None] * len(samples))]
        with db.transaction() as cur, domain_errors("Cluster not found"):
            # Plain %s placeholders keep pymysql's executemany to one multi-row INSERT (with a SQL function
            # in VALUES it sends a statement per row). ON DUPLICATE KEY, not INSERT IGNORE: IGNORE would
            # also turn a missing cluster (FK) into a silently skipped row.
            cur.executemany(
                "INSERT INTO metrics (cluster_id, type, value, unit, timestamp, source_hash) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE id = id", rows
            )
