"""The quota check's read against the usage it counts (issue 16): `QuotaRepository.scopes` (migration 0021's
counters) beside the same statement with the COUNT(*)s it had before, on the same rows, as a tenant's active work grows.

    .venv/bin/python bench/bench_quota_check.py [--sizes 10,100,1000,10000] [--calls 200] [--keep]

A database of its own (`clustergenie_bench_quota`, created with the admin connection like bench_reads.py,
migrated with the project's migrations, dropped at the end unless --keep) gets, step by step, N queued provision
jobs and N live droplets of tenant `default` (one in ten in the checked cluster, the rest in another of its
clusters; bulk INSERT ... SELECT, the triggers counting every row). At each size both reads are called `--calls`
times, alternating call by call so that the machine's load hits both alike. Printed per size: the median ms per
call of each, and the server's Handler_read_* total around one call (free of the machine's load); both reads
must give the same usage.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from bench_exporter import admin_connection, load_stack_env  # noqa: E402 - the same stack set-up
from bench_reads import create_database  # noqa: E402

BENCH_DB = "clustergenie_bench_quota"


def previous_scopes(cluster_id: str, fallback_tenant: str, job_types: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """The usage part of `QuotaRepository.scopes` as it was before migration 0021: the same one statement (the
    owning tenant, both scopes' stored limits, both usages), each usage a COUNT(*) over the counted rows."""
    from chalicelib import db

    types = ", ".join(["%s"] * len(job_types))

    def usage(scope: str, key: str) -> str:
        owner = "cluster_id" if scope == "cluster" else "tenant_id"
        deployments_of = (f"cluster_id = {key}" if scope == "cluster"
                          else f"cluster_id IN (SELECT id FROM clusters WHERE tenant_id = {key})")
        return (f"(SELECT COUNT(*) FROM droplets WHERE {owner} = {key} AND status <> 'deleted') AS {scope}_droplets, "
                f"(SELECT COUNT(*) FROM jobs WHERE {owner} = {key} AND status IN ('queued', 'processing') "
                f"AND type IN ({types})) AS {scope}_concurrent_jobs, (SELECT COUNT(*) FROM deployments WHERE "
                f"{deployments_of} AND status IN ('pending', 'running', 'rolling_back')) AS {scope}_deployments")

    [row] = db.query(
        "SELECT k.tenant, "
        "(SELECT JSON_OBJECTAGG(limit_name, value) FROM quotas WHERE scope_type = 'cluster' AND scope_id = k.cluster) "
        "AS cluster_stored, "
        "(SELECT JSON_OBJECTAGG(limit_name, value) FROM quotas WHERE scope_type = 'tenant' AND scope_id = k.tenant) "
        f"AS tenant_stored, {usage('cluster', 'k.cluster')}, {usage('tenant', 'k.tenant')} "
        "FROM (SELECT %s AS cluster, COALESCE((SELECT tenant_id FROM clusters WHERE id = %s), %s) AS tenant) k",
        (*job_types, *job_types, cluster_id, cluster_id, fallback_tenant))
    return {scope: {name: int(row[f"{scope}_{name}"]) for name in ("droplets", "concurrent_jobs", "deployments")}
            for scope in ("cluster", "tenant")}


def handler_reads() -> int:
    from chalicelib import db

    return sum(int(r["Value"]) for r in db.query("SHOW SESSION STATUS LIKE 'Handler_read%%'"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    load_stack_env(BENCH_DB)
    from devstack.config import StackConfig

    cfg = StackConfig.from_env()
    create_database(cfg, BENCH_DB)
    try:
        from chalicelib import db
        from chalicelib.repositories.quotas import QuotaRepository
        from chalicelib.services.quotas import COUNTED_JOB_TYPES

        with db.transaction() as cur:
            cur.execute("INSERT INTO clusters (id, tenant_id, name, region) VALUES ('bq-c', 'default', 'c', 'nyc3'), "
                        "('bq-other', 'default', 'c', 'nyc3')")
        reads = {"COUNT(*)": lambda: previous_scopes("bq-c", "default", COUNTED_JOB_TYPES),
                 "counters": lambda: QuotaRepository().scopes("bq-c", "default", COUNTED_JOB_TYPES)["usage"]}
        have = 0
        for size in (int(s) for s in args.sizes.split(",")):
            with db.transaction() as cur:
                for table, columns, values in (
                        ("jobs", "id, tenant_id, cluster_id, type, status, trace_id, parameters",
                         "CONCAT('bq-j', seq), 'default', IF(seq % 10, 'bq-other', 'bq-c'), 'provision', 'queued', "
                         "'t', '{}'"),
                        ("droplets", "id, tenant_id, cluster_id, name, region, size, image, status",
                         "CONCAT('bq-d', seq), 'default', IF(seq % 10, 'bq-other', 'bq-c'), 'd', 'nyc3', 's', 'u', "
                         "'active'")):
                    cur.execute(f"INSERT INTO {table} ({columns}) SELECT {values} FROM seq_{have}_to_{size - 1}")
                    cur.execute(f"ANALYZE TABLE {table}")
                    cur.fetchall()
            have = size
            times: dict[str, list[float]] = {name: [] for name in reads}
            for _ in range(args.calls):
                for name, read in reads.items():
                    started = time.perf_counter()
                    read()
                    times[name].append(time.perf_counter() - started)
            usage, rows = {}, {}
            for name, read in reads.items():
                before = handler_reads()
                usage[name] = read()
                rows[name] = handler_reads() - before
            assert usage["COUNT(*)"] == usage["counters"], usage
            print(f"{size:>7} active jobs + live droplets: " + " | ".join(
                f"{name} {statistics.median(times[name]) * 1000:.3f} ms, {rows[name]} handler reads" for name in reads),
                flush=True)
    finally:
        if not args.keep:
            conn = admin_connection(cfg)
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{BENCH_DB}`")
            conn.close()


if __name__ == "__main__":
    sys.exit(main())
