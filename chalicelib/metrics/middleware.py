"""Wiring of the metrics into a Chalice app: HTTP requests timed by route template and status, and one
flush to Redis at the end of every invocation of every function (HTTP, SQS, schedule, plain Lambda)."""
from __future__ import annotations

import time

from chalice import Chalice

from chalicelib import metrics


def register_metrics(app: Chalice) -> None:
    """Register before the error middleware, so the status recorded is the one the client gets."""

    @app.middleware("all")
    def flush_metrics(event, get_response):  # noqa: ANN001 - Chalice's middleware signature
        try:
            return get_response(event)
        finally:
            metrics.flush()

    @app.middleware("http")
    def http_metrics(event, get_response):  # noqa: ANN001
        if not metrics.enabled():
            return get_response(event)
        started = time.perf_counter()
        status = 500
        try:
            response = get_response(event)
            status = response.status_code
            return response
        finally:
            # The route template (`/api/v1/jobs/{job_id}`), never the raw path: bounded cardinality.
            metrics.observe_http(event.method, event.path, status, time.perf_counter() - started)
