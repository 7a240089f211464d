"""What authentication adds to a warm API request (issue 13): a cache hit, a cache miss, and no auth at all.

    .venv/bin/python bench/bench_auth.py [--calls 3000] [--db clustergenie]

One route (GET /api/v1/clusters/{id}, a viewer's read; reads are not audited), through chalice.test.Client
(every middleware, real MariaDB), three ways interleaved call by call in one run:

- off:  authentication off (`CG_AUTH_ENABLED=false`, the local stage), the baseline;
- hit:  an API key whose verification the container has cached (the usual warm request);
- miss: the same key with a cache time of 0, so every request verifies it (prefix lookup in MariaDB,
        constant-time hash comparison, last_used_at update).

It prints p50/p99 of each and what hit and miss add over off. Goal: hit adds < 0.2 ms at p50.
The key and the cluster it creates are removed at the end.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run(calls: int, warmup: int) -> dict[str, list[float]]:
    from chalice.test import Client

    from app import app
    from chalicelib import db, settings as settings_module
    from chalicelib.auth.authenticator import Authenticator, set_authenticator
    from chalicelib.auth.keys import ApiKeyService
    from chalicelib.repositories import ClusterRepository

    on = settings_module.load_settings()
    off = on.model_copy(update={"auth_enabled": False})
    marker = f"bench-{uuid.uuid4().hex[:8]}"
    cluster = ClusterRepository().create(marker, "nyc3")
    row, key = ApiKeyService().create(tenant="default", role="viewer", name=marker, created_by="bench")
    cached, uncached = Authenticator(ttl=3600.0), Authenticator(ttl=0.0)
    path, headers = f"/api/v1/clusters/{cluster['id']}", {"X-API-Key": key}

    def mode(settings, authenticator):  # noqa: ANN001
        settings_module._settings.set(settings)
        set_authenticator(authenticator)

    samples: dict[str, list[float]] = {"off": [], "hit": [], "miss": []}
    cases = [("off", off, cached), ("hit", on, cached), ("miss", on, uncached)]
    try:
        with Client(app) as client:
            http = client.http
            for i in range(warmup + calls):
                for name, settings, authenticator in cases:
                    mode(settings, authenticator)
                    t0 = time.perf_counter_ns()
                    status = http.get(path, headers=headers).status_code
                    elapsed = (time.perf_counter_ns() - t0) / 1e6
                    assert status == 200, (name, status)
                    if i >= warmup:
                        samples[name].append(elapsed)
    finally:
        mode(on, None)
        ClusterRepository().delete(cluster["id"])
        with db.transaction() as cur:
            cur.execute("DELETE FROM api_keys WHERE id = %s", (row["id"],))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--db", default="clustergenie", help="database to use (the rows the bench adds are removed)")
    args = parser.parse_args()
    from devstack.config import load_stack_env

    load_stack_env()
    os.environ["CG_DB_NAME"] = args.db
    os.environ["CG_ENVIRONMENT"] = "local"  # authentication may be off only on the local stage
    os.environ.setdefault("CG_LOG_LEVEL", "WARNING")
    samples = run(args.calls, args.warmup)
    off50, off99 = statistics.median(samples["off"]), percentile(samples["off"], 99)
    print(f"{'mode':6} {'calls':>6} {'p50':>8} {'p99':>8} {'added p50':>10} {'added p99':>10}")
    for name in ("off", "hit", "miss"):
        p50, p99 = statistics.median(samples[name]), percentile(samples[name], 99)
        print(f"{name:6} {len(samples[name]):>6} {p50:>8.3f} {p99:>8.3f} {p50 - off50:>10.3f} {p99 - off99:>10.3f}")
    print(f"(milliseconds, wall clock, GET /api/v1/clusters/{{id}} in-process; goal: hit adds < 0.2 ms at p50; "
          f"1-min load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
