"""What metrics and logging add to a warm API call: the same call with them on and off, in the same run.

    .venv/bin/python bench/bench_observability_overhead.py [--calls 3000] [--chunk 100] [--db clustergenie_test]

"On" is the deployed configuration: the metrics middlewares (request timing by route and status, and
the end-of-invocation flush to Redis: one MULTI/EXEC round trip), the log-context middlewares
(function, request_id, trace/job/cluster ids) and the Kafka log shipper on the logger (real broker).
"Off" removes exactly those from the same app object (`CG_METRICS_ENABLED=0`, shipper detached,
middlewares filtered out, and the logger silenced, so not even the stdout JSON line is formatted), so
routing, the error mapping, the rate limiter and the route are the same. "Logs" is everything logging
costs: the stdout line (written to /dev/null), the correlation keys and the Kafka shipper.
Calls rotate between off, metrics only, logs only and both, in chunks of `--chunk`, so drift in the
machine's load hits every mode.

Wall-clock times carry the machine's load; the request thread's CPU time (`time.thread_time()`) does
not include time spent waiting (Redis round trip, descheduling), so both are printed.

Routes: GET /api/v1/clusters/{id} (writes no log line at INFO) and POST /api/v1/droplets (one INFO line,
so one line shipped). Also timed: one `logger.info` with and without the shipper.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import statistics
import sys
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OURS = {"flush_metrics", "http_metrics", "bind_function", "bind_request"}


def load_stack_env(db_name: str) -> None:
    from devstack.config import load_stack_env as read_stack_env

    read_stack_env()
    os.environ["CG_ENVIRONMENT"] = "bench"
    os.environ["CG_DB_NAME"] = db_name
    os.environ["CG_LOGS_TO_KAFKA"] = "1"
    os.environ["CG_METRICS_ENABLED"] = "1"
    os.environ["CG_LOGS_TOPIC"] = "logs.bench"  # not the topic the log consumer reads
    os.environ["CG_REDIS_URL"] = os.environ["CG_REDIS_URL"].rsplit("/", 1)[0] + "/13"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--db", default="clustergenie_test", help="a migrated database (the fast tier's by default)")
    args = parser.parse_args()
    load_stack_env(args.db)

    from chalice.test import Client

    from app import app
    from chalicelib import settings as settings_module
    from chalicelib.jobs_queue import InMemoryJobQueue, set_job_queue

    # POST /droplets also queues the droplet's provision job (issue 12): kept in memory, so the bench measures
    # the API, not SQS.
    set_job_queue(InMemoryJobQueue())
    from chalicelib.logs import shipping
    from chalicelib.observability import logger

    # stdout JSON lines go to /dev/null: the terminal is not what we measure (same for both sides).
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, shipping.KafkaLogShipper):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    shipper = shipping.get_shipper()
    assert shipper is not None
    on_settings = settings_module.get_settings()
    off_settings = on_settings.model_copy(update={"metrics_enabled": False})
    all_middleware = list(app.middleware_handlers)
    assert {getattr(f, "__name__", "") for f, _ in all_middleware} >= OURS

    metric_mw = {"flush_metrics", "http_metrics"}
    log_mw = {"bind_function", "bind_request"}

    def switch(mode: str) -> None:
        """off | metrics (metrics middlewares + flush) | logs (log context + Kafka shipper) | on (both)."""
        metrics_on, logs_on = mode in ("metrics", "on"), mode in ("logs", "on")
        settings_module.reset_settings()
        os.environ["CG_METRICS_ENABLED"] = "1" if metrics_on else "0"
        assert settings_module.get_settings().metrics_enabled is metrics_on
        drop = (set() if metrics_on else metric_mw) | (set() if logs_on else log_mw)
        app.middleware_handlers[:] = [(f, t) for f, t in all_middleware if getattr(f, "__name__", "") not in drop]
        if logs_on and shipper not in logger.handlers:
            logger.addHandler(shipper)
        if not logs_on:
            logger.removeHandler(shipper)
        logging.getLogger(logger.name).disabled = not logs_on  # the stdlib logger under Powertools

    with Client(app) as client:
        headers = {"Content-Type": "application/json"}
        created = client.http.post("/api/v1/clusters", headers=headers,
                                   body=json.dumps({"name": "bench-obs", "region": "nyc3"}))
        cluster_id = json.loads(created.body)["cluster"]["id"]
        droplet_body = json.dumps({"name": "b", "region": "nyc3", "size": "s-1vcpu-1gb", "cluster_id": cluster_id})
        routes = {
            "GET /api/v1/clusters/{id}": lambda: client.http.get(f"/api/v1/clusters/{cluster_id}"),
            "POST /api/v1/droplets": lambda: client.http.post("/api/v1/droplets", headers=headers, body=droplet_body),
        }
        try:
            modes = ("off", "metrics", "logs", "on")
            for name, call in routes.items():
                times: dict[str, list[float]] = {mode: [] for mode in modes}
                cpu: dict[str, list[float]] = {mode: [] for mode in modes}
                for mode in modes:  # warm every path
                    switch(mode)
                    for _ in range(50):
                        call()
                done = 0
                while done < args.calls:
                    for mode in modes:
                        switch(mode)
                        for _ in range(args.chunk):
                            started, started_cpu = time.perf_counter(), time.thread_time()
                            response = call()
                            times[mode].append(time.perf_counter() - started)
                            cpu[mode].append(time.thread_time() - started_cpu)
                            assert response.status_code < 300, response.body
                    done += args.chunk
                off_p50, off_cpu = statistics.median(times["off"]) * 1e3, statistics.median(cpu["off"]) * 1e3
                print(f"{name}: off wall p50 {off_p50:.3f} ms p99 {percentile(times['off'], 99) * 1e3:.3f}, "
                      f"request-thread CPU p50 {off_cpu:.3f} ms ({len(times['off'])} calls each)", flush=True)
                for mode in modes[1:]:
                    p50, c50 = statistics.median(times[mode]) * 1e3, statistics.median(cpu[mode]) * 1e3
                    print(f"    {mode:<8} wall p50 {p50:.3f} ms (added {p50 - off_p50:+.3f}) p99 "
                          f"{percentile(times[mode], 99) * 1e3:.3f} | CPU p50 {c50:.3f} ms (added {c50 - off_cpu:+.3f})",
                          flush=True)
        finally:
            switch("on")
            client.http.delete(f"/api/v1/clusters/{cluster_id}")

    # One log line: formatted to stdout (devnull) alone, and also queued for Kafka.
    for on in (False, True):
        switch("logs")
        if not on:
            logger.removeHandler(shipper)
        samples = []
        for i in range(5000):
            started = time.perf_counter()
            logger.info("bench line", extra={"job_id": f"job-{i}"})
            samples.append(time.perf_counter() - started)
        print(f"logger.info with{'' if on else 'out'} the Kafka shipper: p50 {statistics.median(samples) * 1e6:.1f} µs")
    shipper.drain(30)
    from chalicelib import metrics

    metrics.flush()
    print(f"lines shipped by the shipper: {shipper.sent}; run id {uuid.uuid4().hex[:6]}")


if __name__ == "__main__":
    main()
