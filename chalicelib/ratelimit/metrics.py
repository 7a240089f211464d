"""Prometheus metrics of the rate limiter, behind small recording functions.

Metric recording goes only through `record_exceeded`, `record_available` and `record_store_failure`.
Each records twice: into this process's prometheus_client registry (the instance's own view, used by
the rate-limit tests) and into `chalicelib.metrics`, the aggregate across Lambda instances that
GET /metrics serves.

Label cardinality stays bounded however many users call us:
- the counter's `scope_type` label is only `global`, `user` or `cluster`;
- the gauge's `scope` label is `global`; the scope type `user` for every user (a user's own bucket is
  read on demand from GET /api/v1/observability/ratelimit instead); `cluster:<id>` for at most
  MAX_CLUSTER_SERIES clusters per container, and `cluster:other` beyond that.
"""
from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge

from chalicelib import metrics as aggregated
from chalicelib.ratelimit.config import Scope

MAX_CLUSTER_SERIES = 100

RATE_LIMIT_EXCEEDED = Counter(
    "clustergenie_rate_limit_exceeded_total",
    "Requests denied by a rate limiter.",
    ["name", "scope_type"],
)
AVAILABLE_TOKENS = Gauge(
    "clustergenie_rate_limit_available_tokens",
    "Tokens left in a rate-limit bucket after its latest decision (user buckets share one series).",
    ["name", "scope"],
)
STORE_FAILURES = Counter(
    "clustergenie_rate_limit_store_failures_total",
    "Decisions taken by the fail-open/fail-closed policy because Redis was unreachable.",
    ["name", "policy"],
)

_cluster_series: set[str] = set()
_cluster_series_lock = threading.Lock()


def gauge_scope_label(scope: Scope) -> str:
    """The gauge's `scope` label for a bucket: bounded whatever the number of users and clusters."""
    if scope.type == "user":
        return "user"
    if scope.type == "cluster":
        label = str(scope)
        with _cluster_series_lock:
            if label in _cluster_series:
                return label
            if len(_cluster_series) < MAX_CLUSTER_SERIES:
                _cluster_series.add(label)
                return label
        return "cluster:other"
    return "global"


def record_exceeded(name: str, scope: Scope) -> None:
    """Count one denial."""
    RATE_LIMIT_EXCEEDED.labels(name=name, scope_type=scope.type).inc()
    aggregated.inc(aggregated.RATE_LIMIT_EXCEEDED, (name, scope.type))


def record_available(name: str, scope: Scope, tokens: float) -> None:
    """Publish a bucket's token count after a decision or a status read."""
    label = gauge_scope_label(scope)
    AVAILABLE_TOKENS.labels(name=name, scope=label).set(tokens)
    aggregated.set_gauge(aggregated.RATE_LIMIT_AVAILABLE, (name, label), tokens)


def record_store_failure(name: str, fail_open: bool) -> None:
    """Count one decision taken without Redis."""
    policy = "open" if fail_open else "closed"
    STORE_FAILURES.labels(name=name, policy=policy).inc()
    aggregated.inc(aggregated.RATE_LIMIT_STORE_FAILURES, (name, policy))
