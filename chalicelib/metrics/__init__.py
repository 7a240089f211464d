"""Application metrics that add up across Lambda instances.

Prometheus cannot scrape short-lived function instances one by one, and each instance's in-process
registry would only count what that one instance saw. So every instance *records* into a small
process-local buffer keyed by series (bounded by label cardinality, not by traffic) and *flushes* it to
Redis once at the end of each invocation: one EVALSHA of a small script that applies `HINCRBY` for
counts, `HINCRBYFLOAT` for sums and `HSET` for gauges atomically. Redis adds the increments of all instances atomically; the one reader,
`GET /metrics` (`chalicelib.metrics.exposition`), renders the hashes as the Prometheus exposition.

- Histograms store one count per bucket (not cumulative) plus `_sum` and `_count`; the reader
  accumulates them.
- When Redis is unreachable the buffer is kept and retried at the next invocation (it stays bounded by
  the number of series), so a blip delays counts instead of losing them; flushes are skipped for
  `RETRY_AFTER_SECONDS` after a failure so an outage does not slow every request.
- `CG_METRICS_ENABLED=0` turns recording and flushing into no-ops (the overhead bench compares both).

Recording functions are the only API the rest of the code uses: `observe_http`, `observe_job`, `inc`,
`observe`, `set_gauge`, and `flush`: every counter the app keeps (HTTP, jobs, rate limiting, events
handled, event publish failures, log shipping, the exporter) goes through them.
"""
from __future__ import annotations

import bisect
import functools
import json
import logging
import re
import threading
import time
from dataclasses import dataclass

from chalicelib.warm import PerContainer

COUNTS_KEY = "metrics:counts"  # counters, histogram buckets and counts: HINCRBY / HINCRBYFLOAT
GAUGES_KEY = "metrics:gauges"  # gauges: HSET (the latest value written by any instance)
RETRY_AFTER_SECONDS = 2.0
SEP = "\t"


@dataclass(frozen=True)
class Family:
    name: str
    help: str
    kind: str  # counter | gauge | histogram
    labelnames: tuple[str, ...]
    buckets: tuple[float, ...] = ()


FAMILIES: dict[str, Family] = {}


def log() -> logging.Logger:
    """The service's logger, by its stdlib name: the same handlers and JSON format as
    `observability.logger` (Powertools logs through it), without importing observability, whose log
    shipping counts its drops here."""
    from chalicelib.settings import get_settings

    return logging.getLogger(get_settings().service)


def _family(name: str, help_: str, kind: str, labelnames: tuple[str, ...], buckets: tuple[float, ...] = ()) -> Family:
    family = Family(name, help_, kind, labelnames, buckets)
    FAMILIES[name] = family
    return family


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)

# `path` is the same template in the original's (Gin's) spelling, `/api/v1/clusters/:cluster_id`: its
# dashboards and recording rules group by `path`.
HTTP_REQUESTS = _family("clustergenie_http_requests_total", "HTTP requests by route template and status.",
                        "counter", ("method", "route", "status", "path"))
HTTP_DURATION = _family("clustergenie_http_request_duration_seconds", "HTTP request latency inside the function.",
                        "histogram", ("method", "route", "path"), LATENCY_BUCKETS)
JOB_DURATION = _family("clustergenie_job_duration_seconds",
                       "Job processing time by job type and outcome (completed|failed|retried); _count counts jobs.",
                       "histogram", ("type", "outcome"), JOB_BUCKETS)
# The original's job metrics (api-v1-wire.md §6), under their names and labels, so its dashboards and rules
# find data: recorded with ours by `observe_job`. Its `status` is the outcome (completed|failed|retried).
ORIGINAL_JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
JOBS_PROCESSED = _family("clustergenie_jobs_processed_total",
                         "Jobs processed by the worker, by job type and outcome (the original's name).",
                         "counter", ("job_type", "status"))
JOB_PROCESSING = _family("clustergenie_job_processing_seconds",
                         "Worker-side job processing time by job type and outcome (the original's name).",
                         "histogram", ("job_type", "status"), ORIGINAL_JOB_BUCKETS)
RATE_LIMIT_EXCEEDED = _family("clustergenie_rate_limit_exceeded_total", "Requests denied by a rate limiter.",
                              "counter", ("name", "scope_type"))
RATE_LIMIT_AVAILABLE = _family("clustergenie_rate_limit_available_tokens",
                               "Tokens left in a rate-limit bucket after its latest decision (any instance).",
                               "gauge", ("name", "scope"))
RATE_LIMIT_STORE_FAILURES = _family("clustergenie_rate_limit_store_failures_total",
                                    "Rate-limit decisions taken by policy because Redis was unreachable.",
                                    "counter", ("name", "policy"))
EXPORTER_RUNS = _family("clustergenie_exporter_runs_total", "Metrics exporter runs by outcome (ok|push_failed|error).",
                        "counter", ("outcome",))
EVENTS_HANDLED = _family("clustergenie_events_handled_total",
                         "Cluster events handled by the event pipeline (all instances): outcome processed (by type), "
                         "skipped or malformed (by reason), duplicate.", "counter", ("type", "outcome", "reason"))
EVENT_PUBLISH_FAILURES = _family("clustergenie_event_publish_failures_total",
                                 "Events that could not be handed to the broker (the work they describe went ahead).",
                                 "counter", ("type",))
DEPENDENCY_UNAVAILABLE = _family("clustergenie_dependency_unavailable_total",
                                 "Requests answered 503 because a dependency (mariadb|redis|kafka) was unreachable.",
                                 "counter", ("source",))
OUTBOX_RELAYED = _family("clustergenie_outbox_relayed_total",
                         "Outbox events the relay published (outcome sent), and relay rounds that stopped at an "
                         "event the broker did not take (outcome failed).", "counter", ("outcome",))
LOG_LINES_DROPPED = _family("clustergenie_log_lines_dropped_total",
                            "Log lines not shipped to Kafka (queue full or broker unreachable).", "counter", ("reason",))


class _Buffer:
    """Pending increments of this instance since its last successful flush."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ints: dict[str, int] = {}
        self.floats: dict[str, float] = {}
        self.gauges: dict[str, float] = {}
        self.retry_at = 0.0

    def take(self) -> tuple[dict[str, int], dict[str, float], dict[str, float]]:
        with self.lock:
            taken = (self.ints, self.floats, self.gauges)
            self.ints, self.floats, self.gauges = {}, {}, {}
            return taken

    def give_back(self, ints: dict[str, int], floats: dict[str, float], gauges: dict[str, float]) -> None:
        with self.lock:
            for k, v in ints.items():
                self.ints[k] = self.ints.get(k, 0) + v
            for k, v in floats.items():
                self.floats[k] = self.floats.get(k, 0.0) + v
            for k, v in gauges.items():
                self.gauges.setdefault(k, v)  # a newer value recorded meanwhile wins


_buffer = _Buffer()


@functools.lru_cache(maxsize=4096)
def field(name: str, suffix: str, labels: tuple[str, ...]) -> str:
    """The Redis hash field of one sample: `<family>\\t<suffix>\\t<json label values>` (cached)."""
    return f"{name}{SEP}{suffix}{SEP}{json.dumps(labels, separators=(',', ':'))}"


def enabled() -> bool:
    from chalicelib.settings import get_settings  # imported where used: app.py's importers need not load pydantic

    return get_settings().metrics_enabled


def inc(family: Family, labels: tuple[str, ...], amount: int = 1) -> None:
    """Add `amount` to a counter series."""
    if not enabled():
        return
    key = field(family.name, "", labels)
    with _buffer.lock:
        _buffer.ints[key] = _buffer.ints.get(key, 0) + amount


def observe(family: Family, labels: tuple[str, ...], value: float) -> None:
    """Record one observation in a histogram series."""
    if not enabled():
        return
    i = bisect.bisect_left(family.buckets, value)
    le = repr(family.buckets[i]) if i < len(family.buckets) else "+Inf"
    bucket, count, total = field(family.name, le, labels), field(family.name, "count", labels), field(family.name, "sum", labels)
    b = _buffer
    with b.lock:
        b.ints[bucket] = b.ints.get(bucket, 0) + 1
        b.ints[count] = b.ints.get(count, 0) + 1
        b.floats[total] = b.floats.get(total, 0.0) + value


def set_gauge(family: Family, labels: tuple[str, ...], value: float) -> None:
    """Set a gauge series (the latest value any instance wrote is what the reader sees)."""
    if not enabled():
        return
    key = field(family.name, "", labels)
    with _buffer.lock:
        _buffer.gauges[key] = value


def gin_path(route: str) -> str:
    """`/api/v1/clusters/{cluster_id}` -> `/api/v1/clusters/:cluster_id` (the original's `path` label)."""
    return re.sub(r"\{(\w+)\+?\}", r":\1", route)


# Labels come only from bounded, server-chosen sets (issue 18): a method outside these is counted as OTHER.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in HTTP_METHODS else "OTHER"
    path = gin_path(route)
    inc(HTTP_REQUESTS, (method, route, str(status), path))
    observe(HTTP_DURATION, (method, route, path), seconds)


def observe_job(job_type: str, outcome: str, seconds: float) -> None:
    """One job processed by the worker: `outcome` is completed, failed or retried."""
    observe(JOB_DURATION, (job_type, outcome), seconds)
    inc(JOBS_PROCESSED, (job_type, outcome))
    observe(JOB_PROCESSING, (job_type, outcome), seconds)


# One script call applies a whole flush atomically: a single command (no MULTI/EXEC around a pipeline),
# so the client packs and parses one request and one reply.
FLUSH_LUA = """
local i = 2
for _ = 1, tonumber(ARGV[1]) do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
return 1
"""


@functools.lru_cache(maxsize=4)
def _flush_script(client):  # noqa: ANN001, ANN202
    """EVALSHA on `client`, loading the script on NOSCRIPT (redis-py's Script)."""
    return client.register_script(FLUSH_LUA)


def _send_flush(client, args: list) -> None:  # noqa: ANN001
    """EVALSHA of the flush script, encoded by `hiredis.pack_command` and sent on a pooled connection:
    redis-py's generic packing cost about as much CPU as the round trip itself. NOSCRIPT (a restarted or
    flushed Redis) loads the script and sends again; the script did not run, so nothing is applied twice."""
    from hiredis import pack_command
    from redis.exceptions import NoScriptError

    script = _flush_script(client)
    packed = pack_command(("EVALSHA", script.sha, "2", COUNTS_KEY, GAUGES_KEY, *(str(a) for a in args)))
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([packed])
        try:
            conn.read_response()
        except NoScriptError:
            client.script_load(FLUSH_LUA)
            conn.send_packed_command([packed])
            conn.read_response()
    except BaseException:
        conn.disconnect()  # its state is unknown: never reuse it
        raise
    finally:
        pool.release(conn)


def _new_client():  # noqa: ANN202
    """Its own client, without redis-py's retries: a flush is one attempt, and a dead Redis costs at most
    one short timeout every RETRY_AFTER_SECONDS, never the shared client's seconds of backoff."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from chalicelib.redis_client import redis_password

    from chalicelib.settings import get_settings

    settings = get_settings()
    return redis.Redis.from_url(settings.redis_url, password=redis_password(settings), socket_connect_timeout=0.5,
                                socket_timeout=0.5, retry=Retry(NoBackoff(), 0), health_check_interval=30,
                                decode_responses=True)


_client = PerContainer(_new_client)


def flush() -> bool:
    """Send this instance's pending increments to Redis in one round trip; True when nothing is left.

    Never raises: on failure the increments are kept for the next invocation.
    """
    if not enabled():
        return True
    now = time.monotonic()
    if now < _buffer.retry_at:
        return False
    ints, floats, gauges = _buffer.take()
    if not (ints or floats or gauges):
        return True
    try:
        args: list[str | int | float] = [len(ints)]
        for key, value in ints.items():
            args += (key, value)
        args.append(len(floats))
        for key, value in floats.items():
            args += (key, repr(value))
        args.append(len(gauges))
        for key, value in gauges.items():
            args += (key, repr(float(value)))
        _send_flush(_client.get(), args)
        return True
    except Exception as exc:  # noqa: BLE001 - metrics must never fail the invocation
        _buffer.give_back(ints, floats, gauges)
        _buffer.retry_at = now + RETRY_AFTER_SECONDS
        log().warning("metrics flush failed; kept for the next invocation", extra={"error": repr(exc)})
        return False


def pending() -> int:
    """Number of series waiting to be flushed (tests and the bench use it)."""
    with _buffer.lock:
        return len(_buffer.ints) + len(_buffer.floats) + len(_buffer.gauges)


def reset_buffer() -> None:
    """Drop what this process has not flushed (tests)."""
    _buffer.take()
    _buffer.retry_at = 0.0
