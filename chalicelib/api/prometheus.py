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


@bp.route("/metrics", methods=["GET"])
def prometheus_metrics():
    return Response(body=render().decode(), headers={"Content-Type": CONTENT_TYPE_LATEST})
