"""GET /metrics (outside /api/v1): the Prometheus exposition of the metrics aggregated over every
function instance (`chalicelib.metrics`)."""
from __future__ import annotations

from chalice import Response
from prometheus_client import CONTENT_TYPE_LATEST

from chalicelib.api.openapi import Operation, document
from chalicelib.api.routing import current_request
from chalicelib.metrics.exposition import render

document(Operation("GET", "/metrics", "Prometheus exposition of the aggregated metrics", "observability", None,
                   content_type="text/plain"))


document(Operation("HEAD", "/metrics", "Headers of the Prometheus exposition (the original answered any method)",
                   "observability", None, content_type="text/plain"))


def prometheus_metrics():
    body = render().decode() if current_request().method == "GET" else ""
    return Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
