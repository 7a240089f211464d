"""/api/v1/metrics: the stored samples (the Prometheus exposition at /metrics is elsewhere)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.responses import ok
from chalicelib.http import parse_query
from chalicelib.models import MetricListQuery, MetricPage
from chalicelib.services.monitoring import MonitoringService

bp = Blueprint(__name__)
service = MonitoringService()


@bp.route("/metrics", methods=["GET"])
def list_metrics():
    query = parse_query(bp.current_request, MetricListQuery)
    metrics, total = service.list_metrics(query)
    return ok(MetricPage(metrics=metrics, period="1h", page=query.page, page_size=query.page_size, total_count=total))
