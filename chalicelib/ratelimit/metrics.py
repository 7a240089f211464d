"""Prometheus metrics of the rate limiter, behind small recording functions.

Metric recording goes only through `record_exceeded`, `record_available` and `record_store_failure`,
into `chalicelib.metrics`, the aggregate across Lambda instances that GET /metrics serves.

Label cardinality stays bounded however many users call us:
- the counter's `scope_type` label is only `global`, `user`, `cluster` or `source`;
- the gauge's `scope` label is `global`, or the scope type alone (`user`, `cluster`, `source`): a user's,
  cluster's or address's own bucket is read on demand from GET /api/v1/observability/ratelimit (platform
  admins) instead. GET /metrics is public and serves no tenant data (issue 13), so no cluster id is a label.
"""
from __future__ import annotations

from chalicelib import metrics as aggregated
from chalicelib.ratelimit.config import Scope


def gauge_scope_label(scope: Scope) -> str:
    """The gauge's `scope` label for a bucket: `global` or the scope type, never an id."""
    return scope.type


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
