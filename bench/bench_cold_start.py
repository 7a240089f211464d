"""Cold start of every function (issue 16): `import app`, and import plus first invocation, in fresh processes.

    .venv/bin/python bench/bench_cold_start.py [--runs 7] [--before /tmp/cs-before] [--functions api,job_worker]

1. Whole-process `python -c "import app"` against a bare Chalice app that imports boto3 (the baseline the
   issue names), interleaved run by run; medians and their ratio. With `--before TREE` (a checkout of an
   older commit, e.g. `git worktree add /tmp/cs-before b2c3ea4`), that tree's app is timed in the same runs.
2. For each function: a fresh interpreter imports app.py and invokes the function once through Chalice's
   handler (`app.app(event, context)` for the API, `app.<function>(event, context)` otherwise), on the same
   data for both trees; the time from before `import app` to the end of the invocation, median of `--runs`.
   The event handler's records carry the app's signature, as everything the app produces does, so they are
   applied (`--unsigned-events`: unsigned, so all are dead-lettered, which is what this bench measured until
   the records were signed).

The stack's real services are used (./dev up). The API runs with authentication off (the local stage), so
the first request's path is the same in both trees. Everything created is deleted at the end.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUNCTIONS = ("api", "job_worker", "event_handler", "metrics_exporter", "job_sweeper", "log_consumer", "autoscaler",
             "log_retention")
BARE_APP = '''from chalice import Chalice
import boto3

app = Chalice(app_name="bare")


@app.route("/")
def index():
    return {"hello": "world"}
'''
SCHEDULED = {"version": "0", "id": "bench", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "000000000000", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
             "resources": ["arn:aws:events:us-east-1:000000000000:rule/bench"], "detail": {}}

# --- the child: one fresh interpreter, one function ----------------------------------------------------


class Context:
    """The Lambda context fields the app and Powertools read."""

    def __init__(self, function: str) -> None:
        self.function_name = f"clustergenie-dev-{function}" if function != "api" else "clustergenie-dev"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 128
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = self.log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def invoke(app_module, function: str, event: dict):  # noqa: ANN001, ANN201
    context = Context(function)
    if function == "api":
        return app_module.app(event, context)
    return getattr(app_module, function)(event, context)


def child(function: str, events_file: str, repeat: int) -> None:
    """Runs in the tree under test (cwd); prints {"first_s", "rss_mb"} as JSON on its last line."""
    events = json.loads(pathlib.Path(events_file).read_text())[function]
    sys.path.insert(0, os.getcwd())
    started, cpu_started = time.perf_counter(), time.process_time()
    import app  # noqa: PLC0415 - the import is what is measured

    imported, cpu_imported = time.perf_counter(), time.process_time()
    result = invoke(app, function, events[0])
    first, cpu_first = time.perf_counter(), time.process_time()
    warm: list[float] = []
    warm_cpu: list[float] = []
    for i in range(1, repeat):
        call_started, call_cpu = time.perf_counter(), time.thread_time()
        invoke(app, function, events[i % len(events)])
        warm.append(time.perf_counter() - call_started)
        warm_cpu.append(time.thread_time() - call_cpu)
    from peak_memory import peak_rss_mb  # bench/, this script's directory

    rss_mb = peak_rss_mb()
    # A 5xx, or a batch with failed records, is not a successful invocation (the bench prints how many).
    ok = not (isinstance(result, dict) and (result.get("statusCode", 200) >= 500 or result.get("batchItemFailures")))
    warm.sort()
    warm_cpu.sort()
    print(json.dumps({"import_s": imported - started, "first_s": first - started, "rss_mb": rss_mb, "ok": ok,
                      "import_cpu_s": cpu_imported - cpu_started, "first_cpu_s": cpu_first - cpu_started,
                      "warm_p50_s": warm[len(warm) // 2] if warm else None,
                      "warm_cpu_p50_s": warm_cpu[len(warm_cpu) // 2] if warm_cpu else None,
                      "status": result.get("statusCode") if isinstance(result, dict) else None}))


# --- the parent: data, events, runs ----------------------------------------------------------------------

def load_stack_env() -> None:
    sys.path.insert(0, str(ROOT))
    from devstack.config import load_stack_env as read_stack_env

    read_stack_env()
    os.environ.setdefault("CG_LOG_LEVEL", "WARNING")
    # The local stage with authentication off: the first request takes the same path in both trees.
    os.environ["CG_ENVIRONMENT"] = "local"
    os.environ["CG_AUTH_ENABLED"] = "false"


def api_event(method: str, resource: str, path: str, params: dict | None = None, query: dict | None = None) -> dict:
    headers = {"host": "localhost", "accept": "application/json", "x-user-id": "bench"}
    return {"resource": resource, "path": path, "httpMethod": method, "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": query,
            "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
            "pathParameters": params, "stageVariables": None, "body": None, "isBase64Encoded": False,
            "requestContext": {"resourcePath": resource, "httpMethod": method, "path": path,
                               "requestId": str(uuid.uuid4()), "stage": "api",
                               "identity": {"sourceIp": "127.0.0.1"}}}


def sqs_event(job: dict) -> dict:
    body = json.dumps({"job_id": job["id"], "trace_id": job["trace_id"]}, separators=(",", ":"))
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": "bench", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {"job_type": {"stringValue": job["type"], "dataType": "String"}},
        "md5OfBody": "", "eventSource": "aws:sqs", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:clustergenie-jobs"}]}


def kafka_event(topic: str, partition: int, offset: int, values: list[tuple[str, dict]], signed: bool = False) -> dict:
    """The `aws:kafka` event the MSK mapping delivers (the bridge's shape), built without kafka-python. `signed`:
    each record carries the app's signature header (chalicelib/event_signing.py, the same module in both trees),
    as every record the app produces does, so the event handler applies it instead of dead-lettering it."""
    from chalicelib.event_signing import HEADER, sign

    records = []
    for i, (key, value) in enumerate(values):
        raw = json.dumps(value).encode()
        records.append({"topic": topic, "partition": partition, "offset": offset + i, "timestamp": 1_700_000_000_000,
                        "timestampType": "CREATE_TIME", "key": base64.b64encode(key.encode()).decode(),
                        "value": base64.b64encode(raw).decode(),
                        "headers": [{HEADER: list(sign(raw))}] if signed else []})
    return {"eventSource": "aws:kafka", "eventSourceArn": "arn:aws:kafka:us-east-1:000000000000:cluster/bench/1",
            "bootstrapServers": "127.0.0.1:19092", "records": {f"{topic}-{partition}": records}}


def telemetry(cluster_id: str, i: int) -> dict:
    return {"type": "telemetry", "job_id": None, "job_type": None, "cluster_id": cluster_id, "progress": None,
            "message": "", "timestamp": "2026-01-01T00:00:00Z", "trace_id": None, "correlation_id": None,
            "payload": {"cpu": 10 + i % 50, "memory": 20 + i % 40, "disk": 30 + i % 30}}


def log_line(job_id: str, i: int) -> dict:
    return {"level": "INFO", "message": f"bench line {i}", "service": "clustergenie", "function": "job_worker",
            "timestamp": "2026-01-01T00:00:00.000Z", "job_id": job_id}


class Data:
    """One cluster with droplets, queued jobs for the worker, and the events of every function."""

    def __init__(self, events_per_function: int, jobs: int, unsigned_events: bool = False) -> None:
        from chalicelib.repositories import ClusterRepository, DropletRepository, JobRepository

        self.marker = f"bench-{uuid.uuid4().hex[:8]}"
        self.cluster = ClusterRepository().create(self.marker, "nyc3")
        cid = self.cluster["id"]
        for i in range(3):
            DropletRepository().create(name=f"{self.marker}-{i}", region="nyc3", size="s-1vcpu-1gb",
                                       image="ubuntu-22-04-x64", provider="simulated", cluster_id=cid)
        self.jobs = [JobRepository().create(job_type="monitor", cluster_id=cid, parameters={"cluster_id": cid},
                                            trace_id=str(uuid.uuid4())) for _ in range(jobs)]
        self._next_job = 0
        self.per_function = events_per_function
        self.topic = f"bench-{self.marker}"
        self.unsigned_events = unsigned_events

    def events(self, function: str, count: int) -> list[dict]:
        cid = self.cluster["id"]
        if function == "api":
            routes = [api_event("GET", "/api/v1/clusters/{cluster_id}", f"/api/v1/clusters/{cid}",
                                {"cluster_id": cid}),
                      api_event("GET", "/api/v1/jobs", "/api/v1/jobs", None, {"page_size": "20"}),
                      api_event("GET", "/api/v1/metrics", "/api/v1/metrics", None, {"cluster_id": cid})]
            return [routes[i % len(routes)] for i in range(count)]
        if function == "job_worker":
            jobs = self.jobs[self._next_job:self._next_job + count]
            self._next_job += count
            return [sqs_event(job) for job in jobs]
        if function in ("event_handler", "log_consumer"):
            topic = f"{self.topic}-{function}-{uuid.uuid4().hex[:6]}"  # fresh offsets: nothing is a replay
            make = telemetry if function == "event_handler" else (lambda c, i: log_line(self.jobs[0]["id"], i))
            return [kafka_event(topic, 0, n * 10, [(cid, make(cid, n * 10 + i)) for i in range(10)],
                                signed=function == "event_handler" and not self.unsigned_events)
                    for n in range(count)]
        return [SCHEDULED] * count

    def delete(self) -> None:
        """The cluster and everything the functions made for it (its jobs, including scale jobs the event
        handler or the autoscaler started, their events and log lines, its droplets and metrics)."""
        from chalicelib import db

        cid = self.cluster["id"]
        with db.transaction() as cur:
            for table in ("job_events", "log_lines"):
                try:
                    cur.execute(f"DELETE FROM {table} WHERE job_id IN (SELECT id FROM jobs WHERE cluster_id = %s)",
                                (cid,))
                except Exception:  # noqa: BLE001 - a table another version does not have
                    pass
            for table in ("jobs", "metrics", "droplets", "autoscaling_state"):
                try:
                    cur.execute(f"DELETE FROM {table} WHERE cluster_id = %s", (cid,))
                except Exception:  # noqa: BLE001
                    pass
            cur.execute("DELETE FROM clusters WHERE id = %s", (cid,))


def run_child(tree: pathlib.Path, function: str, events_file: str, repeat: int = 1) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "0"}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, str(pathlib.Path(__file__).resolve()), "--child", function,
                          "--events-file", events_file, "--repeat", str(repeat)],
                         cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{function} in {tree} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {**result, "wall_s": wall}


def whole_process_import(tree: pathlib.Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of `python -c "import app"` in `tree`."""
    import resource

    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import app"], cwd=tree, env=env, check=True, timeout=120)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--before", type=pathlib.Path, help="a checkout of the commit to compare with")
    parser.add_argument("--functions", default=",".join(FUNCTIONS))
    parser.add_argument("--unsigned-events", action="store_true",
                        help="the event handler's records without the app's signature: it dead-letters them all "
                             "(what this bench measured before the records were signed)")
    parser.add_argument("--warm", type=int, default=0,
                        help="also: p50 of this many warm API requests per route and tree, 3 rounds interleaved")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--events-file", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.events_file, args.repeat)
        return

    load_stack_env()
    functions = [f for f in args.functions.split(",") if f]
    trees = {"after": ROOT, **({"before": args.before.resolve()} if args.before else {})}
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; runs: {args.runs}")

    # 1. whole-process import, interleaved with the bare app
    with tempfile.TemporaryDirectory() as bare_dir:
        bare = pathlib.Path(bare_dir)
        (bare / "app.py").write_text(BARE_APP)
        samples: dict[str, list[tuple[float, float]]] = {"bare": [], **{name: [] for name in trees}}
        for name, tree in [("bare", bare), *trees.items()]:  # warm the file cache and .pyc files
            whole_process_import(tree)
        for _ in range(args.runs):
            for name, tree in [("bare", bare), *trees.items()]:
                samples[name].append(whole_process_import(tree))
    wall = {name: median_ms([w for w, _ in runs]) for name, runs in samples.items()}
    cpu = {name: median_ms([c for _, c in runs]) for name, runs in samples.items()}
    print("\nwhole-process `import app`, median; ratio to a bare Chalice + boto3 app (wall clock, and CPU time)")
    for name in samples:
        print(f"  {name:8} {wall[name]:8.1f} ms  {wall[name] / wall['bare']:5.2f}x   "
              f"cpu {cpu[name]:8.1f} ms  {cpu[name] / cpu['bare']:5.2f}x")

    # 2. import + first invocation per function
    data = Data(args.runs, args.runs * len(trees) + 1, unsigned_events=args.unsigned_events)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            events_file = handle.name
        print("\nimport + first invocation, in process: median ms of the import and of import + invocation, wall "
              "clock; then the same total in CPU time (this process's user + system)")
        print(f"  {'function':18}" + "".join(f"{name + ' import':>15}{name + ' total':>14}" for name in trees)
              + ("   total after/before" if len(trees) == 2 else "")
              + "".join(f"{name + ' cpu':>12}" for name in trees) + ("   cpu after/before" if len(trees) == 2 else ""))
        for function in functions:
            results: dict[str, list[dict]] = {name: [] for name in trees}
            for _ in range(args.runs):
                for name, tree in trees.items():
                    pathlib.Path(events_file).write_text(json.dumps({function: data.events(function, 1)}))
                    results[name].append(run_child(tree, function, events_file))
            line = f"  {function:18}"
            totals, cpus, failures = {}, {}, ""
            for name in trees:
                totals[name] = median_ms([r["first_s"] for r in results[name]])
                cpus[name] = median_ms([r["first_cpu_s"] for r in results[name]])
                line += f"{median_ms([r['import_s'] for r in results[name]]):15.1f}{totals[name]:14.1f}"
                failed = [r for r in results[name] if not r["ok"]]
                if failed:
                    failures += f"  ({name}: {len(failed)} failed, e.g. status {failed[0]['status']})"
                statuses = sorted({r["status"] for r in results[name] if r["status"] is not None})
                if statuses and statuses != [200]:  # a 4xx is fast and not the path measured: say so
                    failures += f"  ({name}: HTTP {', '.join(map(str, statuses))})"
            if len(trees) == 2:
                line += f"   {totals['after'] / totals['before']:5.2f}x {1 - totals['after'] / totals['before']:+4.0%}"
            line += "".join(f"{cpus[name]:12.1f}" for name in trees)
            if len(trees) == 2:
                line += f"   {cpus['after'] / cpus['before']:5.2f}x {1 - cpus['after'] / cpus['before']:+4.0%}"
            print(line + failures, flush=True)
        if args.warm:
            warm_api(data, trees, events_file, args.warm)
        os.unlink(events_file)
    finally:
        data.delete()


def warm_api(data: Data, trees: dict[str, pathlib.Path], events_file: str, calls: int) -> None:
    """p50 of warm in-process requests per route (as bench_api.py, through Chalice's handler with the whole
    middleware stack), each tree in its own process, three rounds interleaved; the median of the rounds."""
    routes = data.events("api", 3)
    print(f"\nwarm API requests, in process (p50 of {calls} per route and round, median of 3 rounds, ms)")
    print("  (wall clock, and this thread's CPU time: under load the CPU time is the steadier figure)")
    p50s: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(3):
        for event in routes:
            route = f"{event['httpMethod']} {event['resource']}"
            for name, tree in trees.items():
                pathlib.Path(events_file).write_text(json.dumps({"api": [event]}))
                result = run_child(tree, "api", events_file, repeat=calls + 1)
                p50s.setdefault((route, name, "wall"), []).append(result["warm_p50_s"] * 1000)
                p50s.setdefault((route, name, "cpu"), []).append(result["warm_cpu_p50_s"] * 1000)
    for route in dict.fromkeys(r for r, _, _ in p50s):
        line = f"  {route:36}"
        for kind in ("wall", "cpu"):
            values = {name: statistics.median(p50s[(route, name, kind)]) for name in trees}
            line += f"{kind}: " + "".join(f"{name} {value:7.3f}  " for name, value in values.items())
            if len(values) == 2:
                line += f"diff {values['after'] - values['before']:+.3f}   "
        print(line)


if __name__ == "__main__":
    main()
