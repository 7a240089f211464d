"""The job worker's own cost per job, in process: provision jobs run by `job_worker.handle_batch` in SQS-sized
batches against the stack's real MariaDB, Redis and Kafka, with the round trips each job makes counted.

    .venv/bin/python bench/bench_job_worker.py [--jobs 200] [--batch 10] [--backlog 0] [--db clustergenie]

Needs `./dev up` (reads `stack.env`; only 127.0.0.1). The jobs are created through JobService (an in-memory
queue stands in for SQS, so the API and the queue are not measured here), then delivered as SQS events to the
worker's handler, which runs and completes them and relays their events to Kafka after each batch, as the
deployed function does. Printed: ms per job (wall clock of handle_batch / jobs), MariaDB statements and
commits per job, Redis commands per job. Clusters it creates are deleted at the end (with jobs and droplets).

`--backlog N` first gives the tenant N queued provision jobs (never run) and N live droplets in one more cluster,
with the tenant's droplet and concurrent-job quotas raised to 100,000 for the run (restored after): the usage
every quota check of the run counts, as a tenant with a backlog and raised quotas has (issue 16).
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
STATE = pathlib.Path(os.environ.get("CG_STATE_DIR", ROOT / ".local"))

import cpu_accounting  # noqa: E402 - bench/ (the script's own directory) is on sys.path


class Counter:
    """Counts MariaDB statements and commits and Redis commands (each one a round trip to its server)."""

    def __init__(self) -> None:
        self.sql = self.commits = self.redis = 0

    def install(self) -> None:
        import pymysql.connections
        import redis.client

        counter = self
        real_query, real_commit = pymysql.connections.Connection.query, pymysql.connections.Connection.commit
        real_execute = redis.client.Redis.execute_command
        real_pipeline = redis.client.Pipeline.execute

        def query(conn, sql, unbuffered=False):  # noqa: ANN001
            counter.sql += 1
            return real_query(conn, sql, unbuffered)

        def commit(conn):  # noqa: ANN001
            counter.commits += 1
            return real_commit(conn)

        def execute_command(client, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            counter.redis += 1
            return real_execute(client, *args, **kwargs)

        def pipeline_execute(pipe, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            counter.redis += 1
            return real_pipeline(pipe, *args, **kwargs)

        pymysql.connections.Connection.query = query
        pymysql.connections.Connection.commit = commit
        redis.client.Redis.execute_command = execute_command
        redis.client.Pipeline.execute = pipeline_execute

        # A script sent ahead and answered later (the event handler's job read models) is a round trip too; when it
        # falls back to the ordinary call, execute_command counts that instead.
        from chalicelib.redis_client import PendingScript

        real_result = PendingScript.result

        def result(pending):  # noqa: ANN001
            if pending._conn is not None:
                counter.redis += 1
            return real_result(pending)

        PendingScript.result = result


ROUND = 50


class Context:
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 25_000


def sqs_event(job_ids: list[str]) -> dict:
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": "bench", "body": json.dumps({"job_id": job_id, "trace_id": ""}),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "bench",
                       "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:bench", "awsRegion": "us-east-1"} for job_id in job_ids]}


class Backlog:
    """`n` queued provision jobs and `n` live droplets of the tenant in a cluster of their own, written in bulk (no
    job runs them), with the tenant's quotas raised so that the bench's own jobs still fit; `remove` undoes it all."""

    TENANT = "default"  # the bench's jobs are submitted outside a request: the default tenant's
    RAISED = {"droplets": 100_000, "concurrent_jobs": 100_000}

    def __init__(self, n: int) -> None:
        from chalicelib import db
        from chalicelib.repositories import ClusterRepository

        self.cluster = ClusterRepository().create(f"bench-worker-backlog-{uuid.uuid4().hex[:6]}", "nyc3")["id"]
        with db.transaction() as cur:
            cur.execute("SELECT limit_name, value FROM quotas WHERE scope_type = 'tenant' AND scope_id = %s",
                        (self.TENANT,))
            self.saved = {row["limit_name"]: row["value"] for row in cur.fetchall()}
            cur.executemany("INSERT INTO quotas (scope_type, scope_id, limit_name, value) VALUES ('tenant', %s, %s, %s) "
                            "ON DUPLICATE KEY UPDATE value = VALUES(value)",
                            [(self.TENANT, name, value) for name, value in self.RAISED.items()])
            cur.execute("INSERT INTO jobs (id, tenant_id, cluster_id, type, status, trace_id, parameters) "
                        "SELECT CONCAT(%s, '-j', seq), %s, %s, 'provision', 'queued', 'bench', '{}' "
                        f"FROM seq_1_to_{n}", (self.cluster, self.TENANT, self.cluster))
            cur.execute("INSERT INTO droplets (id, tenant_id, cluster_id, name, region, size, image, status) "
                        "SELECT CONCAT(%s, '-d', seq), %s, %s, 'backlog', 'nyc3', 's-1vcpu-1gb', 'ubuntu', 'active' "
                        f"FROM seq_1_to_{n}", (self.cluster, self.TENANT, self.cluster))

    def remove(self) -> None:
        from chalicelib import db
        from chalicelib.repositories import ClusterRepository

        ClusterRepository().delete(self.cluster)
        with db.transaction() as cur:
            cur.execute("DELETE FROM quotas WHERE scope_type = 'tenant' AND scope_id = %s AND limit_name IN %s",
                        (self.TENANT, tuple(self.RAISED)))
            cur.executemany("INSERT INTO quotas (scope_type, scope_id, limit_name, value) VALUES ('tenant', %s, %s, %s)",
                            [(self.TENANT, name, value) for name, value in self.saved.items() if name in self.RAISED])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--backlog", type=int, default=0,
                        help="queued jobs and live droplets the tenant has besides the bench's own")
    parser.add_argument("--db", default=None, help="the stack's database (CG_DB_NAME) unless given")
    args = parser.parse_args()
    from devstack.config import load_stack_env

    load_stack_env()
    if args.db:
        os.environ["CG_DB_NAME"] = args.db
    os.environ.setdefault("CG_ENVIRONMENT", "bench")
    # Log as the deployed worker does (INFO, every line also shipped to the logs topic: the template's defaults), so
    # its per-job figures include the lines' cost; until 2026-12-03 the bench ran at WARNING and left out about 1 ms
    # per job (docs/benchmarks.md, ninth round). The stdout copy goes to /dev/null: stdout is for the bench's result.
    os.environ.setdefault("CG_LOG_LEVEL", "INFO")
    os.environ.setdefault("CG_LOGS_TO_KAFKA", "1")
    if not os.environ.get("CG_DB_HOST", "127.0.0.1").startswith("127.0.0.1"):
        raise SystemExit("only a stack on 127.0.0.1 is benchmarked")

    import logging

    from chalicelib import db
    from chalicelib.functions import job_worker
    from chalicelib.jobs_queue import InMemoryJobQueue, set_job_queue
    from chalicelib.observability import logger
    from chalicelib.repositories import ClusterRepository
    from chalicelib.services.jobs import JobService

    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life

    set_job_queue(InMemoryJobQueue())
    repo = ClusterRepository()
    clusters = [repo.create(f"bench-worker-{uuid.uuid4().hex[:6]}-{n}", "nyc3")["id"] for n in range(10)]
    backlog = Backlog(args.backlog) if args.backlog else None
    try:
        service = JobService()
        counter = Counter()
        counter.install()
        per_batch = []
        seconds = cpu = 0.0
        servers = {"mariadb": 0.0, "redis": 0.0, "kafka": 0.0}
        worker = [0, 0, 0]  # statements, commits, Redis round trips of the worker alone
        # In rounds of 50 queued jobs: the clusters' and the tenant's concurrent_jobs quotas stay untouched.
        for first in range(0, args.jobs, ROUND):
            ids = [service.submit("provision", clusters[i % 10], {}).id for i in range(first, min(args.jobs, first + ROUND))]
            job_worker.relay_after_commit()  # the job_requested events out of the way: only the worker is counted
            before = (counter.sql, counter.commits, counter.redis)
            servers_before = cpu_accounting.snapshot(STATE)
            cpu_started = time.process_time()  # this process, every thread (the log shipper's and producers' too)
            started = time.perf_counter()
            for i in range(0, len(ids), args.batch):
                t0 = time.perf_counter()
                response = job_worker.handle_batch(sqs_event(ids[i:i + args.batch]), Context())
                per_batch.append((time.perf_counter() - t0) * 1000 / len(ids[i:i + args.batch]))
                assert response == {"batchItemFailures": []}, response
            seconds += time.perf_counter() - started
            cpu += time.process_time() - cpu_started
            spent = cpu_accounting.delta(servers_before, cpu_accounting.snapshot(STATE))
            for name in servers:
                servers[name] += spent.get(name, 0.0)
            worker[0] += counter.sql - before[0]
            worker[1] += counter.commits - before[1]
            worker[2] += counter.redis - before[2]
        rows = db.query("SELECT j.status, (SELECT COUNT(*) FROM droplets d WHERE d.cluster_id = j.cluster_id "
                        "AND d.id = JSON_VALUE(j.result, '$.droplet_id')) AS mine FROM jobs j WHERE j.cluster_id IN %s",
                        (clusters,))
        completed = sum(r["status"] == "completed" for r in rows)
        droplets = db.query_one("SELECT COUNT(*) AS n FROM droplets WHERE cluster_id IN %s", (clusters,))["n"]
        print(json.dumps({
            "jobs": args.jobs, "batch": args.batch, "completed": completed, "droplets": int(droplets),
            "jobs_with_their_droplet": sum(int(r["mine"]) == 1 for r in rows),
            "ms_per_job": round(seconds * 1000 / args.jobs, 2),
            "ms_per_job_batch_median": round(statistics.median(per_batch), 2),
            "jobs_per_s": round(args.jobs / seconds, 1),
            "cpu_ms_per_job": {"worker": round(cpu * 1000 / args.jobs, 2),
                               **{name: round(s * 1000 / args.jobs, 2) for name, s in servers.items()}},
            "sql_statements_per_job": round(worker[0] / args.jobs, 2),
            "commits_per_job": round(worker[1] / args.jobs, 2),
            "redis_round_trips_per_job": round(worker[2] / args.jobs, 2),
            "backlog": args.backlog,
            "load": os.getloadavg()[0],
        }))
    finally:
        for cluster_id in clusters:
            repo.delete(cluster_id)
        if backlog is not None:
            backlog.remove()


if __name__ == "__main__":
    main()
