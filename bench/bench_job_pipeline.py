"""Job pipeline throughput on LocalStack: the front (POST /jobs), the drain of a backlog, and SQS's own rate.

    .venv/bin/python bench/bench_job_pipeline.py [--jobs 1000] [--threads 8] [--timeout 300] [--steady 100] [--front-only | --no-front]

Needs `./dev up` (the deployed stack; `stack.json` and `stack.env` under CG_STATE_DIR). Only 127.0.0.1.

1. Front (the API function's environments started first by a few unmeasured rounds, `warm_api`; each phase begins
   once the stack is quiet: `bench/quiescence.py`): `--jobs` POSTs of the no-op route `POST /api/v1/hello`, then `--jobs` provision jobs POSTed through
   the same API Gateway by `--threads` threads (each job its own X-User-ID, so the per-caller jobs_create
   limiter does not throttle the bench), spread over 10 clusters whose quotas (and their tenant's) the bench
   raises for the run and restores afterwards. The job worker's event source mapping is disabled meanwhile,
   so the jobs wait in SQS: a backlog of `--jobs`.
2. Drain: the mapping is enabled; throughput is jobs / (last `completed_at` - the moment it was enabled).
   Completion is read from MariaDB; every job must be `completed` with exactly one droplet of its own
   (its result's droplet id) and no other droplet in the clusters. Latency queue-to-completed is
   `completed_at - created_at` of each job of the steady phase (3): `--steady` jobs POSTed at a fixed
   pace with the mapping running, so it is the pipeline's latency, not the backlog's age.
3. Ceiling: on a temporary queue, `--jobs` messages sent (batches of 10), received (batches of 10, long
   poll) and deleted (batches of 10) by the same number of threads: SQS's own rate on the same LocalStack,
   messages / (last delete - start). The receivers' last, empty long polls (1 s) come after the span and are
   reported apart (`idle_tail_s`), as the drain's span ends at its last completed job (until 2026-12-03 they
   were counted in the span, which understated SQS's rate: docs/benchmarks.md, ninth round).

`--front-only`: phase 1 alone (the backlog is then drained without being measured, and SQS's ceiling is not run),
with each route's CPU per request by process, for work on the front.

`--no-front`: the jobs of phases 1 and 2 are queued from the bench's own process (`JobService.submit` against the
stack's MariaDB and queue: the same row, event and message as POST /jobs) and the front is not measured; for a
loaded machine whose API Gateway path times out before the backlog is complete. The drain is measured the same way.

Everything it creates (clusters with their jobs and droplets, quota rows, the temporary queue) is deleted
at the end, and the mapping is left enabled.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import os
import pathlib
import statistics
import sys
import time
import urllib.error
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # devstack, as the other benches

import cpu_accounting  # noqa: E402 - bench/ (the script's own directory) is on sys.path
from chalicelib.aws import keep_connections_alive  # noqa: E402
from devstack.config import load_stack_env  # noqa: E402
from quiescence import wait_until_quiet  # noqa: E402
STATE = pathlib.Path(os.environ.get("CG_STATE_DIR", ROOT / ".local"))
RAISED_QUOTAS = {"droplets": 100_000, "replicas": 100_000, "concurrent_jobs": 100_000}


def call(url: str, body: dict, user: str, method: str = "POST") -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json", "X-User-ID": user})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())




# MariaDB's own counters around the drain: every statement and commit the pipeline made per job, downstream
# consumers included (the event handler's ledger, the log consumer's rows), whoever made them.
SERVER_COUNTERS = ("Questions", "Com_commit", "Com_select", "Com_insert", "Com_update", "Com_delete",
                   "Innodb_data_fsyncs")


def server_counters(db) -> dict[str, int]:
    with db.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN %s", (SERVER_COUNTERS,))
        return {row["Variable_name"]: int(row["Value"]) for row in cur.fetchall()}


def per_job(before: dict[str, int], after: dict[str, int], jobs: int) -> dict[str, float]:
    return {name: round((after[name] - before[name]) / jobs, 2) for name in SERVER_COUNTERS}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def utc_seconds(moment: dt.datetime) -> float:
    return moment.replace(tzinfo=dt.timezone.utc).timestamp()


def rate(threads: int, n: int, one) -> float:
    """Calls of `one(i)` per second, i in range(n), over `threads` threads."""
    started = time.perf_counter()
    with cf.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n)))
    return n / (time.perf_counter() - started)


def warm_api(api: str, threads: int, user: str, rounds: int = 3) -> None:
    """Start the API function's environments before the front is measured: `rounds` of `threads` concurrent
    no-op requests, and as many `POST /jobs` that fail validation (400: the job route's code loads, no job is
    made). Without this the first front run after a deploy timed up to `threads` cold starts in its no-op phase
    (13.8 ms of API CPU per no-op request against 1.7-2.0 warm) and flattered the ratio (0.695 against 0.49-0.57)."""
    def one(i: int) -> None:
        call(f"{api}/hello", {"name": f"warm-{i}"}, f"{user}-warm-{i}")
        try:
            call(f"{api}/jobs", {"type": "provision", "parameters": {}}, f"{user}-warm-{i}")
        except urllib.error.HTTPError as exc:
            if exc.code != 400:
                raise

    for _ in range(rounds):
        with cf.ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(threads)))


def mapping_of(awslambda, function: str) -> str:
    [mapping] = awslambda.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    return mapping["UUID"]


def set_mapping(awslambda, uuid_: str, enabled: bool) -> None:
    awslambda.update_event_source_mapping(UUID=uuid_, Enabled=enabled)
    want = "Enabled" if enabled else "Disabled"
    deadline = time.monotonic() + 60
    while awslambda.get_event_source_mapping(UUID=uuid_)["State"] != want:
        if time.monotonic() > deadline:
            raise SystemExit(f"event source mapping {uuid_} did not become {want}")
        time.sleep(0.2)


def finished(db, clusters: list[str]) -> dict[str, dict]:
    with db.cursor() as cur:
        cur.execute("SELECT id, status, created_at, started_at, completed_at, "
                    "JSON_VALUE(result, '$.droplet_id') AS droplet_id "
                    "FROM jobs WHERE cluster_id IN %s AND status IN ('completed', 'failed')", (clusters,))
        return {r["id"]: r for r in cur.fetchall()}


def wait_for(db, clusters: list[str], ids: list[str], timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    rows: dict[str, dict] = {}
    while time.monotonic() < deadline:
        rows = finished(db, clusters)
        if all(i in rows for i in ids):
            break
        time.sleep(0.5)
    return rows


def droplet_check(db, clusters: list[str], rows: dict[str, dict]) -> dict:
    """One droplet per provision job, its own: none missing, none doubled, none unaccounted for."""
    with db.cursor() as cur:
        cur.execute("SELECT id FROM droplets WHERE cluster_id IN %s", (clusters,))
        droplets = [r["id"] for r in cur.fetchall()]
    claimed = [r["droplet_id"] for r in rows.values() if r["status"] == "completed"]
    return {"droplets": len(droplets), "jobs_with_their_droplet": len(set(claimed) & set(droplets)),
            "droplets_claimed_twice": len(claimed) - len(set(claimed)),
            "droplets_of_no_job": len(set(droplets) - set(claimed))}


def raise_quotas(api: str, db, clusters: list[str], tenant: str, user: str) -> list[dict]:
    """The bench's clusters and their tenant may hold the whole backlog; returns the tenant's rows to restore."""
    with db.cursor() as cur:
        cur.execute("SELECT scope_type, scope_id, limit_name, value FROM quotas WHERE scope_type = 'tenant' "
                    "AND scope_id = %s", (tenant,))
        saved = list(cur.fetchall())
    call(f"{api}/quotas", {"tenant_id": tenant, "limits": RAISED_QUOTAS}, user, "PUT")
    for cluster_id in clusters:
        call(f"{api}/quotas", {"cluster_id": cluster_id, "limits": RAISED_QUOTAS}, user, "PUT")
    return saved


def restore_quotas(db, clusters: list[str], tenant: str, saved: list[dict]) -> None:
    with db.cursor() as cur:
        cur.execute("DELETE FROM quotas WHERE scope_type = 'cluster' AND scope_id IN %s", (clusters,))
        cur.execute("DELETE FROM quotas WHERE scope_type = 'tenant' AND scope_id = %s", (tenant,))
        for row in saved:
            cur.execute("INSERT INTO quotas (scope_type, scope_id, limit_name, value) VALUES (%s, %s, %s, %s)",
                        (row["scope_type"], row["scope_id"], row["limit_name"], row["value"]))


BENCH_LIMITERS = ("hello", "jobs_create")  # the two routes compared: both limited per caller, both lifted


def lift_limiters(api: str, user: str) -> str:
    """The bench's caller (its API key) may send both routes as fast as it can; returns the caller's id."""
    caller = call_get(f"{api}/auth/whoami", user)["principal"]
    for name in BENCH_LIMITERS:
        call(f"{api}/observability/ratelimit/config", {"name": name, "scope_type": "user", "scope_id": caller,
                                                       "refill_rate": 1_000_000.0, "capacity": 1_000_000}, user)
    return caller


def restore_limiters(api: str, user: str, caller: str) -> None:
    for name in BENCH_LIMITERS:
        call(f"{api}/observability/ratelimit/config", {"name": name, "scope_type": "user", "scope_id": caller},
             user, "DELETE")


def in_process_submit(stack: dict):
    """`submit(cluster_id)` -> job id: a provision job queued as POST /jobs queues it (`JobService.submit`: the row,
    its `job_requested` event, the SQS message on the stack's queue), from this process instead of through API
    Gateway (`--no-front`: the drain measured when the loaded machine's API Gateway path times out)."""
    from devstack.config import load_stack_env

    load_stack_env(STATE)
    os.environ["CG_JOBS_QUEUE"] = stack["queues"]["jobs"].rstrip("/").rsplit("/", 1)[1]
    os.environ.setdefault("CG_LOG_LEVEL", "WARNING")
    from chalicelib.services.jobs import JobService

    service = JobService()
    return lambda cluster_id: service.submit("provision", cluster_id, {}).id


def bench_pipeline(stack: dict, db, awslambda, jobs: int, threads: int, timeout: float, steady: int,
                   front: bool = True, drain_measured: bool = True) -> dict:
    api = stack["api_url"].rstrip("/") + "/api/v1"
    run = uuid.uuid4().hex[:8]
    admin = f"bench-{run}"
    clusters = [call(f"{api}/clusters", {"name": f"bench-{run}-{i}", "region": "nyc3"}, admin)["cluster"]
                for i in range(10)]
    tenant = call_quota_scope(api, admin)
    clusters = [c["id"] for c in clusters]
    saved = raise_quotas(api, db, clusters, tenant, admin)
    caller = lift_limiters(api, admin)
    mapping = mapping_of(awslambda, stack["functions"]["job_worker"])
    try:
        set_mapping(awslambda, mapping, False)
        ids: list[str] = []
        submit = None if front else in_process_submit(stack)
        if front:
            warm_api(api, threads, admin)
            quiet = {"noop": wait_until_quiet(STATE)}
            cpu_before = cpu_accounting.snapshot(STATE)
            noop_rate = rate(threads, jobs, lambda i: call(f"{api}/hello", {"name": f"bench-{i}"}, f"{admin}-{i}"))
            noop_cpu = cpu_accounting.delta(cpu_before, cpu_accounting.snapshot(STATE))
            quiet["post_jobs"] = wait_until_quiet(STATE)
            cpu_before = cpu_accounting.snapshot(STATE)
            jobs_rate = rate(threads, jobs, lambda i: ids.append(call(
                f"{api}/jobs", {"type": "provision", "parameters": {"cluster_id": clusters[i % 10]}}, f"{admin}-{i}")["job"]["id"]))
            jobs_cpu = cpu_accounting.delta(cpu_before, cpu_accounting.snapshot(STATE))
            front_figures = {"requests": jobs, "threads": threads, "noop_per_s": round(noop_rate, 1),
                             "post_jobs_per_s": round(jobs_rate, 1), "ratio": round(jobs_rate / noop_rate, 3),
                             "noop_cpu_ms_per_request": cpu_accounting.per_unit_ms(noop_cpu, jobs),
                             "post_jobs_cpu_ms_per_request": cpu_accounting.per_unit_ms(jobs_cpu, jobs),
                             "began_quiet": quiet}
            print(json.dumps({"front": front_figures}), flush=True)
        else:
            ids = [submit(clusters[i % 10]) for i in range(jobs)]
        drain_quiet = wait_until_quiet(STATE)
        cpu_before = cpu_accounting.snapshot(STATE)
        server_before = server_counters(db)
        set_mapping(awslambda, mapping, True)
        drain_start = time.time()
        rows = wait_for(db, clusters, ids, timeout)
        if not drain_measured:  # --front-only: the backlog is drained (so the clusters can go) and not measured
            return {"front": front_figures, "drain": None, "steady": None, "exactly_once": None}
        drain_cpu = cpu_accounting.delta(cpu_before, cpu_accounting.snapshot(STATE))
        server_per_job = per_job(server_before, server_counters(db), jobs)
        ends = [utc_seconds(r["completed_at"]) for i, r in rows.items() if i in ids and r["status"] == "completed"]
        drain = {"backlog": jobs, "completed": len(ends),
                 "failed": sum(rows[i]["status"] == "failed" for i in ids if i in rows),
                 "unfinished": sum(i not in rows for i in ids),
                 "seconds": round(max(ends) - drain_start, 2) if ends else None,
                 "jobs_per_s": round(len(ends) / (max(ends) - drain_start), 1) if ends else None,
                 # From enabling the mapping to the first job's start: how long the backlog waited for the first
                 # poll (counted in `seconds`, as the issue measures from the backlog).
                 "first_start_s": round(min(utc_seconds(rows[i]["started_at"]) for i in ids if rows.get(i)
                                            and rows[i]["started_at"]) - drain_start, 2) if ends else None,
                 "cpu_ms_per_job": cpu_accounting.per_unit_ms(drain_cpu, jobs),
                 "mariadb_per_job": server_per_job, "began_quiet": drain_quiet}
        steady_ids: list[str] = []
        for i in range(steady):  # one job every 50 ms: latency without a backlog
            steady_ids.append(call(f"{api}/jobs", {"type": "provision", "parameters": {"cluster_id": clusters[i % 10]}},
                                   f"{admin}-s{i}")["job"]["id"] if front else submit(clusters[i % 10]))
            time.sleep(0.05)
        rows = wait_for(db, clusters, ids + steady_ids, timeout)
        with db.cursor() as cur:
            cur.execute("SELECT id, TIMESTAMPDIFF(MICROSECOND, created_at, completed_at) / 1e6 AS s FROM jobs "
                        "WHERE id IN %s AND status = 'completed'", (steady_ids,))
            latencies = [float(r["s"]) for r in cur.fetchall()]
        return {
            "front": front_figures if front else None,
            "drain": drain,
            "steady": {"jobs": steady, "completed": len(latencies),
                       "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
                       "latency_p99_s": round(percentile(latencies, 99), 3) if latencies else None},
            "exactly_once": droplet_check(db, clusters, rows),
        }
    finally:
        set_mapping(awslambda, mapping, True)
        restore_limiters(api, admin, caller)
        restore_quotas(db, clusters, tenant, saved)
        with db.cursor() as cur:
            cur.execute("DELETE FROM clusters WHERE id IN %s", (clusters,))


def call_get(url: str, user: str) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"X-User-ID": user}), timeout=60) as response:
        return json.loads(response.read())


def call_quota_scope(api: str, user: str) -> str:
    """The caller's tenant, as the quotas route names it (`tenant:<id>`)."""
    return call_get(f"{api}/quotas", user)["scope"].split(":", 1)[1]


def bench_sqs(sqs, messages: int, threads: int, timeout: float) -> dict:
    url = sqs.create_queue(QueueName=f"clustergenie-bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    body = json.dumps({"job_id": f"job-{uuid.uuid4()}", "trace_id": uuid.uuid4().hex})
    try:
        quiet = wait_until_quiet(STATE)
        cpu_before = cpu_accounting.snapshot(STATE)
        start = time.time()
        deadline = time.monotonic() + timeout

        def send(batch: int) -> None:
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i in range(10)])

        def drain(_: int) -> tuple[int, float]:
            """(messages handled, when this receiver deleted its last batch)."""
            handled, last_delete = 0, start
            while time.monotonic() < deadline:
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
                if not got:  # this empty poll waited its 1 s: after the span, as the drain ends at its last job
                    break
                sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
                handled, last_delete = handled + len(got), time.time()
            return handled, last_delete

        with cf.ThreadPoolExecutor(threads) as pool:
            senders = [pool.submit(send, b) for b in range(messages // 10)]
            receivers = [pool.submit(drain, t) for t in range(threads)]
            for f in senders:
                f.result()
            drained = [f.result() for f in receivers]
        finished = time.time()
        spent = cpu_accounting.delta(cpu_before, cpu_accounting.snapshot(STATE))
        handled = sum(n for n, _ in drained)
        last_delete = max(at for _, at in drained)  # the end of the measured span
        seconds = last_delete - start
        return {"messages": messages, "handled": handled, "seconds": round(seconds, 2),
                "idle_tail_s": round(finished - last_delete, 2),  # the receivers' last, empty polls: not counted
                "send_receive_delete_per_s": round(handled / seconds, 1),
                "cpu_ms_per_message": cpu_accounting.per_unit_ms(spent, max(1, handled)), "began_quiet": quiet}
    finally:
        sqs.delete_queue(QueueUrl=url)


def main() -> None:
    from devstack.apikeys import install_stack_credentials, read_admin_key
    from devstack.config import StackConfig

    install_stack_credentials(read_admin_key(StackConfig.from_env()))  # authentication is on (issue 13)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="the backlog (and the front's request count)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the jobs to finish")
    parser.add_argument("--steady", type=int, default=100, help="jobs of the latency phase")
    parser.add_argument("--no-front", dest="front", action="store_false",
                        help="queue the jobs in process (JobService.submit) instead of through API Gateway")
    parser.add_argument("--front-only", action="store_true",
                        help="measure only the front (phase 1); the backlog is drained unmeasured, no SQS ceiling")
    args = parser.parse_args()
    if args.front_only and not args.front:
        parser.error("--front-only measures the front: not with --no-front")

    import boto3
    import pymysql
    import pymysql.cursors

    stack = json.loads((STATE / "stack.json").read_text())
    if not stack["endpoint_url"].startswith("http://127.0.0.1:"):
        raise SystemExit("only a LocalStack on 127.0.0.1 is benchmarked")
    env = load_stack_env(STATE)
    db = pymysql.connect(host="127.0.0.1", port=int(env.get("CG_DB_PORT", "3306")), user="clustergenie",
                         password=env["CG_DB_PASSWORD"], database=env.get("CG_DB_NAME", "clustergenie"), autocommit=True,
                         cursorclass=pymysql.cursors.DictCursor)
    session = boto3.session.Session(region_name=stack.get("region", "us-east-1"), aws_access_key_id="test",
                                    aws_secret_access_key="test")
    # The ceiling's client asks for persistent connections, as the app's clients do (chalicelib/aws.py): the same
    # HTTP behaviour on both sides of the ratio.
    sqs = keep_connections_alive(session.client("sqs", endpoint_url=stack["endpoint_url"]))
    awslambda = session.client("lambda", endpoint_url=stack["endpoint_url"])
    print(f"load before: {os.getloadavg()}", flush=True)
    pipeline = bench_pipeline(stack, db, awslambda, args.jobs, args.threads, args.timeout, args.steady, args.front,
                              drain_measured=not args.front_only)
    print(json.dumps({"pipeline": pipeline}), flush=True)
    if args.front_only:
        print(f"POST /jobs / no-op route: {pipeline['front']['ratio']:.3f}   load after: {os.getloadavg()}")
        return
    ceiling = bench_sqs(sqs, args.jobs, args.threads, 120)
    print(json.dumps({"sqs_ceiling": ceiling}), flush=True)
    if pipeline["drain"]["jobs_per_s"]:
        front = f"{pipeline['front']['ratio']:.3f}" if pipeline["front"] else "(not measured)"
        print(f"drain / SQS ceiling: {pipeline['drain']['jobs_per_s'] / ceiling['send_receive_delete_per_s']:.3f}   "
              f"POST /jobs / no-op route: {front}   load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
