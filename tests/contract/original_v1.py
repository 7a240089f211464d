"""The original ClusterGenie's v1 response shapes, as JSON Schema, written from shared/reference/api-v1-wire.md.

One schema per response, keyed by (method, path template) as our routes spell them. What the reference
calls "always" is `required`; "omitempty" keys are optional but, when present, never null; "nullable" keys
may be null. `additionalProperties` stays open: we may add fields, never drop or retype theirs.

Status vocabularies are the original's words plus the additions README lists (a droplet can also be
`error`, `deleting` or `deleted`; a cluster `deleting`; a deployment `rolling_back`; a health report
`unknown`; jobs of our own types `migrate`, `deploy` and `terminate`).

Used twice: `tests/fast/test_v1_contract_openapi.py` checks our OpenAPI document against these shapes, and
`tests/localstack/test_v1_contract.py` validates live responses through API Gateway with them.
"""
from __future__ import annotations

from typing import Any

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"}
STRINGS = {"type": "array", "items": STRING}


def obj(always: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": sorted(always), "properties": {**always, **(optional or {})}}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


CLUSTER = obj({"id": STRING, "name": STRING, "region": STRING, "droplets": nullable(STRINGS),
               "status": {"type": "string", "enum": ["healthy", "warning", "critical", "deleting"]}, "last_checked": TIME})
DROPLET = obj(
    {"id": STRING, "name": STRING, "region": STRING, "size": STRING, "image": STRING, "created_at": TIME,
     "status": {"type": "string", "enum": ["provisioning", "active", "error", "deleting", "deleted"]}},
    {"cluster_id": STRING, "cluster": CLUSTER, "provider": STRING, "ip_address": STRING},
)
JOB = obj(
    {"id": STRING, "cluster_id": STRING, "type": {"type": "string", "enum": ["provision", "diagnose", "scale", "monitor",
                                                                           "migrate", "deploy", "terminate"]},
     "status": {"type": "string", "enum": ["pending", "queued", "queued_rejected", "running", "completed", "failed"]},
     "created_at": TIME, "progress": {"type": "integer", "minimum": 0, "maximum": 100}},
    {"completed_at": TIME, "result": STRING, "error": STRING, "trace_id": STRING, "parameters": STRING},
)
METRIC = obj({"id": STRING, "cluster_id": STRING, "type": STRING, "value": NUMBER, "timestamp": TIME, "unit": STRING})
POLICY = obj({"id": STRING, "name": STRING, "cluster_id": STRING, "type": STRING, "enabled": BOOLEAN,
              "min_replicas": INTEGER, "max_replicas": INTEGER, "metric_type": STRING, "metric_trigger": NUMBER,
              "time_window": STRING, "cost_limit": NUMBER, "created_at": TIME, "updated_at": TIME})
PROVIDER = obj({"id": STRING, "name": STRING, "regions": nullable(STRINGS), "capacity": INTEGER, "used": INTEGER,
                "classes": nullable(STRINGS), "price_per_hour": NUMBER})
DEPLOYMENT = obj({"id": STRING, "cluster_id": STRING, "version": STRING, "strategy": STRING, "target_percent": INTEGER,
                  "status": {"type": "string", "enum": ["pending", "in-progress", "rolled_out", "failed", "rolled_back",
                                                        "rolling_back"]},
                  "started_at": TIME, "updated_at": TIME, "logs": STRINGS})


def envelope(key: str, schema: dict[str, Any], message: bool = True) -> dict[str, Any]:
    return obj({key: schema, **({"message": STRING} if message else {})})


def items(schema: dict[str, Any]) -> dict[str, Any]:
    return obj({"items": {"type": "array", "items": schema}})


V1 = "/api/v1"
# (method, path) -> (success status, response schema)
RESPONSES: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {
    ("POST", V1 + "/hello"): (200, obj({"message": {"type": "string", "pattern": "^Hello, .* from ClusterGenie!$"}})),
    ("POST", V1 + "/droplets"): (201, envelope("droplet", DROPLET)),
    ("GET", V1 + "/droplets"): (200, obj({"droplets": {"type": "array", "items": DROPLET}})),
    ("GET", V1 + "/droplets/{droplet_id}"): (200, envelope("droplet", DROPLET)),
    ("DELETE", V1 + "/droplets/{droplet_id}"): (200, obj({"message": STRING})),
    ("POST", V1 + "/clusters"): (201, envelope("cluster", CLUSTER)),
    ("GET", V1 + "/clusters"): (200, obj({"clusters": {"type": "array", "items": CLUSTER}})),
    ("GET", V1 + "/clusters/{cluster_id}"): (200, envelope("cluster", CLUSTER)),
    ("PUT", V1 + "/clusters/{cluster_id}"): (200, envelope("cluster", CLUSTER)),
    ("DELETE", V1 + "/clusters/{cluster_id}"): (200, obj({"message": STRING})),
    ("GET", V1 + "/health/{cluster_id}"): (200, obj({
        "cluster_id": STRING, "status": {"type": "string", "enum": ["healthy", "warning", "critical", "unknown"]},
        "issues": nullable(STRINGS), "timestamp": TIME})),
    ("POST", V1 + "/diagnosis/diagnose"): (200, obj({"cluster": CLUSTER, "insights": nullable(STRINGS),
                                                     "recommendations": nullable(STRINGS)})),
    ("POST", V1 + "/jobs"): (201, envelope("job", JOB)),
    ("GET", V1 + "/jobs/{job_id}"): (200, envelope("job", JOB)),
    ("GET", V1 + "/jobs"): (200, obj({"jobs": {"type": "array", "items": JOB}, "page": INTEGER, "page_size": INTEGER,
                                      "total": INTEGER})),
    ("GET", V1 + "/metrics"): (200, obj({"metrics": {"type": "array", "items": METRIC}, "period": {"const": "1h"},
                                         "page": INTEGER, "page_size": INTEGER, "total_count": INTEGER})),
    ("POST", V1 + "/autoscaling/policies"): (201, POLICY),
    ("GET", V1 + "/autoscaling/policies"): (200, items(POLICY)),
    ("GET", V1 + "/autoscaling/policies/{policy_id}"): (200, POLICY),
    ("PUT", V1 + "/autoscaling/policies/{policy_id}"): (200, POLICY),
    ("DELETE", V1 + "/autoscaling/policies/{policy_id}"): (200, obj({"deleted": STRING, "ok": {"const": True}})),
    ("POST", V1 + "/autoscaling/evaluate"): (200, obj({"actions": STRINGS, "cluster_id": STRING, "evaluated": INTEGER})),
    ("GET", V1 + "/providers"): (200, items(PROVIDER)),
    ("POST", V1 + "/providers"): (201, PROVIDER),
    ("POST", V1 + "/schedule"): (200, obj({"provider": PROVIDER, "region": STRING})),
    ("POST", V1 + "/migrations"): (200, obj({"ok": {"const": True}})),
    ("GET", V1 + "/billing/cluster"): (200, obj({
        "cluster_id": STRING, "droplet_count": INTEGER,
        "hourly_cost": {"type": "string", "pattern": r"^\d+\.\d{4}$"},
        "monthly_cost": {"type": "string", "pattern": r"^\d+\.\d{2}$"}})),
    ("POST", V1 + "/deployments/start"): (201, DEPLOYMENT),
    ("GET", V1 + "/deployments/{deployment_id}"): (200, DEPLOYMENT),
    ("GET", V1 + "/deployments"): (200, items(DEPLOYMENT)),
    ("POST", V1 + "/deployments/{deployment_id}/rollback"): (200, obj({"ok": {"const": True}, "rolled_back": STRING})),
    ("GET", V1 + "/observability/workerpool"): (200, obj({
        "active_workers": INTEGER, "queue_capacity": INTEGER, "queue_length": INTEGER, "queued_ids": STRINGS,
        "worker_count": INTEGER})),
    ("GET", V1 + "/observability/ratelimit"): (200, obj({"available": NUMBER, "capacity": NUMBER, "name": STRING,
                                                          "rate_per_sec": NUMBER})),
}
ERROR = obj({"error": STRING})
