"""Prometheus metrics of the rate limiter, behind small recording functions.

Metric recording goes only through `record_exceeded`, `record_available` and `record_store_failure`,
into `chalicelib.metrics`, the aggregate across Lambda instances that GET /metrics serves.

Label cardinality stays bounded however many users call us:
- the counter's `scope_type` label is only `global`, `user`, `cluster` or `source`;
- the gauge's `scope` label is `global`; the scope type `user` for every user (a user's own bucket is
  read on demand from GET /api/v1/observability/ratelimit instead); `cluster:<id>` for at most
  MAX_CLUSTER_SERIES clusters per container, and `cluster:other` beyond that.
"""
from __future__ import annotations

import threading

from chalicelib import metrics as aggregated
from chalicelib.ratelimit.config import Scope

MAX_CLUSTER_SERIES = 100

_cluster_series: set[str] = set()
_cluster_series_lock = threading.Lock()


def gauge_scope_label(scope: Scope) -> str:
    """The gauge's `scope` label for a bucket: bounded whatever the number of users and clusters."""
    if scope.type in ("user", "source"):  # one series for all users, one for all source addresses
        return scope.type
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
    aggregated.inc(aggregated.RATE_LIMIT_EXCEEDED, (name, scope.type))


def record_available(name: str, scope: Scope, tokens: float) -> None:
    """Publish a bucket's token count after a decision or a status read."""
    label = gauge_scope_label(scope)
    aggregated.set_gauge(aggregated.RATE_LIMIT_AVAILABLE, (name, label), tokens)


def record_store_failure(name: str, fail_open: bool) -> None:
    """Count one decision taken without Redis."""
    policy = "open" if fail_open else "closed"
    aggregated.inc(aggregated.RATE_LIMIT_STORE_FAILURES, (name, policy))
