"""/api/v1/quotas: the limits of a tenant or a cluster, with their defaults and current usage (issue 18).

An admin route: who may call it arrives with identity (issue 13), which guards it where the other admin
routes are guarded; until then it is as open as every other route.
"""
from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.openapi import Operation, document
from chalicelib.http import parse_body, parse_query
from chalicelib.models.requests import QuotaQuery, QuotaUpdate
from chalicelib.services.quotas import DEFAULT_TENANT, QuotaService

bp = Blueprint(__name__)

document(
    Operation("GET", "/api/v1/quotas", "A tenant's or a cluster's quotas, their defaults and current usage", "quotas",
              None, query=QuotaQuery, notes="`{scope, limits, defaults, usage}`; without a scope, the default tenant."),
    Operation("PUT", "/api/v1/quotas", "Set some quotas of a tenant or a cluster (admin)", "quotas", None,
              body=QuotaUpdate, notes="Answers as GET. Limits: droplets, replicas, concurrent_jobs, deployments."),
)
service = QuotaService()


@bp.route("/quotas", methods=["GET"])
def get_quotas() -> dict[str, Any]:
    """`{scope, limits, defaults, usage}` of `?tenant_id=` (default tenant) or `?cluster_id=`."""
    return service.describe(*parse_query(bp.current_request, QuotaQuery).resolve(DEFAULT_TENANT))


@bp.route("/quotas", methods=["PUT"])
def put_quotas() -> dict[str, Any]:
    """Set some limits of one scope: `{"tenant_id"|"cluster_id", "limits": {name: n}}`; answers as GET."""
    body = parse_body(bp.current_request, QuotaUpdate)
    return service.set(*body.resolve(DEFAULT_TENANT), dict(body.limits))
