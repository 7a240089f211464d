"""/api/v1/health/{cluster_id}"""
from __future__ import annotations

from chalicelib.api.responses import ok
from chalicelib.services.monitoring import MonitoringService

service = MonitoringService()


def cluster_health(cluster_id: str):
    return ok(service.health(cluster_id))
