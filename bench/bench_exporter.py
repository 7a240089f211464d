"""The metrics exporter's run time against the number of metric rows (it must not grow with them).

    .venv/bin/python bench/bench_exporter.py [--clusters 1000] [--rows 1000000] [--factor 10] [--runs 7]

Uses its own database, `clustergenie_bench` (created with the admin connection, like devstack does,
migrated with the project's migrations, dropped at the end unless --keep). Loads `--clusters` clusters
with 5 droplets each and `--rows` metric samples spread evenly over clusters and the four types
(server-side, from MariaDB's sequence engine), times the exporter, then grows the table to
`--rows x --factor` and times it again. Reported per size: the database read (`collect`) and a full
run including the PUT to the real Pushgateway (into a bench group, deleted afterwards); median and
min of `--runs` runs after one warm-up, and the server's Handler_read_* counters for one read (rows
and index entries touched: what "cost grows with clusters, not rows" means, free of the machine's load).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "clustergenie_bench"


def load_stack_env(db_name: str = BENCH_DB) -> None:
    """The stack's environment (stack.env), pointed at the bench's own database `db_name`, quiet logs."""
    from devstack.config import load_stack_env as read_stack_env

    read_stack_env()
    os.environ["CG_DB_NAME"] = db_name
    os.environ["CG_ENVIRONMENT"] = "bench"
    os.environ["CG_LOG_LEVEL"] = "WARNING"
    os.environ["CG_LOGS_TO_KAFKA"] = "0"


def admin_connection(cfg):  # noqa: ANN001, ANN201
    import pymysql

    return pymysql.connect(host="127.0.0.1", port=cfg.mysql_port, user=cfg.mysql_admin_user,
                           password=cfg.mysql_admin_secret(), autocommit=True, read_timeout=3600)


def create_database(cfg) -> None:  # noqa: ANN001
    from devstack.config import HOST
    from devstack.database import migrate

    conn = admin_connection(cfg)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{BENCH_DB}`")
        cur.execute(f"CREATE DATABASE `{BENCH_DB}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        for host in (HOST, "localhost"):  # the bench schema's owner runs its migrations (issue 18); the app reads
            cur.execute(f"GRANT ALL PRIVILEGES ON `{BENCH_DB}`.* TO %s@%s", (cfg.MIGRATION_USER, host))
            cur.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{BENCH_DB}`.* TO %s@%s", (cfg.db_user, host))
    conn.close()
    migrate(cfg, BENCH_DB, "apply")


def load_clusters(cfg, clusters: int) -> None:  # noqa: ANN001
    conn = admin_connection(cfg)
    with conn.cursor() as cur:
        cur.execute(f"USE `{BENCH_DB}`")
        cur.execute(f"INSERT INTO clusters (id, name, region) SELECT CONCAT('bench-c', seq), CONCAT('bench ', seq), 'nyc3' "
                    f"FROM seq_0_to_{clusters - 1}")
        cur.execute(f"INSERT INTO droplets (id, cluster_id, name, region, size, image, status) "
                    f"SELECT CONCAT('bench-d', seq), CONCAT('bench-c', seq DIV 5), 'd', 'nyc3', 's-1vcpu-1gb', 'ubuntu', "
                    f"ELT(1 + seq % 3, 'active', 'provisioning', 'off') FROM seq_0_to_{clusters * 5 - 1}")
    conn.close()


def drop_database(cfg) -> None:  # noqa: ANN001
    conn = admin_connection(cfg)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{BENCH_DB}`")
    conn.close()


def delete_push_group(instance: str) -> None:
    """Remove the bench's group (`instance`) from the real Pushgateway; a Pushgateway that is gone is fine."""
    from chalicelib.functions import metrics_exporter

    url = f"{os.environ['CG_PUSHGATEWAY_URL']}/metrics/job/{metrics_exporter.PUSH_JOB}/instance/{instance}"
    try:
        auth = metrics_exporter.pushgateway_auth(metrics_exporter.get_settings())
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE", headers=auth), timeout=5).close()
    except OSError:
        pass


def add_metric_rows(cfg, clusters: int, first: int, last: int) -> float:  # noqa: ANN001
    """Rows first..last (inclusive), cluster = n mod clusters, type = (n div clusters) mod 4, one second apart."""
    started = time.perf_counter()
    conn = admin_connection(cfg)
    with conn.cursor() as cur:
        cur.execute(f"USE `{BENCH_DB}`")
        chunk = 1_000_000
        for start in range(first, last + 1, chunk):
            end = min(last, start + chunk - 1)
            cur.execute(
                "INSERT INTO metrics (cluster_id, type, value, unit, timestamp) "
                f"SELECT CONCAT('bench-c', seq % {clusters}), ELT(1 + (seq DIV {clusters}) % 4, 'cpu', 'memory', 'disk', 'network'), "
                "(seq * 7919) % 100, '%', TIMESTAMP('2026-01-01') + INTERVAL (seq DIV "
                f"{clusters}) SECOND FROM seq_{start}_to_{end}")
    conn.close()
    return time.perf_counter() - started


def time_exporter(runs: int) -> dict[str, float]:
    import tempfile

    from chalicelib import db
    from chalicelib.functions import metrics_exporter

    db.reset_connection()
    metrics_exporter.GROUPING_KEY = {"instance": "bench"}
    metrics_exporter.collect(tempfile.TemporaryFile())  # warm-up (connection, buffer pool)
    reads, fulls = [], []
    for _ in range(runs):
        started = time.perf_counter()
        counts = metrics_exporter.collect(tempfile.TemporaryFile())
        reads.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = metrics_exporter.export()
        fulls.append(time.perf_counter() - started)
        assert result["pushed"], result
    # Rows the server touched for one read: independent of the machine's load, unlike the clock.
    def handler_reads() -> dict[str, int]:
        return {r["Variable_name"]: int(r["Value"]) for r in db.query("SHOW SESSION STATUS LIKE 'Handler_read%%'")}

    before = handler_reads()
    metrics_exporter.collect(tempfile.TemporaryFile())
    after = handler_reads()
    touched = {k.replace("Handler_read_", ""): after[k] - before[k] for k in after if after[k] != before[k]}
    return {"read_median": statistics.median(reads), "read_min": min(reads),
            "full_median": statistics.median(fulls), "full_min": min(fulls), "handler_reads": touched, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    load_stack_env()
    from devstack.config import StackConfig

    cfg = StackConfig.from_env()
    create_database(cfg)
    load_clusters(cfg, args.clusters)
    results = []
    loaded = 0
    try:
        for rows in (args.rows, args.rows * args.factor):
            load_seconds = add_metric_rows(cfg, args.clusters, loaded, rows - 1)
            loaded = rows
            timing = time_exporter(args.runs)
            results.append((rows, load_seconds, timing))
            print(f"{rows:>11,} rows (loaded in {load_seconds:6.1f}s): read median {timing['read_median'] * 1000:7.1f} ms "
                  f"(min {timing['read_min'] * 1000:6.1f}), full run with push median {timing['full_median'] * 1000:7.1f} ms "
                  f"(min {timing['full_min'] * 1000:6.1f}); {timing['clusters']} clusters, {timing['samples']} series; "
                  f"handler reads per run {timing['handler_reads']}", flush=True)
    finally:
        delete_push_group("bench")
        if not args.keep:
            drop_database(cfg)
    (small, _, a), (big, _, b) = results
    print(f"\nrows x{big // small}: read time x{b['read_median'] / a['read_median']:.2f}, "
          f"full run x{b['full_median'] / a['full_median']:.2f}")


if __name__ == "__main__":
    main()
