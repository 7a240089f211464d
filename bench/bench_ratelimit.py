"""Decisions per second from one Python client: our Redis token bucket against the `limits` library's
moving-window and fixed-window strategies on the same Redis, with bare PING round trips as the floor.

    .venv/bin/python bench/bench_ratelimit.py [--ops 20000] [--chunk 250] [--redis-url redis://127.0.0.1:6379/14]

Contenders take turns in short chunks (a few hundred calls each, rotating the order), so a load spike
on a shared machine hits them alike; a contender's rate is its calls over the time its own chunks took.
Every decision is an admitted one (limits far above the load), the common path. Only a Redis on
127.0.0.1/localhost is accepted; the bench deletes the keys it created.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from typing import Callable
from urllib.parse import urlparse

import redis

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chalicelib.ratelimit import RedisTokenBucket  # noqa: E402
from chalicelib.ratelimit.redis_bucket import bucket_key  # noqa: E402


def measure(op: Callable[[], object], count: int) -> tuple[int, list[int]]:
    """(elapsed ns, per-operation latencies in ns) for `count` sequential calls of `op`."""
    latencies = [0] * count
    clock = time.perf_counter_ns
    started = clock()
    for i in range(count):
        t0 = clock()
        op()
        latencies[i] = clock() - t0
    return clock() - started, latencies


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default=os.environ.get("CG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--ops", type=int, default=20000, help="decisions per contender")
    parser.add_argument("--chunk", type=int, default=250, help="calls per turn")
    parser.add_argument("--max-seconds", type=float, default=120, help="stop starting new turns after this")
    args = parser.parse_args()
    if urlparse(args.redis_url).hostname not in ("127.0.0.1", "localhost"):
        parser.error("the bench only talks to a Redis on 127.0.0.1/localhost")
    if not 1 <= args.ops <= 200_000 or not 1 <= args.chunk <= args.ops:
        parser.error("--ops must be 1..200000 and --chunk 1..ops")

    from limits import RateLimitItemPerSecond
    from limits.storage import RedisStorage
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    # The same client settings as chalicelib.redis_client.get_redis.
    client = redis.Redis.from_url(args.redis_url, socket_connect_timeout=1, socket_timeout=1, decode_responses=True)
    run_id = uuid.uuid4().hex[:8]
    ours = RedisTokenBucket(client, bucket_key(f"bench{run_id}", "global"), refill_rate=1e6, capacity=1_000_000)
    limits_storage = RedisStorage(args.redis_url, key_prefix=f"bench{run_id}")
    item = RateLimitItemPerSecond(1_000_000)
    moving, fixed = MovingWindowRateLimiter(limits_storage), FixedWindowRateLimiter(limits_storage)
    contenders: dict[str, Callable[[], object]] = {
        "token bucket (ours)": ours.allow,
        "limits moving-window": lambda: moving.hit(item, "moving"),
        "limits fixed-window": lambda: fixed.hit(item, "fixed"),
        "PING": client.ping,
    }
    for op in contenders.values():  # warm up: connections open, scripts loaded
        measure(op, 200)

    elapsed_ns: dict[str, int] = {name: 0 for name in contenders}
    latencies: dict[str, list[int]] = {name: [] for name in contenders}
    deadline = time.monotonic() + args.max_seconds
    names = list(contenders)
    for turn in range(args.ops // args.chunk):
        if time.monotonic() > deadline:
            break
        for name in names[turn % len(names):] + names[:turn % len(names)]:
            spent, lat = measure(contenders[name], args.chunk)
            elapsed_ns[name] += spent
            latencies[name].extend(lat)

    # Delete what this run created (SCAN on its own prefix; never KEYS).
    client.delete(ours.key, *client.scan_iter(match=f"bench{run_id}*", count=500))

    rate = {name: len(latencies[name]) / (elapsed_ns[name] / 1e9) for name in contenders}
    print(f"{len(latencies[names[0]])} calls per contender in chunks of {args.chunk}, one client, {args.redis_url}")
    print(f"{'contender':<24}{'decisions/s':>14}{'p50 us':>10}{'p99 us':>10}")
    for name in contenders:
        print(f"{name:<24}{rate[name]:>14,.0f}{percentile(latencies[name], 0.50) / 1e3:>10.0f}"
              f"{percentile(latencies[name], 0.99) / 1e3:>10.0f}")
    ours_rate = rate["token bucket (ours)"]
    print(f"ours / limits moving-window: {ours_rate / rate['limits moving-window']:.2f}x (goal >= 1.3x)")
    print(f"ours / limits fixed-window:  {ours_rate / rate['limits fixed-window']:.2f}x (goal >= 1.3x)")
    print(f"ours / PING:                 {ours_rate / rate['PING']:.2f}x (goal >= 0.8x)")
    print(f"p99 decision latency (ours): {percentile(latencies['token bucket (ours)'], 0.99) / 1e3:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
