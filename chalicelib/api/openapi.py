"""The OpenAPI 3 document of the API, served at /api/v1/openapi.json.

Schemas come from the pydantic request and response models; paths come from the route table below.
`tests/fast/test_api_openapi.py` checks that this table and the app's registered routes are the same
set, so a route cannot be added without being documented. Resource modules owned elsewhere add their own
operations with `document(...)` at import time; the document imports every declared resource module first
(`routing.load_all_resources`), since app.py imports them only on their first call.
"""
from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field
from typing import Any

from chalice import Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib import models as m
from chalicelib.api.access import PUBLIC, required_access
from chalicelib.api.routing import load_all_resources
from chalicelib.http import JSON_HEADERS
from chalicelib.idempotency import CREATE_ROUTES

API_PREFIX = "/api/v1"
_REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the full path, as registered with Chalice
    summary: str
    tag: str
    response: type[BaseModel] | None  # None: a free-form JSON object
    status: int = 200
    body: type[BaseModel] | None = None
    free_form_body: bool = False  # a JSON object body with no published schema
    query: type[BaseModel] | None = None
    notes: str = ""
    # OpenAPI links from the success response to the operations that take what it returned.
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    content_type: str = "application/json"  # of the success response; anything else is documented as text
    paged: bool = False  # a page of a list: X-Total-Count and Link headers (issue 18)


def _v1(path: str) -> str:
    return API_PREFIX + path


_CLUSTER_ID = "$response.body#/cluster/id"
_CLUSTER_LINKS = {
    "GetCluster": {"operationId": "get_clusters_cluster_id", "parameters": {"cluster_id": _CLUSTER_ID}},
    "UpdateCluster": {"operationId": "put_clusters_cluster_id", "parameters": {"cluster_id": _CLUSTER_ID}},
    "DeleteCluster": {"operationId": "delete_clusters_cluster_id", "parameters": {"cluster_id": _CLUSTER_ID}},
    "ClusterHealth": {"operationId": "get_health_cluster_id", "parameters": {"cluster_id": _CLUSTER_ID}},
    "ClusterDroplets": {"operationId": "get_droplets", "parameters": {"cluster_id": _CLUSTER_ID}},
    "ClusterMetrics": {"operationId": "get_metrics", "parameters": {"cluster_id": _CLUSTER_ID}},
    "DiagnoseCluster": {"operationId": "post_diagnosis_diagnose", "requestBody": {"cluster_id": _CLUSTER_ID}},
    "CreateDropletInCluster": {"operationId": "post_droplets", "requestBody": {
        "name": "linked", "region": "nyc3", "size": "s-1vcpu-1gb", "cluster_id": _CLUSTER_ID}},
    "CreateJobForCluster": {"operationId": "post_jobs", "requestBody": {
        "type": "monitor", "parameters": {"cluster_id": _CLUSTER_ID}}},
}
_DROPLET_LINKS = {
    "GetDroplet": {"operationId": "get_droplets_droplet_id", "parameters": {"droplet_id": "$response.body#/droplet/id"}},
    "DeleteDroplet": {"operationId": "delete_droplets_droplet_id",
                      "parameters": {"droplet_id": "$response.body#/droplet/id"}},
}
_JOB_LINKS = {"GetJob": {"operationId": "get_jobs_job_id", "parameters": {"job_id": "$response.body#/job/id"}}}

_OPERATIONS: list[Operation] = [
    Operation("POST", _v1("/clusters"), "Create a cluster", "clusters", m.ClusterEnvelope, 201, body=m.CreateClusterRequest,
              links=_CLUSTER_LINKS),
    Operation("GET", _v1("/clusters"), "List clusters (paged)", "clusters", m.ClusterList, query=m.ClusterListQuery,
              paged=True),
    Operation("GET", _v1("/clusters/{cluster_id}"), "Get a cluster", "clusters", m.ClusterEnvelope),
    Operation("PUT", _v1("/clusters/{cluster_id}"), "Update a cluster (409 when a concurrent update won)", "clusters",
              m.ClusterEnvelope, body=m.UpdateClusterRequest),
    Operation("DELETE", _v1("/clusters/{cluster_id}"), "Delete a cluster with its droplets, jobs and metrics",
              "clusters", m.Deletion, notes="With machines running, `terminate` jobs stop them first (`job_ids`)."),
    Operation("POST", _v1("/droplets"), "Create a droplet", "droplets", m.DropletEnvelope, 201, body=m.CreateDropletRequest,
              links=_DROPLET_LINKS),
    Operation("GET", _v1("/droplets"), "List droplets (paged)", "droplets", m.DropletList, query=m.DropletListQuery,
              paged=True),
    Operation("GET", _v1("/droplets/{droplet_id}"), "Get a droplet", "droplets", m.DropletEnvelope),
    Operation("DELETE", _v1("/droplets/{droplet_id}"), "Delete a droplet (its machine is stopped by a job)", "droplets",
              m.Deletion),
    Operation("POST", _v1("/jobs"), "Create a job (stored as queued, then enqueued)", "jobs", m.JobEnvelope, 201,
              body=m.CreateJobRequest, notes="Rate limited by `jobs_create`, per caller (the authenticated principal).", links=_JOB_LINKS),
    Operation("GET", _v1("/jobs"), "List jobs (paged, sorted on allow-listed columns)", "jobs", m.JobPage,
              query=m.JobListQuery),
    Operation("GET", _v1("/jobs/{job_id}"), "Get a job", "jobs", m.JobEnvelope),
    Operation("GET", _v1("/metrics"), "List stored metric samples", "monitoring", m.MetricPage, query=m.MetricListQuery),
    Operation("GET", _v1("/health/{cluster_id}"), "Cluster health from the latest samples", "monitoring", m.HealthReport),
    Operation("POST", _v1("/diagnosis/diagnose"), "Diagnose a cluster", "diagnosis", m.DiagnosisReport,
              body=m.DiagnoseRequest, notes="Rate limited by `diagnosis`, per cluster."),
    Operation("GET", _v1("/openapi.json"), "This document", "meta", None),
    # The rate limiter's blueprint (chalicelib/api/observability.py) documents its shapes loosely here
    # until it publishes models of its own through `document(...)`.
    Operation("GET", _v1("/observability/ratelimit"), "A rate-limit bucket's state", "observability", None),
    Operation("POST", _v1("/observability/ratelimit/config"), "Store a limiter config override", "observability",
              None, free_form_body=True),
    Operation("GET", _v1("/observability/ratelimit/config"), "Get a limiter config override", "observability", None),
    Operation("DELETE", _v1("/observability/ratelimit/config"), "Delete a limiter config override",
              "observability", None),
    Operation("GET", _v1("/observability/ratelimit/config/list"), "List limiter config overrides",
              "observability", None),
    Operation("GET", _v1("/observability/workerpool"), "The job queue and jobs by status (the serverless worker pool)",
              "observability", None,
              notes="`{queue_name, dlq_name, queue_length (visible), active_workers (in flight), queue_delayed, "
                    "dlq_depth, queue_error, jobs_by_status}`; queue figures are null with `queue_error` set "
                    "when SQS cannot be asked."),
]


def document(*operations: Operation) -> None:
    """Add operations to the document (for blueprints defined outside this module)."""
    _OPERATIONS.extend(operations)
    openapi_document.cache_clear()


def operations() -> list[Operation]:
    return list(_OPERATIONS)


# Every create takes an Idempotency-Key (chalicelib/idempotency.py, issue 18).
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes the create safe to retry for 24 hours: the same key and request get the first response "
                   "again (`Idempotent-Replayed: true`); the same key with another request is a 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]([ -~]{0,253}[!-~])?$"},
}
_PAGE_HEADERS = {
    "X-Total-Count": {"description": "How many items the whole list has.", "schema": {"type": "integer", "minimum": 0}},
    "Link": {"description": "RFC 8288 links to the `next` and `prev` pages, when there are such pages.",
             "schema": {"type": "string"}},
}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": _REF.format(model=model.__name__)}


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    # Query parameters are either present (a value) or absent; "null" has no spelling in a URL.
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        merged = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**merged, **options[0]}
    return schema


def _never_null(schemas: dict[str, Any], roots: list[str]) -> None:
    """Responses never carry null: `ok()` leaves a None field out (the original's omitempty). So in every
    schema a response reaches, `X | None` is documented as an optional `X`."""
    seen, stack = set(), list(roots)
    while stack:
        name = stack.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        nodes = [schemas[name]]
        while nodes:
            node = nodes.pop()
            if isinstance(node, list):
                nodes.extend(node)
                continue
            if not isinstance(node, dict):
                continue
            if "$ref" in node:
                stack.append(node["$ref"].rsplit("/", 1)[-1])
            options = node.get("anyOf")
            if options and any(o.get("type") == "null" for o in options):
                rest = [o for o in options if o.get("type") != "null"]
                del node["anyOf"]
                if len(rest) == 1:
                    node.update(rest[0])
                else:
                    node["anyOf"] = rest
            nodes.extend(node.values())


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema["properties"].items():
        prop = _non_null(copy.deepcopy(prop))
        prop.pop("title", None)
        params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return params


def _operation_id(op: Operation) -> str:
    # Routes outside /api/v1 (GET /metrics) get a `root_` prefix, distinct from the v1 ones.
    path = op.path[len(API_PREFIX):] if op.path.startswith(API_PREFIX) else "/root" + op.path
    return f"{op.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}"


@functools.lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0 document for every operation in the route table."""
    load_all_resources()
    request_models = {op.body for op in _OPERATIONS if op.body}
    response_models = {op.response for op in _OPERATIONS if op.response} | {m.ErrorResponse}
    inputs = [(model, "validation") for model in sorted(request_models, key=lambda x: x.__name__)]
    outputs = [(model, "serialization") for model in sorted(response_models, key=lambda x: x.__name__)]
    _, defs = models_json_schema(inputs + outputs, ref_template=_REF)
    schemas = defs.get("$defs", {})
    _never_null(schemas, [model.__name__ for model in response_models])

    paths: dict[str, dict[str, Any]] = {}
    for op in _OPERATIONS:
        path_params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
            for name in re.findall(r"{(\w+)}", op.path)
        ]
        query_params = _query_parameters(op.query) if op.query else []
        if (op.method, op.path) in CREATE_ROUTES:
            query_params.append(_IDEMPOTENCY_KEY)
        response_schema = _ref(op.response) if op.response else {"type": "object"}
        entry: dict[str, Any] = {
            "operationId": _operation_id(op),
            "summary": op.summary,
            "tags": [op.tag],
            "responses": {
                str(op.status): {"description": op.summary,
                                 "content": _json_content(response_schema) if op.content_type == "application/json"
                                 else {op.content_type: {"schema": {"type": "string"}}},
                                 **({"links": op.links} if op.links else {}),
                                 **({"headers": _PAGE_HEADERS} if op.paged else {})},
                "default": {"description": "error: `{\"error\": ...}`", "content": _json_content(_ref(m.ErrorResponse))},
            },
        }
        level = required_access(op.method, op.path)
        if level == PUBLIC:
            entry["security"] = []
        else:
            # Issue 13: an API key (X-API-Key or Authorization: Bearer) or a bearer token (JWT).
            entry["security"] = [{"ApiKeyHeader": []}, {"BearerAuth": []}]
            entry["x-required-access"] = level
            entry["responses"]["401"] = {"description": "no usable credential (with `WWW-Authenticate`)",
                                         "content": _json_content(_ref(m.ErrorResponse))}
            entry["responses"]["403"] = {"description": f"the credential's role is below `{level}`",
                                         "content": _json_content(_ref(m.ErrorResponse))}
        if op.notes:
            entry["description"] = op.notes
        if path_params or query_params:
            entry["parameters"] = path_params + query_params
        if op.body:
            entry["requestBody"] = {"required": True, "content": _json_content(_ref(op.body))}
        elif op.free_form_body:
            entry["requestBody"] = {"required": True, "content": _json_content({"type": "object"})}
        paths.setdefault(op.path, {})[op.method.lower()] = entry

    return {
        "openapi": "3.0.3",
        "info": {
            "title": "ClusterGenie API",
            "version": "1.0.0",
            "description": "Cluster management: clusters, droplets, jobs, metrics, health and diagnosis. "
                           "Errors are `{\"error\": \"...\"}`; 500s also carry a `request_id`.",
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
        "security": [{"ApiKeyHeader": []}, {"BearerAuth": []}],
    }


SECURITY_SCHEMES = {
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                     "description": "an API key (`cgk_...`), from `./dev apikey create` or POST /api/v1/auth/keys"},
    "BearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "an API key, or a JWT from the configured identity provider"},
}


def get_openapi_document():
    return Response(body=openapi_document(), headers=JSON_HEADERS)
