"""/api/v1/billing"""
from __future__ import annotations

from chalicelib.api.openapi import Operation, document
from chalicelib.api.responses import ok
from chalicelib.api.routing import current_request
from chalicelib.http import parse_query
from chalicelib.models.control_plane import BillingQuery, BillingReport
from chalicelib.services.billing import BillingService

service = BillingService()

document(Operation("GET", "/api/v1/billing/cluster", "A cluster's hourly, monthly and accrued cost", "billing",
                   BillingReport, query=BillingQuery))


def cluster_bill():
    return ok(service.cluster_bill(parse_query(current_request(), BillingQuery).cluster_id))
