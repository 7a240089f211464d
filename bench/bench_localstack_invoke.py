"""Cold and warm invoke latency of the API function through API Gateway on LocalStack.

    .venv/bin/python bench/bench_localstack_invoke.py [--warm 200] [--cold 3] [--json]

Needs a deployment (`./dev up`; reads $CG_STATE_DIR/stack.json). Measured in the same run, as baselines:
- a direct Lambda Invoke of a no-op Python function on the same LocalStack and executor (the platform's own
  cost per invoke, created here as `clustergenie-bench-noop` if missing);
- the same route in-process through `chalice.test.Client` (the app's own cost, no LocalStack at all).

Cold = the first request after a configuration update of the API function, which makes LocalStack start a new
execution environment (a new process that imports the app). Warm = p50/p99 of sequential requests after that.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import statistics
import sys
import time
import urllib.request
import uuid
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make devstack/ and chalicelib/ importable
STATE_DIR = pathlib.Path(os.environ.get("CG_STATE_DIR") or ROOT / ".local")
ROUTE = "/api/v1/clusters"
NOOP = "clustergenie-bench-noop"

import cpu_accounting  # noqa: E402 - bench/ (the script's own directory) is on sys.path


def load_env() -> dict:
    from devstack.config import load_stack_env

    load_stack_env(STATE_DIR, required=False)
    stack_file = STATE_DIR / "stack.json"
    if not stack_file.exists():
        raise SystemExit(f"{stack_file} is missing: run ./dev up first")
    stack = json.loads(stack_file.read_text())
    os.environ["AWS_ENDPOINT_URL"] = stack["endpoint_url"]
    os.environ.setdefault("AWS_DEFAULT_REGION", stack.get("region", "us-east-1"))
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    return stack


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(samples: list[float]) -> dict:
    return {"n": len(samples), "p50_ms": round(percentile(samples, 50), 2), "p99_ms": round(percentile(samples, 99), 2),
            "mean_ms": round(statistics.fmean(samples), 2)}


def timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} -> {response.status}")
    return (time.perf_counter() - started) * 1000


def lambda_client():
    import boto3
    from botocore.config import Config

    return boto3.client("lambda", config=Config(read_timeout=120, retries={"max_attempts": 2}))


def wait_updated(lam, name: str) -> None:
    while True:
        config = lam.get_function_configuration(FunctionName=name)
        if config.get("State") == "Active" and config.get("LastUpdateStatus") in (None, "Successful"):
            return
        time.sleep(0.2)


def ensure_noop(lam, runtime: str, role: str) -> None:
    try:
        lam.get_function(FunctionName=NOOP)
        return
    except lam.exceptions.ResourceNotFoundException:
        pass
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("noop.py", "def handler(event, context):\n    return {}\n")
    lam.create_function(FunctionName=NOOP, Runtime=runtime, Role=role, Handler="noop.handler",
                        Code={"ZipFile": buffer.getvalue()}, Timeout=10, MemorySize=128)
    wait_updated(lam, NOOP)


def force_new_environment(lam, name: str, nonce: str | None) -> None:
    """Any configuration update retires the function's environments: the next request is a cold start."""
    config = lam.get_function_configuration(FunctionName=name)
    variables = dict(config["Environment"]["Variables"])
    if nonce is None:
        variables.pop("CG_BENCH_NONCE", None)
    else:
        variables["CG_BENCH_NONCE"] = nonce
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
    wait_updated(lam, name)


def bench_in_process(calls: int, key: str) -> list[float]:
    os.environ.setdefault("CG_DB_NAME", "clustergenie")
    from chalice.test import Client

    from app import app

    samples = []
    with Client(app) as client:
        headers = {"X-API-Key": key}  # authentication is on (issue 13), as through API Gateway
        client.http.get(ROUTE, headers=headers)  # imports and connections, as a warm container has them
        for _ in range(calls):
            started = time.perf_counter()
            response = client.http.get(ROUTE, headers=headers)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.body[:200]
    return samples


def main() -> int:
    from devstack.apikeys import install_stack_credentials, read_admin_key
    from devstack.config import StackConfig

    admin_key = read_admin_key(StackConfig.from_env())
    install_stack_credentials(admin_key)  # authentication is on (issue 13)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm", type=int, default=200, help="warm requests (default 200)")
    parser.add_argument("--cold", type=int, default=3, help="cold starts to measure (default 3)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    stack = load_env()
    lam = lambda_client()
    api_fn = stack["functions"]["api"]
    url = stack["api_url"].rstrip("/") + ROUTE
    api_config = lam.get_function_configuration(FunctionName=api_fn)

    cold = []
    for _ in range(args.cold):
        force_new_environment(lam, api_fn, uuid.uuid4().hex)
        cold.append(timed_get(url))
    warm = [timed_get(url) for _ in range(args.warm)]
    force_new_environment(lam, api_fn, None)  # leave the configuration as deployed

    ensure_noop(lam, api_config["Runtime"], api_config["Role"])
    payload = b"{}"
    lam.invoke(FunctionName=NOOP, Payload=payload)["Payload"].read()
    noop = []
    before = cpu_accounting.snapshot(STATE_DIR)
    for _ in range(args.warm):
        started = time.perf_counter()
        lam.invoke(FunctionName=NOOP, Payload=payload)["Payload"].read()
        noop.append((time.perf_counter() - started) * 1000)
    # What one invoke costs the platform (LocalStack's own process) and the function's process, in CPU: with
    # CloudWatch and CloudWatch Logs running, LocalStack called itself twice per invoke (issue 16, sixth round).
    noop_cpu = cpu_accounting.per_unit_ms(cpu_accounting.delta(before, cpu_accounting.snapshot(STATE_DIR)), args.warm)

    in_process = bench_in_process(args.warm, admin_key)

    result = {
        "route": f"GET {ROUTE}",
        "api_gateway_cold": summary(cold),
        "api_gateway_warm": summary(warm),
        "baseline_noop_lambda_invoke": summary(noop),
        "baseline_noop_lambda_invoke_cpu_ms": {k: v for k, v in noop_cpu.items() if v >= 0.05},
        "baseline_in_process_chalice_client": summary(in_process),
    }
    warm_p50 = result["api_gateway_warm"]["p50_ms"]
    result["ratios"] = {
        "cold_p50_over_warm_p50": round(result["api_gateway_cold"]["p50_ms"] / warm_p50, 1),
        "warm_p50_over_noop_invoke_p50": round(warm_p50 / result["baseline_noop_lambda_invoke"]["p50_ms"], 2),
        "warm_p50_over_in_process_p50": round(warm_p50 / result["baseline_in_process_chalice_client"]["p50_ms"], 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name in ("api_gateway_cold", "api_gateway_warm", "baseline_noop_lambda_invoke",
                     "baseline_in_process_chalice_client"):
            s = result[name]
            print(f"{name:<36} n={s['n']:<4} p50={s['p50_ms']:>8.2f} ms  p99={s['p99_ms']:>8.2f} ms")
        print(f"{'noop invoke CPU ms by process':<36} {result['baseline_noop_lambda_invoke_cpu_ms']}")
        for name, value in result["ratios"].items():
            print(f"{name:<36} {value}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
