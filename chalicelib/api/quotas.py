"""/api/v1/quotas: the limits of a tenant or a cluster, with their defaults and current usage (issue 18).

Reading: any member of a tenant, for its own tenant or one of its clusters (a platform admin: any tenant).
Changing: platform admins only (`chalicelib/api/access.py`), so that a tenant cannot lift its own limits.
"""
from __future__ import annotations

from typing import Any

from chalicelib.api.openapi import Operation, document
from chalicelib.api.routing import current_request
from chalicelib.http import parse_body, parse_query
from chalicelib.models.requests import QuotaQuery, QuotaUpdate
from chalicelib.auth.principal import current_principal, is_platform_admin
from chalicelib.errors import PermissionDeniedError
from chalicelib.services.quotas import QuotaService
from chalicelib.tenancy import owner_tenant

document(
    Operation("GET", "/api/v1/quotas", "A tenant's or a cluster's quotas, their defaults and current usage", "quotas",
              None, query=QuotaQuery, notes="`{scope, limits, defaults, usage}`; without a scope, the caller's tenant."),
    Operation("PUT", "/api/v1/quotas", "Set some quotas of a tenant or a cluster (admin)", "quotas", None,
              body=QuotaUpdate, notes="Answers as GET. Limits: droplets, replicas, concurrent_jobs, deployments."),
)
service = QuotaService()


def get_quotas() -> dict[str, Any]:
    """`{scope, limits, defaults, usage}` of `?tenant_id=` (the caller's tenant) or `?cluster_id=`."""
    return service.describe(*_own_scope(parse_query(current_request(), QuotaQuery).resolve(owner_tenant())))


def put_quotas() -> dict[str, Any]:
    """Set some limits of one scope: `{"tenant_id"|"cluster_id", "limits": {name: n}}`; answers as GET."""
    body = parse_body(current_request(), QuotaUpdate)
    return service.set(*body.resolve(owner_tenant()), dict(body.limits))


def _own_scope(scope: tuple[str, str]) -> tuple[str, str]:
    """A tenant other than the caller's is a platform admin's business only (a cluster of another tenant is
    simply not found, by the repositories' confinement)."""
    scope_type, scope_id = scope
    if scope_type == "tenant" and scope_id != owner_tenant() and not is_platform_admin(current_principal()):
        raise PermissionDeniedError("a caller reads its own tenant's quotas only")
    return scope
