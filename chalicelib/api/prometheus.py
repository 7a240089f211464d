"""GET /metrics (outside /api/v1): the Prometheus exposition of the metrics aggregated over every
function instance (`chalicelib.metrics`)."""
from __future__ import annotations

from chalice import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST

from chalicelib.api.openapi import Operation, document
from chalicelib.metrics.exposition import render

bp = Blueprint(__name__)

document(Operation("GET", "/metrics", "Prometheus exposition of the aggregated metrics", "observability", None,
                   content_type="text/plain"))


document(Operation("HEAD", "/metrics", "Headers of the Prometheus exposition (the original answered any method)",
                   "observability", None, content_type="text/plain"))


@bp.route("/metrics", methods=["GET", "HEAD"])
def prometheus_metrics():
    body = render().decode() if bp.current_request.method == "GET" else ""
    return Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
