"""Warm in-process latency of the core API against the same SQL run bare with pymysql.

    .venv/bin/python bench/bench_api.py [--calls 2000] [--db clustergenie]

For each route it times `--calls` requests through chalice.test.Client (routing, middleware, error
mapping, rate-limit table lookup, validation, services, repositories, serialisation; real MariaDB) and,
interleaved call by call, the same statements executed on a bare pymysql connection. It prints p50/p99
of both, their difference (what the app adds) and their ratio. Everything it creates is deleted at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_stack_env(db_name: str, log_level: str) -> None:
    from devstack.config import load_stack_env as read_stack_env

    read_stack_env()
    os.environ["CG_DB_NAME"] = db_name
    os.environ.setdefault("CG_ENVIRONMENT", "bench")
    os.environ.setdefault("CG_LOG_LEVEL", log_level)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run(calls: int, warmup: int) -> list[dict]:
    from chalice.test import Client

    from app import app
    from chalicelib import db
    from chalicelib.repositories import ClusterRepository, DropletRepository, JobRepository
    from chalicelib.repositories import clusters as cluster_sql
    from chalicelib.repositories import jobs as job_sql
    from chalicelib.settings import get_settings

    marker = f"bench-{uuid.uuid4().hex[:8]}"
    clusters, droplets, jobs = ClusterRepository(), DropletRepository(), JobRepository()
    cluster = clusters.create(marker, "nyc3")
    for i in range(3):
        droplets.create(name=f"{marker}-{i}", region="nyc3", size="s-1vcpu-1gb", image="ubuntu-22-04-x64",
                        provider="simulated", cluster_id=cluster["id"])
    for _ in range(200):
        jobs.create(job_type="monitor", cluster_id=cluster["id"], parameters={"cluster_id": cluster["id"]},
                    trace_id=str(uuid.uuid4()))

    bare = db.connect()  # same server, same session settings, no app around it
    cur = bare.cursor()

    # The statements the repositories run, taken from them, so "bare" is the same SQL without the app.
    def bare_get_cluster() -> None:
        cur.execute(f"SELECT {cluster_sql._COLUMNS} FROM clusters WHERE id = %s", (cluster["id"],))
        cur.fetchone()
        cur.execute(cluster_sql._DROPLET_IDS.format(cond="= %s"), (cluster["id"],))
        cur.fetchall()
        bare.commit()

    def bare_list_jobs() -> None:
        cur.execute(job_sql.page_sql("created_at", "desc"), (50, 0))
        cur.fetchall()
        cur.execute("SELECT COALESCE(SUM(n), 0) AS n FROM row_counts WHERE kind = 'jobs' AND subject = 'default'")  # 0019
        cur.fetchone()
        bare.commit()

    def bare_create_cluster() -> None:
        new_id = f"cluster-{uuid.uuid4()}"
        cur.execute("INSERT INTO clusters (id, name, region, status) VALUES (%s, %s, %s, %s)",
                    (new_id, marker, "nyc3", "healthy"))
        cur.execute(f"SELECT {cluster_sql._COLUMNS} FROM clusters WHERE id = %s", (new_id,))
        cur.fetchone()
        bare.commit()

    from chalicelib.auth.keys import ApiKeyService

    # Authentication on, as everywhere but the local stage: an operator's key, cached after the first call.
    key_row, key = ApiKeyService().create(tenant="default", role="operator", name=marker, created_by="bench")
    # POST /clusters is limited per caller (clusters_write): the bench's caller is lifted for the run by a
    # platform admin, as an operator of the stack would, and restored at the end.
    platform_row, platform_key = ApiKeyService().create(tenant=get_settings().auth_platform_tenant, role="admin",
                                                        name=f"{marker}-platform", created_by="bench")
    create_body = json.dumps({"name": marker, "region": "nyc3"}).encode()
    results = []
    try:
        with Client(app) as client:
            http = client.http
            auth = {"X-API-Key": key}
            json_headers = {"Content-Type": "application/json", **auth}
            platform = {"Content-Type": "application/json", "X-API-Key": platform_key}
            caller = json.loads(http.get("/api/v1/auth/whoami", headers=auth).body)["principal"]
            limiter = {"name": "clusters_write", "scope_type": "user", "scope_id": caller}
            lifted = http.post("/api/v1/observability/ratelimit/config", headers=platform,
                               body=json.dumps({**limiter, "refill_rate": 1_000_000.0, "capacity": 1_000_000}).encode())
            assert lifted.status_code in (200, 201), lifted.body

            def app_get_cluster() -> None:
                assert http.get(f"/api/v1/clusters/{cluster['id']}", headers=auth).status_code == 200

            def app_list_jobs() -> None:
                assert http.get("/api/v1/jobs?page_size=50", headers=auth).status_code == 200

            def app_create_cluster() -> None:
                assert http.post("/api/v1/clusters", headers=json_headers, body=create_body).status_code == 201

            cases = [
                ("GET /api/v1/clusters/{id}", app_get_cluster, bare_get_cluster),
                ("GET /api/v1/jobs?page_size=50", app_list_jobs, bare_list_jobs),
                ("POST /api/v1/clusters", app_create_cluster, bare_create_cluster),
            ]
            for name, via_app, via_bare in cases:
                for _ in range(warmup):
                    via_app()
                    via_bare()
                app_ms, bare_ms, app_cpu, bare_cpu = [], [], [], []
                for _ in range(calls):  # interleaved, so drift (caches, background load) hits both alike
                    t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                    via_app()
                    t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
                    via_bare()
                    t2, c2 = time.perf_counter_ns(), time.thread_time_ns()
                    app_ms.append((t1 - t0) / 1e6)
                    bare_ms.append((t2 - t1) / 1e6)
                    app_cpu.append((c1 - c0) / 1e6)
                    bare_cpu.append((c2 - c1) / 1e6)
                results.append({
                    "route": name, "calls": calls,
                    "app_p50": statistics.median(app_ms), "app_p99": percentile(app_ms, 99),
                    "bare_p50": statistics.median(bare_ms), "bare_p99": percentile(bare_ms, 99),
                    # CPU time of this thread: what the app itself spends, unaffected by waiting on the
                    # server or for a core on a busy machine.
                    "app_cpu_p50": statistics.median(app_cpu), "bare_cpu_p50": statistics.median(bare_cpu),
                })
            http.request("DELETE", "/api/v1/observability/ratelimit/config", headers=platform,
                         body=json.dumps(limiter).encode())
    finally:
        cur.close()
        bare.close()
        with db.transaction() as c:
            c.execute("SELECT id FROM clusters WHERE name = %s", (marker,))
            ids = [row["id"] for row in c.fetchall()]
        for cluster_id in ids:
            clusters.delete(cluster_id)
        with db.transaction() as c:
            c.execute("DELETE FROM api_keys WHERE id IN (%s, %s)", (key_row["id"], platform_row["id"]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    # Not the test database: test runs truncate it, which would pull the rows out from under a run.
    parser.add_argument("--db", default="clustergenie", help="database to use (the rows the bench adds are removed)")
    parser.add_argument("--log-level", default="WARNING",
                        help="app log level; INFO adds one JSON line per POST to the timing")
    args = parser.parse_args()
    if args.calls < 2000:
        parser.error("--calls must be at least 2000")
    load_stack_env(args.db, args.log_level)
    results = run(args.calls, args.warmup)
    load = os.getloadavg()[0]
    header = f"{'route':30} {'calls':>5} {'app p50':>8} {'bare p50':>8} {'added':>7} {'ratio':>6} " \
             f"{'app p99':>8} {'bare p99':>8} {'added':>7} {'cpu app':>8} {'cpu bare':>8} {'added':>7}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['route']:30} {r['calls']:>5} {r['app_p50']:>8.3f} {r['bare_p50']:>8.3f} "
              f"{r['app_p50'] - r['bare_p50']:>7.3f} {r['app_p50'] / r['bare_p50']:>5.2f}x "
              f"{r['app_p99']:>8.3f} {r['bare_p99']:>8.3f} {r['app_p99'] - r['bare_p99']:>7.3f} "
              f"{r['app_cpu_p50']:>8.3f} {r['bare_cpu_p50']:>8.3f} {r['app_cpu_p50'] - r['bare_cpu_p50']:>7.3f}")
    print(f"(milliseconds, wall clock unless 'cpu' (this thread's CPU time, p50); 'added' = app minus bare SQL; "
          f"goal: added p50 < 1 ms; 1-min load average during the run: {load:.2f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
