"""/api/v1/autoscaling: policies (CRUD) and on-demand evaluation."""
from __future__ import annotations

from chalicelib.api.openapi import Operation, document
from chalicelib.api.responses import created, ok
from chalicelib.api.routing import current_request
from chalicelib.http import parse_body, parse_query, request_id
from chalicelib.models.control_plane import (
    CreatePolicyRequest, Deleted, EvaluateQuery, EvaluationOut, Policy, PolicyList, PolicyListQuery, UpdatePolicyRequest,
)
from chalicelib.services.autoscaling import AutoscalingService

service = AutoscalingService()

_P = "/api/v1/autoscaling/policies"
document(
    Operation("POST", _P, "Create an autoscaling policy", "autoscaling", Policy, 201, body=CreatePolicyRequest),
    Operation("GET", _P, "List a cluster's policies", "autoscaling", PolicyList, query=PolicyListQuery),
    Operation("GET", _P + "/{policy_id}", "Get a policy", "autoscaling", Policy),
    Operation("PUT", _P + "/{policy_id}", "Update a policy (fields merged, then validated whole)", "autoscaling",
              Policy, body=UpdatePolicyRequest),
    Operation("DELETE", _P + "/{policy_id}", "Delete a policy", "autoscaling", Deleted),
    Operation("POST", "/api/v1/autoscaling/evaluate", "Evaluate a cluster's policies; enqueue the scale job",
              "autoscaling", EvaluationOut, query=EvaluateQuery),
)


def create_policy():
    return created(service.create(parse_body(current_request(), CreatePolicyRequest)))


def list_policies():
    return ok(PolicyList(items=service.list(parse_query(current_request(), PolicyListQuery).cluster_id)))


def get_policy(policy_id: str):
    return ok(service.get(policy_id))


def update_policy(policy_id: str):
    return ok(service.update(policy_id, parse_body(current_request(), UpdatePolicyRequest)))


def delete_policy(policy_id: str):
    service.delete(policy_id)
    return ok(Deleted(ok=True, deleted=policy_id, message="Policy deleted successfully"))


def evaluate():
    request = current_request()
    result = service.evaluate(parse_query(request, EvaluateQuery).cluster_id, correlation_id=request_id(request))
    return ok(EvaluationOut.model_validate(result))
