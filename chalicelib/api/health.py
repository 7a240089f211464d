"""/api/v1/health/{cluster_id}"""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.responses import ok
from chalicelib.services.monitoring import MonitoringService

bp = Blueprint(__name__)
service = MonitoringService()


@bp.route("/health/{cluster_id}", methods=["GET"])
def cluster_health(cluster_id: str):
    return ok(service.health(cluster_id))
