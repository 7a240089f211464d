"""/api/v1/clusters"""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.responses import created, ok
from chalicelib.http import parse_body
from chalicelib.models import ClusterEnvelope, ClusterList, CreateClusterRequest, MessageResponse, UpdateClusterRequest
from chalicelib.services.clusters import ClusterService

bp = Blueprint(__name__)
service = ClusterService()


@bp.route("/clusters", methods=["POST"])
def create_cluster():
    cluster = service.create(parse_body(bp.current_request, CreateClusterRequest))
    return created(ClusterEnvelope(cluster=cluster, message="Cluster created successfully"))


@bp.route("/clusters", methods=["GET"])
def list_clusters():
    return ok(ClusterList(clusters=service.list()))


@bp.route("/clusters/{cluster_id}", methods=["GET"])
def get_cluster(cluster_id: str):
    return ok(ClusterEnvelope(cluster=service.get(cluster_id), message="Cluster retrieved"))


@bp.route("/clusters/{cluster_id}", methods=["PUT"])
def update_cluster(cluster_id: str):
    cluster = service.update(cluster_id, parse_body(bp.current_request, UpdateClusterRequest))
    return ok(ClusterEnvelope(cluster=cluster, message="Cluster updated successfully"))


@bp.route("/clusters/{cluster_id}", methods=["DELETE"])
def delete_cluster(cluster_id: str):
    service.delete(cluster_id)
    return ok(MessageResponse(message="Cluster deleted successfully"))
