"""/api/v1/billing"""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.openapi import Operation, document
from chalicelib.api.responses import ok
from chalicelib.http import parse_query
from chalicelib.models.control_plane import BillingQuery, BillingReport
from chalicelib.services.billing import BillingService

bp = Blueprint(__name__)
service = BillingService()

document(Operation("GET", "/api/v1/billing/cluster", "A cluster's hourly, monthly and accrued cost", "billing",
                   BillingReport, query=BillingQuery))


@bp.route("/billing/cluster", methods=["GET"])
def cluster_bill():
    return ok(service.cluster_bill(parse_query(bp.current_request, BillingQuery).cluster_id))
