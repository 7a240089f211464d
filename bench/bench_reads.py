"""Reads stay flat as data grows (issue 16): the read routes at a small and a large table, side by side.

    .venv/bin/python bench/bench_reads.py [--small 10000] [--large 1000000] [--calls 200] [--keep]

Two databases of its own (`clustergenie_bench_reads_small` and `_large`, created with the admin connection
like bench_exporter.py, migrated with the project's migrations, dropped at the end unless --keep) hold the
same shape of data: `--small` and `--large` rows in each of clusters, droplets, jobs, metrics and log_lines (bulk
INSERT ... SELECT from MariaDB's sequence engine; the 0019 counter triggers run for every row, as for
the app's own inserts), all of tenant `default`, plus a fixed handful of another tenant's rows so that the
tenant conditions have something to exclude.

Every route is then called in process through chalice.test.Client with an admin API key of tenant
`default`, alternating call by call between the two databases (a `USE` on the app's own connection
between calls, outside the timing), so that the machine's load hits both sizes alike. Printed per route:
p50 at each size and their ratio (goal: at most 1.2), and the server's Handler_read_* counters diffed
around one request on the app's connection (goal: identical at both sizes; free of the machine's load).
A last line prices a deep OFFSET page, which is not flat and is not claimed to be.

    .venv/bin/python bench/bench_reads.py --previous   # after a --keep run: the statements of before 0019
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMALL_DB = "clustergenie_bench_reads_small"
LARGE_DB = "clustergenie_bench_reads_large"
CLUSTERS_WITH_HISTORY = 10  # jobs and metrics are spread over these clusters; the rest have none
CHUNK = 250_000

DEEP = "/api/v1/jobs?page=50&page_size=100"  # OFFSET 4,900: grows with the page number, not the table


from bench_exporter import admin_connection, load_stack_env  # noqa: E402 - the same stack set-up

sys.path.insert(0, str(ROOT / "tests" / "fast"))
from read_routes import READ_ROUTES as ROUTES  # noqa: E402 - one list with tests/fast/test_explain_reads.py


def create_database(cfg, name: str) -> None:  # noqa: ANN001
    from devstack.config import HOST
    from devstack.database import migrate

    conn = admin_connection(cfg)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        for host in (HOST, "localhost"):  # the schema's owner runs the migrations (issue 18); the app reads
            cur.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@%s", (cfg.MIGRATION_USER, host))
            cur.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{name}`.* TO %s@%s", (cfg.db_user, host))
    conn.close()
    migrate(cfg, name, "apply")


def seed(cfg, name: str, rows: int) -> dict[str, float]:  # noqa: ANN001
    """`rows` rows in each of clusters, droplets, jobs, metrics and log_lines; seconds per table."""
    conn = admin_connection(cfg)
    took = {}
    with conn.cursor() as cur:
        cur.execute(f"USE `{name}`")

        def chunks(table: str, sql: str) -> None:
            started = time.perf_counter()
            for start in range(0, rows, CHUNK):
                cur.execute(sql.format(first=start, last=min(rows, start + CHUNK) - 1))
            took[table] = time.perf_counter() - started

        chunks("clusters", "INSERT INTO clusters (id, tenant_id, name, region, created_at) "
                           "SELECT CONCAT('bench-c', seq), 'default', CONCAT('bench ', seq), 'nyc3', "
                           "TIMESTAMP('2026-01-01') + INTERVAL seq SECOND FROM seq_{first}_to_{last}")
        # As many droplets, three per cluster from the oldest on (a cluster page attaches its clusters').
        chunks("droplets", "INSERT INTO droplets (id, tenant_id, cluster_id, name, region, size, image, status) "
                           "SELECT CONCAT('bench-d', seq), 'default', CONCAT('bench-c', seq DIV 3), 'd', 'nyc3', "
                           "'s-1vcpu-1gb', 'ubuntu', 'active' FROM seq_{first}_to_{last}")
        chunks("jobs", "INSERT INTO jobs (id, tenant_id, cluster_id, type, status, trace_id, parameters, created_at) "
                       f"SELECT CONCAT('bench-j', LPAD(seq, 8, '0')), 'default', CONCAT('bench-c', seq % {CLUSTERS_WITH_HISTORY}), "
                       "'monitor', 'completed', CONCAT('trace-', seq), '{{}}', "
                       "TIMESTAMP('2026-01-01') + INTERVAL seq SECOND FROM seq_{first}_to_{last}")
        chunks("metrics", "INSERT INTO metrics (cluster_id, type, value, unit, timestamp) "
                          f"SELECT CONCAT('bench-c', seq % {CLUSTERS_WITH_HISTORY}), "
                          f"ELT(1 + (seq DIV {CLUSTERS_WITH_HISTORY}) % 4, 'cpu', 'memory', 'disk', 'network'), "
                          "(seq * 7919) % 100, '%', TIMESTAMP('2026-01-01') + INTERVAL seq SECOND "
                          "FROM seq_{first}_to_{last}")
        # 20 lines of the job whose logs are read; the other lines belong to other jobs.
        chunks("log_lines", "INSERT INTO log_lines (source, ts, level, function, job_id, message, line) "
                            "SELECT CONCAT('bench:', seq), TIMESTAMP('2026-01-01') + INTERVAL seq SECOND, 'INFO', "
                            "'worker', CONCAT('bench-j', LPAD(IF(seq < 20, 1, seq), 8, '0')), 'step', "
                            "'{{\"message\": \"step\"}}' FROM seq_{first}_to_{last}")
        # Another tenant's rows, excluded by every tenant condition.
        cur.execute("INSERT INTO clusters (id, tenant_id, name, region) "
                    "SELECT CONCAT('other-c', seq), 'other', 'other', 'nyc3' FROM seq_0_to_4")
        cur.execute("INSERT INTO jobs (id, tenant_id, cluster_id, type, status, trace_id, parameters) "
                    "SELECT CONCAT('other-j', seq), 'other', CONCAT('other-c', seq % 5), 'monitor', 'completed', "
                    "CONCAT('other-', seq), '{}' FROM seq_0_to_99")
        cur.execute("INSERT INTO metrics (cluster_id, type, value, unit, timestamp) "
                    "SELECT CONCAT('other-c', seq % 5), 'cpu', 1, '%', TIMESTAMP('2027-01-01') + INTERVAL seq SECOND "
                    "FROM seq_0_to_99")
        for table in ("clusters", "droplets", "jobs", "metrics", "log_lines"):
            cur.execute(f"ANALYZE TABLE {table}")
            cur.fetchall()
    conn.close()
    return took


def copy_key(cfg) -> None:  # noqa: ANN001
    conn = admin_connection(cfg)
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{LARGE_DB}`.api_keys SELECT * FROM `{SMALL_DB}`.api_keys")
    conn.close()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def measure(calls: int, warmup: int) -> list[tuple[str, dict, dict]]:
    from chalice.test import Client

    from app import app
    from chalicelib import db
    from chalicelib.auth.keys import ApiKeyService

    def use(name: str) -> None:
        with db.transaction() as cur:
            cur.execute(f"USE `{name}`")

    use(SMALL_DB)
    key = ApiKeyService().create(tenant="default", role="admin", name="bench-reads", created_by="bench")[1]
    from devstack.config import StackConfig

    copy_key(StackConfig.from_env())
    auth = {"X-API-Key": key}

    def handler_reads() -> dict[str, int]:
        return {r["Variable_name"]: int(r["Value"]) for r in db.query("SHOW SESSION STATUS LIKE 'Handler_read%%'")}

    results = []
    with Client(app) as client:
        def call(path: str) -> int:
            response = client.http.get(path, headers=auth)
            assert response.status_code == 200, (path, response.status_code, response.body[:300])
            return response

        for path in [*ROUTES, DEEP]:
            per_db: dict[str, dict] = {}
            for name in (SMALL_DB, LARGE_DB):
                use(name)
                for _ in range(warmup):
                    call(path)
                before = handler_reads()
                response = call(path)
                after = handler_reads()
                per_db[name] = {"reads": {k.replace("Handler_read_", ""): after[k] - before[k] for k in after
                                          if after[k] != before[k]},
                                "total": response.headers.get("X-Total-Count"), "ms": []}
            for _ in range(calls):  # alternating, so load and drift hit both sizes alike
                for name in (SMALL_DB, LARGE_DB):
                    use(name)
                    started = time.perf_counter_ns()
                    call(path)
                    per_db[name]["ms"].append((time.perf_counter_ns() - started) / 1e6)
            results.append((path, per_db[SMALL_DB], per_db[LARGE_DB]))
    return results


# The statements the read routes sent before migration 0019 (issue 16) that did not stay flat, for tenant
# `default`: the totals' COUNT(*)s and the pages the optimiser planned without a named index. Run bare on
# each database (`--previous`), so the table shows what the change removed.
_TENANT_CLUSTERS = "cluster_id IN (SELECT id FROM clusters WHERE tenant_id = 'default')"
PREVIOUS = [
    ("GET /clusters total", "SELECT COUNT(*) AS n FROM clusters WHERE tenant_id = 'default'"),
    ("GET /jobs total", "SELECT COUNT(*) AS n FROM jobs WHERE tenant_id = 'default'"),
    ("GET /jobs?sort_by=id page", "SELECT id FROM jobs WHERE tenant_id = 'default' ORDER BY jobs.id DESC LIMIT 5 OFFSET 0"),
    ("GET /metrics total", f"SELECT COUNT(*) AS n FROM metrics WHERE {_TENANT_CLUSTERS}"),
    ("GET /metrics page", f"SELECT id FROM metrics WHERE {_TENANT_CLUSTERS} "
                          "ORDER BY metrics.timestamp DESC, metrics.id DESC LIMIT 50 OFFSET 0"),
    ("GET /metrics?type=cpu total", f"SELECT COUNT(*) AS n FROM metrics WHERE type = 'cpu' AND {_TENANT_CLUSTERS}"),
    ("GET /metrics?cluster_id= total", f"SELECT COUNT(*) AS n FROM metrics WHERE cluster_id = 'bench-c3' AND {_TENANT_CLUSTERS}"),
]


def previous(cfg) -> None:  # noqa: ANN001
    print(f"\nbefore 0019 (bare statements)                    {'ms small':>9} {'ms large':>9} {'ratio':>6}  handler reads (small | large)")
    conn = admin_connection(cfg)
    with conn.cursor() as cur:
        def handler_reads() -> dict[str, int]:
            cur.execute("SHOW SESSION STATUS LIKE 'Handler_read%'")
            return {k.replace("Handler_read_", ""): int(v) for k, v in cur.fetchall()}

        for label, sql in PREVIOUS:
            figures = {}
            for name in (SMALL_DB, LARGE_DB):
                cur.execute(f"USE `{name}`")
                cur.execute(sql)
                cur.fetchall()
                before = handler_reads()
                cur.execute(sql)
                cur.fetchall()
                after = handler_reads()
                times = []
                for _ in range(3):
                    started = time.perf_counter()
                    cur.execute(sql)
                    cur.fetchall()
                    times.append((time.perf_counter() - started) * 1000)
                figures[name] = (statistics.median(times), {k: after[k] - before[k] for k in after if after[k] != before[k]})
            small, large = figures[SMALL_DB], figures[LARGE_DB]
            print(f"{label:<48} {small[0]:8.2f}ms {large[0]:8.2f}ms {large[0] / small[0]:6.1f}  {small[1]} | {large[1]}",
                  flush=True)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument("--reuse", action="store_true", help="measure databases kept by an earlier --keep run")
    parser.add_argument("--previous", action="store_true",
                        help="only run the statements of before 0019 on databases kept by --keep")
    args = parser.parse_args()

    load_stack_env(LARGE_DB)
    from devstack.config import StackConfig

    cfg = StackConfig.from_env()
    if args.previous:
        previous(cfg)
        return
    try:
        if not args.reuse:
            for name, rows in ((SMALL_DB, args.small), (LARGE_DB, args.large)):
                create_database(cfg, name)
                started = time.perf_counter()
                took = seed(cfg, name, rows)
                print(f"seeded {rows:>9,} rows per table into {name} in {time.perf_counter() - started:6.1f}s "
                      f"({', '.join(f'{t} {s:.1f}s' for t, s in took.items())})", flush=True)
        print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
        results = measure(args.calls, args.warmup)
        print(f"\n{'route':<48} {'p50 small':>9} {'p50 large':>9} {'ratio':>6}  handler reads (small | large)")
        worst = 0.0
        for path, small, large in results:
            p50s, p50l = statistics.median(small["ms"]), statistics.median(large["ms"])
            ratio = p50l / p50s
            same = "same" if small["reads"] == large["reads"] else "DIFFER"
            if path != DEEP:
                worst = max(worst, ratio)
            print(f"{path:<48} {p50s:8.2f}ms {p50l:8.2f}ms {ratio:6.2f}  {same}: {small['reads']} | {large['reads']}"
                  + (f"  (X-Total-Count {small['total']} | {large['total']})" if small["total"] else ""), flush=True)
        print(f"\nworst p50 ratio over the flat routes: {worst:.2f} (goal <= 1.2); load after: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if not args.keep:
            conn = admin_connection(cfg)
            with conn.cursor() as cur:
                for name in (SMALL_DB, LARGE_DB):
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            conn.close()


if __name__ == "__main__":
    main()
