"""/api/v1/deployments"""
from __future__ import annotations

from chalicelib.api.openapi import Operation, document
from chalicelib.api.responses import created, ok
from chalicelib.api.routing import current_request
from chalicelib.http import caller_id, parse_body, parse_query
from chalicelib.models.control_plane import (
    DeploymentList, DeploymentListQuery, DeploymentOut, RolledBack, StartDeploymentRequest,
)
from chalicelib.services.deployments import DeploymentService

service = DeploymentService()

document(
    Operation("POST", "/api/v1/deployments/start", "Start a deployment (its steps run as a job)", "deployments",
              DeploymentOut, 201, body=StartDeploymentRequest),
    Operation("GET", "/api/v1/deployments", "List a cluster's deployments, newest first", "deployments",
              DeploymentList, query=DeploymentListQuery),
    Operation("GET", "/api/v1/deployments/{deployment_id}", "Get a deployment with its log", "deployments", DeploymentOut),
    Operation("POST", "/api/v1/deployments/{deployment_id}/rollback", "Reverse a finished deployment's steps (as a job)",
              "deployments", RolledBack, notes="409 unless the deployment succeeded or failed."),
)


def start_deployment():
    request = current_request()
    return created(DeploymentOut.model_validate(service.start(parse_body(request, StartDeploymentRequest),
                                                              caller=caller_id(request))))


def list_deployments():
    return ok(DeploymentList(items=service.list(parse_query(current_request(), DeploymentListQuery).cluster_id)))


def get_deployment(deployment_id: str):
    return ok(DeploymentOut.model_validate(service.get(deployment_id)))


def rollback_deployment(deployment_id: str):
    deployment = service.request_rollback(deployment_id, caller=caller_id(current_request()))
    return ok(RolledBack.model_validate({**DeploymentOut.model_validate(deployment).model_dump(),
                                         "ok": True, "rolled_back": deployment.id}))
