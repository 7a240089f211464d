"""/api/v1/autoscaling: policies (CRUD) and on-demand evaluation."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.openapi import Operation, document
from chalicelib.api.responses import created, ok
from chalicelib.http import parse_body, parse_query, request_id
from chalicelib.models.control_plane import (
    CreatePolicyRequest, Deleted, EvaluateQuery, EvaluationOut, Policy, PolicyList, PolicyListQuery, UpdatePolicyRequest,
)
from chalicelib.services.autoscaling import AutoscalingService

bp = Blueprint(__name__)
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


@bp.route("/autoscaling/policies", methods=["POST"])
def create_policy():
    return created(service.create(parse_body(bp.current_request, CreatePolicyRequest)))


@bp.route("/autoscaling/policies", methods=["GET"])
def list_policies():
    return ok(PolicyList(items=service.list(parse_query(bp.current_request, PolicyListQuery).cluster_id)))


@bp.route("/autoscaling/policies/{policy_id}", methods=["GET"])
def get_policy(policy_id: str):
    return ok(service.get(policy_id))


@bp.route("/autoscaling/policies/{policy_id}", methods=["PUT"])
def update_policy(policy_id: str):
    return ok(service.update(policy_id, parse_body(bp.current_request, UpdatePolicyRequest)))


@bp.route("/autoscaling/policies/{policy_id}", methods=["DELETE"])
def delete_policy(policy_id: str):
    service.delete(policy_id)
    return ok(Deleted(ok=True, deleted=policy_id, message="Policy deleted successfully"))


@bp.route("/autoscaling/evaluate", methods=["POST"])
def evaluate():
    request = bp.current_request
    result = service.evaluate(parse_query(request, EvaluateQuery).cluster_id, correlation_id=request_id(request))
    return ok(EvaluationOut.model_validate(result))
