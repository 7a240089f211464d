"""/api/v1/metrics: the stored samples (the Prometheus exposition at /metrics is elsewhere)."""
from __future__ import annotations

from chalicelib.api.responses import ok
from chalicelib.api.routing import current_request
from chalicelib.http import parse_query
from chalicelib.models import MetricListQuery, MetricPage
from chalicelib.services.monitoring import MonitoringService

service = MonitoringService()


def list_metrics():
    query = parse_query(current_request(), MetricListQuery)
    metrics, total = service.list_metrics(query)
    return ok(MetricPage(metrics=metrics, period="1h", page=query.page, page_size=query.page_size, total_count=total))
