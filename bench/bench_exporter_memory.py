"""The metrics exporter's peak memory against the number of clusters (it must stay flat, issue 18).

    .venv/bin/python bench/bench_exporter_memory.py [--clusters 1000,30000,100000]

For each size, in its own database `clustergenie_bench` (as bench_exporter.py: created with the admin
connection, migrated, dropped at the end): `n` clusters with 5 droplets each and one sample of each of the
four metric types per cluster, then one full exporter run (read, spool, PUT to the real Pushgateway into a
bench group, deleted afterwards) in a fresh Python process, whose peak RSS (`VmHWM`, `bench/peak_memory.py`) is reported with the
ratio to the smallest size's. The process imports the same modules at every size, so the smallest size is
the baseline of what the code itself costs.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_exporter import (  # noqa: E402 - the same database, loading and clean-up as the run-time bench
    add_metric_rows, create_database, delete_push_group, drop_database, load_clusters, load_stack_env,
)

RUN = """
import json, time
from chalicelib.functions import metrics_exporter
from peak_memory import peak_rss_mb
metrics_exporter.GROUPING_KEY = {"instance": "bench-memory"}
started = time.perf_counter()
result = metrics_exporter.export()
print(json.dumps({"pushed": result["pushed"], "clusters": result.get("clusters"),
                  "seconds": time.perf_counter() - started,
                  "peak_rss_mb": peak_rss_mb()}))
"""


def measure(cfg, clusters: int) -> dict:  # noqa: ANN001
    create_database(cfg)
    load_clusters(cfg, clusters)
    add_metric_rows(cfg, clusters, 0, clusters * 4 - 1)
    out = subprocess.run([sys.executable, "-c", RUN], cwd=ROOT, check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")])})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clusters", default="1000,30000,100000")
    args = parser.parse_args()
    load_stack_env()
    from devstack.config import StackConfig

    cfg = StackConfig.from_env()
    sizes = [int(n) for n in args.clusters.split(",")]
    results = []
    try:
        for n in sizes:
            started = time.perf_counter()
            result = measure(cfg, n)
            assert result["clusters"] == n, result
            results.append((n, result))
            print(f"{n:>8,} clusters: peak RSS {result['peak_rss_mb']:7.1f} MB, export {result['seconds']:6.2f} s, "
                  f"pushed {result['pushed']} "
                  f"(with loading {time.perf_counter() - started:6.1f} s)", flush=True)
    finally:
        delete_push_group("bench-memory")
        drop_database(cfg)
    base = results[0][1]["peak_rss_mb"]
    for n, result in results[1:]:
        print(f"{n:,} vs {results[0][0]:,} clusters: peak RSS x{result['peak_rss_mb'] / base:.2f}")


if __name__ == "__main__":
    main()
