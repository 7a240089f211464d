"""The Redis bucket under contention: 8 processes share one bucket (capacity 50, 10 tokens/s) for 5 s.

Whatever the interleaving, and whatever the callers' clocks say, the total admitted must be the
capacity plus what refilled meanwhile (within one token) and never more. Elapsed time is measured on
the Redis server's clock, the only clock the Lua script reads: from the first decision (which created
the bucket, full) to the last admitted one, as the script reported them; and, as a looser outer bound,
from the server time before the first decision to the server time after the last one.

The bucket lives in a redis-server of its own for this module (same binary as the shared one): other
suites flush the shared test database between their tests, which would refill the bucket mid-run.
"""
from __future__ import annotations

import multiprocessing
import time
import uuid

import pytest
import redis

from chalicelib.ratelimit import RedisTokenBucket
from chalicelib.ratelimit.redis_bucket import bucket_key
from private_redis import private_redis_server

CAPACITY = 50
RATE = 10.0
WORKERS = 8
DURATION = 5.0


def _server_time(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


@pytest.fixture(scope="module")
def redis_url(redis_server):  # noqa: ANN001
    with private_redis_server() as (port, _):
        yield f"redis://127.0.0.1:{port}/0"


def _hammer(url: str, key: str, skew: float, start, results) -> None:
    """One API instance: its own process, its own connection, and a clock off by `skew` seconds."""
    real_time, real_monotonic = time.time, time.monotonic
    # Skew every clock this process can read; the bucket must not care.
    time.time = lambda: real_time() + skew
    time.monotonic = lambda: real_monotonic() + skew
    client = redis.Redis.from_url(url, decode_responses=True)
    bucket = RedisTokenBucket(client, key, refill_rate=RATE, capacity=CAPACITY)
    start.wait()
    deadline = time.monotonic() + DURATION
    allowed = decisions = 0
    before = _server_time(client)
    first_at = last_admitted_at = left_then = None
    while time.monotonic() < deadline:
        decision = bucket.allow()
        decisions += 1
        first_at = decision.at if first_at is None else first_at
        if decision.allowed:
            allowed += 1
            last_admitted_at, left_then = decision.at, decision.remaining
    after = _server_time(client)
    results.put((allowed, decisions, first_at, last_admitted_at, before, after, left_then))


def _run(url: str, skews: list[float]) -> tuple[int, int, float, float, float]:
    key = bucket_key(f"t{uuid.uuid4().hex[:12]}", "global")
    client = redis.Redis.from_url(url, decode_responses=True)
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_hammer, args=(url, key, skew, start, results)) for skew in skews]
    for worker in workers:
        worker.start()
    time.sleep(0.3)  # let every worker connect before the clock starts
    start.set()
    outcomes = [results.get(timeout=DURATION + 30) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    client.delete(key)
    allowed = sum(o[0] for o in outcomes)
    decisions = sum(o[1] for o in outcomes)
    # The last admission of all (the server's clock; the script runs one call at a time, so of two in the same
    # microsecond the later one left less) and the tokens it left in the bucket.
    last_at, left = max(((o[3], -o[6]) for o in outcomes if o[3] is not None))
    elapsed = last_at - min(o[2] for o in outcomes)
    outer_elapsed = max(o[5] for o in outcomes) - min(o[4] for o in outcomes)
    return allowed, decisions, elapsed, outer_elapsed, -left


@pytest.mark.parametrize(
    "skews",
    [pytest.param([0.0] * WORKERS, id="same-clocks"),
     pytest.param([+2.0] * (WORKERS // 2) + [-2.0] * (WORKERS // 2), id="clocks-skewed-plus-minus-2s")],
)
def test_shared_bucket_admits_capacity_plus_refill_and_never_more(redis_url, skews):
    allowed, decisions, elapsed, outer_elapsed, left = _run(redis_url, skews)
    assert elapsed > DURATION - 0.5
    expected = CAPACITY + RATE * elapsed
    assert decisions > 10 * allowed, "the workers did not hammer hard enough for the check to mean anything"
    assert allowed <= expected, f"admitted {allowed}, more than {expected:.2f}"
    # Every token is accounted for: the ones admitted plus the ones the last admission left in the bucket are the
    # capacity plus the refill up to that moment, never more (within float rounding of microsecond times); fewer
    # only by refill clipped at the capacity, which the hammering allows for at most one token. Not
    # `allowed >= expected - 1`: on a loaded machine the last admission can follow a pause of every worker, and
    # the tokens refilled during it are left in the bucket, not lost.
    assert allowed + left <= expected + 1e-3, f"admitted {allowed} and left {left:.3f}, more than {expected:.3f}"
    assert allowed + left >= expected - 1, f"admitted {allowed} and left {left:.3f}, {expected:.3f} expected"
    assert allowed <= CAPACITY + RATE * outer_elapsed
