"""QuotaService: what one tenant and one cluster may hold (issue 18), enforced on the server.

Four limits, each per cluster and per tenant, with built-in defaults that an admin overrides one at a time
(`PUT /api/v1/quotas`, stored in the `quotas` table):

- `droplets`: droplets not deleted;
- `replicas`: the largest scale target (`replicas`, `min_replicas`, or the current count plus `delta`) a
  scale job may ask for;
- `concurrent_jobs`: jobs `queued` or `processing` (the work a caller asks for: `terminate` jobs, which a
  deletion queues one per machine, do not count);
- `deployments`: deployments under way (`pending`, `running`, `rolling_back`).

A request beyond a limit is a 409 naming it (QuotaExceededError), checked when the job is requested
(JobService.submit, POST /droplets, POST /deployments/start) and again when it runs (the job runners).

Tenants (issue 13): a cluster's tenant limits are its owner's (`clusters.tenant_id`), also when a worker
enforces them; a droplet without a cluster counts for the tenant of the request (`tenancy.owner_tenant`).
Reading a tenant's quotas is for its own members; changing any is for platform admins (a tenant's admin must
not lift its own limits).
"""
from __future__ import annotations

from typing import Any

from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.repositories.quotas import QuotaRepository
from chalicelib.tenancy import owner_tenant
LIMITS = ("droplets", "replicas", "concurrent_jobs", "deployments")
DEFAULTS: dict[str, dict[str, int]] = {
    "cluster": {"droplets": 50, "replicas": 50, "concurrent_jobs": 10, "deployments": 3},
    "tenant": {"droplets": 1000, "replicas": 100, "concurrent_jobs": 100, "deployments": 50},
}
# Job types that count as concurrent jobs (see the module's docstring).
COUNTED_JOB_TYPES = ("provision", "scale", "diagnose", "monitor", "migrate", "deploy")
MAX_LIMIT = 1_000_000


class QuotaExceededError(ConflictError):
    """The request would take a tenant or a cluster beyond one of its limits; nothing was written."""

    def __init__(self, scope: str, limit: str, allowed: int, wanted: int) -> None:
        super().__init__(f"quota exceeded: {limit} limit of {scope} is {allowed}, this request needs {wanted}")
        self.limit = limit


class QuotaService:
    def __init__(self, quotas: QuotaRepository | None = None) -> None:
        self.quotas = quotas or QuotaRepository()

    # --- reading and setting (the admin route) -----------------------------------------------------------
    def limits(self, scope_type: str, scope_id: str) -> dict[str, int]:
        """The effective limits of a scope: stored ones over the defaults."""
        return {**DEFAULTS[scope_type], **self.quotas.stored(scope_type, scope_id)}

    def usage(self, scope_type: str, scope_id: str) -> dict[str, int]:
        if scope_type == "cluster":
            return self.quotas.cluster_usage(scope_id, COUNTED_JOB_TYPES)
        return self.quotas.tenant_usage(scope_id, COUNTED_JOB_TYPES)

    def describe(self, scope_type: str, scope_id: str) -> dict[str, Any]:
        """`{scope, limits, defaults, usage}` of one scope (404 for a cluster that does not exist)."""
        if scope_type == "cluster":
            self._require_cluster(scope_id)
        return {"scope": f"{scope_type}:{scope_id}", "limits": self.limits(scope_type, scope_id),
                "defaults": DEFAULTS[scope_type], "usage": self.usage(scope_type, scope_id)}

    def set(self, scope_type: str, scope_id: str, limits: dict[str, int]) -> dict[str, Any]:
        if scope_type == "cluster":
            self._require_cluster(scope_id)
        self.quotas.store(scope_type, scope_id, limits)
        return self.describe(scope_type, scope_id)

    @staticmethod
    def _require_cluster(cluster_id: str) -> None:
        from chalicelib.repositories import ClusterRepository

        if not ClusterRepository().exists(cluster_id):
            raise NotFoundError("Cluster not found")

    # --- enforcing -----------------------------------------------------------------------------------------
    def _read(self, cluster_id: str) -> dict[str, Any]:
        """The cluster's and its tenant's stored limits and usage, read in one statement (issue 16)."""
        return self.quotas.scopes(cluster_id, owner_tenant(), COUNTED_JOB_TYPES)

    def _check(self, cluster_id: str, limit: str, extra: int, *, absolute: int | None = None,
               scopes: dict[str, Any] | None = None) -> None:
        """Raise QuotaExceededError unless usage + `extra` (or `absolute`) is within `limit` in every scope.

        `scopes`: what `_read` returned for this cluster, when the caller checks several limits at once."""
        scopes = scopes or self._read(cluster_id)
        for scope_type, scope_id in (("cluster", cluster_id), ("tenant", scopes["tenant"])):
            allowed = {**DEFAULTS[scope_type], **scopes["stored"][scope_type]}[limit]
            wanted = absolute if absolute is not None else scopes["usage"][scope_type][limit] + extra
            if wanted > allowed:
                raise QuotaExceededError(f"{scope_type} {scope_id}", limit, allowed, wanted)

    def check_job(self, job_type: str, cluster_id: str, parameters: dict[str, str]) -> None:
        """A job about to be requested: room for one more concurrent job, and for what a scale or a new
        droplet would add. A job type not counted (terminate) is always admitted. Every limit is checked
        against one read (one statement, one snapshot; issue 16), inside the caller's unit of work if any."""
        if job_type not in COUNTED_JOB_TYPES:
            return
        scopes = self._read(cluster_id)
        self._check(cluster_id, "concurrent_jobs", 1, scopes=scopes)
        if job_type == "scale":
            live = scopes["usage"]["cluster"]["droplets"]
            self.check_scale(cluster_id, scale_target(parameters, live), live, scopes=scopes)
        elif job_type == "provision" and not parameters.get("droplet_id"):
            self.check_new_droplets(cluster_id, 1, scopes=scopes)

    def check_scale(self, cluster_id: str, target: int, live: int, *, scopes: dict[str, Any] | None = None) -> None:
        """A scale of the cluster to `target` droplets, from `live`."""
        scopes = scopes or self._read(cluster_id)
        self._check(cluster_id, "replicas", 0, absolute=target, scopes=scopes)
        if target > live:
            self.check_new_droplets(cluster_id, target - live, scopes=scopes)

    def check_new_droplets(self, cluster_id: str | None, count: int, *, scopes: dict[str, Any] | None = None) -> None:
        """`count` more droplets in the cluster (a droplet without a cluster counts for the request's tenant)."""
        if cluster_id is None:
            tenant = owner_tenant()
            allowed = self.limits("tenant", tenant)["droplets"]
            wanted = self.usage("tenant", tenant)["droplets"] + count
            if wanted > allowed:
                raise QuotaExceededError(f"tenant {tenant}", "droplets", allowed, wanted)
            return
        self._check(cluster_id, "droplets", count, scopes=scopes)

    def check_deployment(self, cluster_id: str) -> None:
        self._check(cluster_id, "deployments", 1)


def scale_target(parameters: dict[str, str], live: int) -> int:
    """The largest count a scale job's parameters ask for (replicas, min_replicas, or live + delta);
    unparsable numbers count as nothing here (the job's own validation refuses them)."""
    def number(name: str) -> int | None:
        try:
            return int(parameters[name])
        except (KeyError, ValueError):
            return None

    replicas, minimum, delta = number("replicas"), number("min_replicas"), number("delta")
    target = replicas if replicas is not None else live + (delta if delta is not None else 1)
    return max(target, minimum or 0)
