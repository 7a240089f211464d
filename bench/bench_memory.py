"""Peak RSS of each function's process after warm invocations (issue 16): under 128 MB, Lambda's smallest
sensible memory size.

    .venv/bin/python bench/bench_memory.py [--invocations 1000] [--functions api,job_worker]

Each function runs in a fresh interpreter (as one Lambda execution environment): `import app`, then
`--invocations` invocations through Chalice's handler on the stack's real services (./dev up), each a request
(the API: GET a cluster, GET /jobs, GET /metrics in turn) or a batch (the worker: one queued job per
batch; the Kafka consumers: 10 records per batch; the scheduled functions: one run each). The peak resident
set (`VmHWM`, `bench/peak_memory.py`) is read at the end. The baseline printed beside it is a bare Chalice + boto3 process.
The events and data are bench_cold_start's; everything created is deleted at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from bench_cold_start import FUNCTIONS, ROOT, Data, load_stack_env, run_child  # noqa: E402

LIMIT_MB = 128


def bare_rss_mb() -> float:
    code = ("from peak_memory import peak_rss_mb\nfrom chalice import Chalice\nimport boto3\n"
            "boto3.client('sqs', region_name='us-east-1')\nprint(peak_rss_mb())")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT / "bench")}).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invocations", type=int, default=1000)
    parser.add_argument("--functions", default=",".join(FUNCTIONS))
    args = parser.parse_args()
    load_stack_env()
    functions = [f for f in args.functions.split(",") if f]
    print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; invocations per function: {args.invocations}")
    print(f"bare Chalice + boto3 (an SQS client made): {bare_rss_mb():.1f} MB")
    data = Data(1, args.invocations if "job_worker" in functions else 1)
    worst = 0.0
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            events_file = handle.name
        print(f"{'function':18}{'peak RSS':>12}{'first':>10}   (limit {LIMIT_MB} MB)")
        for function in functions:
            pathlib.Path(events_file).write_text(json.dumps({function: data.events(function, args.invocations)}))
            result = run_child(ROOT, function, events_file, repeat=args.invocations)
            worst = max(worst, result["rss_mb"])
            mark = "" if result["rss_mb"] < LIMIT_MB else "   OVER"
            print(f"{function:18}{result['rss_mb']:9.1f} MB{result['first_s'] * 1000:8.0f} ms{mark}", flush=True)
        os.unlink(events_file)
    finally:
        data.delete()
    print(f"\nlargest: {worst:.1f} MB of {LIMIT_MB} MB ({worst / LIMIT_MB:.0%})")


if __name__ == "__main__":
    main()
