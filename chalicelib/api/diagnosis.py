"""/api/v1/diagnosis (rate limited by the `diagnosis` limiter, per cluster)."""
from __future__ import annotations

from chalicelib.api.responses import ok
from chalicelib.api.routing import current_request
from chalicelib.http import parse_body
from chalicelib.models import DiagnoseRequest
from chalicelib.services.diagnosis import DiagnosisService

service = DiagnosisService()


def diagnose_cluster():
    return ok(service.diagnose(parse_body(current_request(), DiagnoseRequest).cluster_id))
