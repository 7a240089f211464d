"""/api/v1/diagnosis (rate limited by the `diagnosis` limiter, per cluster)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.responses import ok
from chalicelib.http import parse_body
from chalicelib.models import DiagnoseRequest
from chalicelib.services.diagnosis import DiagnosisService

bp = Blueprint(__name__)
service = DiagnosisService()


@bp.route("/diagnosis/diagnose", methods=["POST"])
def diagnose_cluster():
    return ok(service.diagnose(parse_body(bp.current_request, DiagnoseRequest).cluster_id))
