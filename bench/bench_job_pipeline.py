"""Job pipeline throughput on LocalStack: POST /api/v1/jobs -> SQS -> job_worker -> `completed`, and the ceiling.

    .venv/bin/python bench/bench_job_pipeline.py [--jobs 500] [--threads 8] [--timeout 300] [--sqs-messages 500]

Needs `./dev up` (the deployed stack; `stack.json` and `stack.env` under CG_STATE_DIR). Only 127.0.0.1.

1. Pipeline: `--jobs` provision jobs POSTed through API Gateway by `--threads` threads (each job its own
   X-User-ID, so the per-caller jobs_create limiter does not throttle the bench), spread over 10 clusters.
   Each job's end-to-end latency is its `completed_at` (MariaDB, same host clock) minus the moment its POST
   was sent; throughput is jobs / (last completed_at - first POST). Completion is read from MariaDB.
2. Ceiling: on a temporary queue, the same number of messages sent (batches of 10), received (batches of
   10, long poll) and deleted (batches of 10) by the same number of threads: SQS's own rate on LocalStack.

Everything it creates (clusters with their jobs and droplets, the temporary queue) is deleted at the end.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import os
import pathlib
import statistics
import time
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
STATE = pathlib.Path(os.environ.get("CG_STATE_DIR", ROOT / ".local"))


def stack_env() -> dict[str, str]:
    env = {}
    for line in (STATE / "stack.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key] = value.strip().strip('"').strip("'")
    return env


def post(url: str, body: dict, user: str) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-User-ID": user})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def bench_pipeline(stack: dict, db, jobs: int, threads: int, timeout: float) -> dict:
    api = stack["api_url"].rstrip("/") + "/api/v1"
    run = uuid.uuid4().hex[:8]
    clusters = [post(f"{api}/clusters", {"name": f"bench-{run}-{i}", "region": "nyc3"}, f"bench-{run}")["cluster"]["id"]
                for i in range(10)]
    sent: dict[str, float] = {}

    def submit(i: int) -> None:
        t0 = time.time()
        job = post(f"{api}/jobs", {"type": "provision", "parameters": {"cluster_id": clusters[i % 10]}},
                   f"bench-{run}-{i}")["job"]
        sent[job["id"]] = t0

    start = time.time()
    try:
        with cf.ThreadPoolExecutor(threads) as pool:
            list(pool.map(submit, range(jobs)))
        posted = time.time()
        ids = list(sent)
        rows: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with db.cursor() as cur:
                cur.execute("SELECT id, status, completed_at FROM jobs WHERE cluster_id IN %s "
                            "AND status IN ('completed', 'failed')", (clusters,))
                rows = {r["id"]: r for r in cur.fetchall()}
            if len(rows) >= len(ids):
                break
            time.sleep(0.5)
        done = [r for r in rows.values() if r["status"] == "completed"]
        ends = [r["completed_at"].replace(tzinfo=dt.timezone.utc).timestamp() for r in done]
        latencies = [e - sent[r["id"]] for r, e in zip(done, ends)]
        with db.cursor() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM droplets WHERE cluster_id IN %s", (clusters,))
            droplets = cur.fetchone()["n"]
        return {
            "jobs": jobs, "threads": threads, "completed": len(done),
            "failed": sum(r["status"] == "failed" for r in rows.values()), "unfinished": len(ids) - len(rows),
            "droplets": droplets, "post_seconds": round(posted - start, 2),
            "post_rate_per_s": round(jobs / (posted - start), 1),
            "pipeline_seconds": round(max(ends) - start, 2) if ends else None,
            "jobs_per_s": round(len(done) / (max(ends) - start), 1) if ends else None,
            "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
            "latency_p99_s": round(percentile(latencies, 99), 3) if latencies else None,
            "latency_max_s": round(max(latencies), 3) if latencies else None,
        }
    finally:
        with db.cursor() as cur:
            cur.execute("DELETE FROM clusters WHERE id IN %s", (clusters,))


def bench_sqs(sqs, messages: int, threads: int, timeout: float) -> dict:
    url = sqs.create_queue(QueueName=f"clustergenie-bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    body = json.dumps({"job_id": f"job-{uuid.uuid4()}", "trace_id": uuid.uuid4().hex})
    try:
        start = time.time()
        deadline = time.monotonic() + timeout

        def send(batch: int) -> None:
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i in range(10)])

        def drain(_: int) -> int:
            handled = 0
            while time.monotonic() < deadline:
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
                if not got:
                    return handled
                sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
                handled += len(got)
            return handled

        with cf.ThreadPoolExecutor(threads) as pool:
            senders = [pool.submit(send, b) for b in range(messages // 10)]
            receivers = [pool.submit(drain, t) for t in range(threads)]
            for f in senders:
                f.result()
            handled = sum(f.result() for f in receivers)
        seconds = time.time() - start
        return {"messages": messages, "handled": handled, "seconds": round(seconds, 2),
                "send_receive_delete_per_s": round(handled / seconds, 1)}
    finally:
        sqs.delete_queue(QueueUrl=url)


def main() -> None:
    from devstack.apikeys import install_stack_credentials, read_admin_key
    from devstack.config import StackConfig

    install_stack_credentials(read_admin_key(StackConfig.from_env()))  # authentication is on (issue 13)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the jobs to finish")
    parser.add_argument("--sqs-messages", type=int, default=500)
    args = parser.parse_args()

    import boto3
    import pymysql
    import pymysql.cursors

    stack = json.loads((STATE / "stack.json").read_text())
    if not stack["endpoint_url"].startswith("http://127.0.0.1:"):
        raise SystemExit("only a LocalStack on 127.0.0.1 is benchmarked")
    env = stack_env()
    db = pymysql.connect(host="127.0.0.1", port=int(env.get("CG_DB_PORT", "3306")), user="clustergenie",
                         password=env["CG_DB_PASSWORD"], database="clustergenie", autocommit=True,
                         cursorclass=pymysql.cursors.DictCursor)
    sqs = boto3.session.Session(region_name=stack.get("region", "us-east-1"), aws_access_key_id="test",
                                aws_secret_access_key="test").client("sqs", endpoint_url=stack["endpoint_url"])
    print(json.dumps({"pipeline": bench_pipeline(stack, db, args.jobs, args.threads, args.timeout)}), flush=True)
    print(json.dumps({"sqs_ceiling": bench_sqs(sqs, args.sqs_messages, args.threads, 120)}), flush=True)


if __name__ == "__main__":
    main()
