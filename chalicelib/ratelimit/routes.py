"""The table of rate-limited routes: the one place to edit when a route gains or loses a limit.

Each entry names the limiter and how to find the scope in the request. A scope function returns None
when the request does not say (e.g. a body that is not JSON): the request then goes on unlimited to the
route, whose own validation answers 400.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from chalice.app import Request

from chalicelib.errors import ClusterGenieError
from chalicelib.http import caller_id, json_body
from chalicelib.ratelimit.config import MAX_SCOPE_ID_LENGTH, Scope


@dataclass(frozen=True)
class LimitedRoute:
    method: str
    path: str  # the route template as Chalice sees it (`request.path`), prefix included
    limiter: str
    scope_of: Callable[[Request], Scope | None]


def per_caller(request: Request) -> Scope:
    """One bucket per caller, as `chalicelib.http.caller_id` identifies them."""
    return Scope("user", caller_id(request))


def per_cluster_in_body(request: Request) -> Scope | None:
    """One bucket per `cluster_id` named in the JSON body."""
    try:
        body = json_body(request)
    except ClusterGenieError:  # too large, not JSON, too deep: the route itself answers
        return None
    cluster_id = body.get("cluster_id") if isinstance(body, dict) else None
    if not isinstance(cluster_id, str) or not cluster_id.strip() or len(cluster_id) > MAX_SCOPE_ID_LENGTH:
        return None
    return Scope("cluster", cluster_id.strip())


# Every write route has its entry (issue 18; tests/fast/test_hardening.py checks none is missing). The two
# of the v1 contract keep their limiters; every other write is limited per caller by the limiter of its
# resource (defaults in `config.DEFAULTS`, overridable per scope like any limiter).
LIMITED_ROUTES: tuple[LimitedRoute, ...] = (
    LimitedRoute("POST", "/api/v1/jobs", "jobs_create", per_caller),
    LimitedRoute("POST", "/api/v1/diagnosis/diagnose", "diagnosis", per_cluster_in_body),
    LimitedRoute("POST", "/api/v1/clusters", "clusters_write", per_caller),
    LimitedRoute("PUT", "/api/v1/clusters/{cluster_id}", "clusters_write", per_caller),
    LimitedRoute("DELETE", "/api/v1/clusters/{cluster_id}", "clusters_write", per_caller),
    LimitedRoute("POST", "/api/v1/droplets", "droplets_write", per_caller),
    LimitedRoute("DELETE", "/api/v1/droplets/{droplet_id}", "droplets_write", per_caller),
    LimitedRoute("POST", "/api/v1/autoscaling/policies", "policies_write", per_caller),
    LimitedRoute("PUT", "/api/v1/autoscaling/policies/{policy_id}", "policies_write", per_caller),
    LimitedRoute("DELETE", "/api/v1/autoscaling/policies/{policy_id}", "policies_write", per_caller),
    LimitedRoute("POST", "/api/v1/autoscaling/evaluate", "autoscaling_evaluate", per_caller),
    LimitedRoute("POST", "/api/v1/deployments/start", "deployments_write", per_caller),
    LimitedRoute("POST", "/api/v1/deployments/{deployment_id}/rollback", "deployments_write", per_caller),
    LimitedRoute("POST", "/api/v1/providers", "providers_write", per_caller),
    LimitedRoute("DELETE", "/api/v1/providers/{name}", "providers_write", per_caller),
    LimitedRoute("POST", "/api/v1/schedule", "schedule", per_caller),
    LimitedRoute("POST", "/api/v1/migrations", "migrations_create", per_caller),
    LimitedRoute("POST", "/api/v1/hello", "hello", per_caller),
    LimitedRoute("POST", "/api/v1/observability/ratelimit/config", "ratelimit_config_write", per_caller),
    LimitedRoute("DELETE", "/api/v1/observability/ratelimit/config", "ratelimit_config_write", per_caller),
    LimitedRoute("PUT", "/api/v1/quotas", "quotas_write", per_caller),
    LimitedRoute("POST", "/api/v1/auth/keys", "keys_write", per_caller),
    LimitedRoute("DELETE", "/api/v1/auth/keys/{key_id}", "keys_write", per_caller),
)
