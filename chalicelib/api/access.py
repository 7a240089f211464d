"""Who may call each route: the one route -> required access table (issue 13), next to the route table.

Levels: PUBLIC (no credential), VIEWER (read within the tenant), OPERATOR (change clusters, droplets, jobs,
deployments, policies within the tenant), ADMIN (the tenant's keys and audit log) and PLATFORM (an admin of
the platform tenant, `CG_AUTH_PLATFORM_TENANT`: config shared by every tenant - rate limits, the provider
catalogue, the observability routes). tests/fast/test_access.py fails when a route has no entry here.
The routes `chalicelib.api.edge_routes` adds (preflights, 405s, 404 catch-alls) are public: they serve no data.
"""
from __future__ import annotations

PUBLIC, VIEWER, OPERATOR, ADMIN, PLATFORM = "public", "viewer", "operator", "admin", "platform"

ROUTE_ACCESS: dict[tuple[str, str], str] = {
    # Public: the OpenAPI document and the Prometheus scrape (process-wide series only, no tenant data).
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("HEAD", "/metrics"): PUBLIC,
    # Clusters and what follows them.
    ("GET", "/api/v1/clusters"): VIEWER,
    ("POST", "/api/v1/clusters"): OPERATOR,
    ("GET", "/api/v1/clusters/{cluster_id}"): VIEWER,
    ("PUT", "/api/v1/clusters/{cluster_id}"): OPERATOR,
    ("DELETE", "/api/v1/clusters/{cluster_id}"): OPERATOR,
    ("GET", "/api/v1/health/{cluster_id}"): VIEWER,  # one cluster's health: tenant data, so not public
    ("GET", "/api/v1/droplets"): VIEWER,
    ("POST", "/api/v1/droplets"): OPERATOR,
    ("GET", "/api/v1/droplets/{droplet_id}"): VIEWER,
    ("DELETE", "/api/v1/droplets/{droplet_id}"): OPERATOR,
    ("GET", "/api/v1/jobs"): VIEWER,
    ("POST", "/api/v1/jobs"): OPERATOR,
    ("GET", "/api/v1/jobs/{job_id}"): VIEWER,
    ("GET", "/api/v1/jobs/{job_id}/logs"): VIEWER,
    ("GET", "/api/v1/jobs/{job_id}/event-state"): VIEWER,
    ("GET", "/api/v1/metrics"): VIEWER,
    ("POST", "/api/v1/diagnosis/diagnose"): VIEWER,  # reads a cluster's metrics, changes nothing
    ("GET", "/api/v1/billing/cluster"): VIEWER,
    ("POST", "/api/v1/hello"): VIEWER,
    ("GET", "/api/v1/autoscaling/policies"): VIEWER,
    ("POST", "/api/v1/autoscaling/policies"): OPERATOR,
    ("GET", "/api/v1/autoscaling/policies/{policy_id}"): VIEWER,
    ("PUT", "/api/v1/autoscaling/policies/{policy_id}"): OPERATOR,
    ("DELETE", "/api/v1/autoscaling/policies/{policy_id}"): OPERATOR,
    ("POST", "/api/v1/autoscaling/evaluate"): OPERATOR,
    ("GET", "/api/v1/deployments"): VIEWER,
    ("POST", "/api/v1/deployments/start"): OPERATOR,
    ("GET", "/api/v1/deployments/{deployment_id}"): VIEWER,
    ("POST", "/api/v1/deployments/{deployment_id}/rollback"): OPERATOR,
    ("POST", "/api/v1/schedule"): OPERATOR,
    ("POST", "/api/v1/migrations"): OPERATOR,
    ("GET", "/api/v1/providers"): VIEWER,
    ("GET", "/api/v1/quotas"): VIEWER,  # the caller's own tenant or one of its clusters
    # Shared by every tenant: platform admins only.
    ("POST", "/api/v1/providers"): PLATFORM,
    ("DELETE", "/api/v1/providers/{name}"): PLATFORM,
    ("PUT", "/api/v1/quotas"): PLATFORM,  # a tenant must not lift its own limits
    ("GET", "/api/v1/observability/ratelimit"): PLATFORM,
    ("POST", "/api/v1/observability/ratelimit/config"): PLATFORM,
    ("GET", "/api/v1/observability/ratelimit/config"): PLATFORM,
    ("DELETE", "/api/v1/observability/ratelimit/config"): PLATFORM,
    ("GET", "/api/v1/observability/ratelimit/config/list"): PLATFORM,
    ("GET", "/api/v1/observability/workerpool"): PLATFORM,
    # Identity and access.
    ("GET", "/api/v1/auth/whoami"): VIEWER,
    ("GET", "/api/v1/auth/keys"): ADMIN,
    ("POST", "/api/v1/auth/keys"): ADMIN,
    ("DELETE", "/api/v1/auth/keys/{key_id}"): ADMIN,
    ("GET", "/api/v1/audit"): ADMIN,
}


def required_access(method: str, path: str) -> str:
    """The level a route needs; a route missing from the table needs PLATFORM (closed, never open)."""
    return ROUTE_ACCESS.get((method, path), PLATFORM)
