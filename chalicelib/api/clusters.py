"""/api/v1/clusters"""
from __future__ import annotations

from chalicelib.api.responses import created, ok, paged
from chalicelib.api.routing import current_request
from chalicelib.http import caller_id, parse_body, parse_query, request_id
from chalicelib.models import (
    ClusterEnvelope, ClusterList, ClusterListQuery, CreateClusterRequest, Deletion, UpdateClusterRequest,
)
from chalicelib.services.clusters import ClusterService

service = ClusterService()


def create_cluster():
    cluster = service.create(parse_body(current_request(), CreateClusterRequest))
    return created(ClusterEnvelope(cluster=cluster, message="Cluster created successfully"))


def list_clusters():
    request = current_request()
    query = parse_query(request, ClusterListQuery)
    clusters, total = service.page(offset=query.offset, limit=query.page_size)
    return paged(ClusterList(clusters=clusters), request, page=query.page, page_size=query.page_size, total=total)


def get_cluster(cluster_id: str):
    return ok(ClusterEnvelope(cluster=service.get(cluster_id), message="Cluster retrieved"))


def update_cluster(cluster_id: str):
    cluster = service.update(cluster_id, parse_body(current_request(), UpdateClusterRequest))
    return ok(ClusterEnvelope(cluster=cluster, message="Cluster updated successfully"))


def delete_cluster(cluster_id: str):
    request = current_request()
    jobs = service.delete(cluster_id, caller=caller_id(request), correlation_id=request_id(request))
    if jobs is None:
        return ok(Deletion(message="Cluster deleted successfully"))
    return ok(Deletion(message="Cluster deletion started: its machines are being terminated",
                       job_ids=[job.id for job in jobs]))
