"""/api/v1/droplets"""
from __future__ import annotations

from chalicelib.api.responses import created, ok, paged
from chalicelib.api.routing import current_request
from chalicelib.errors import NotFoundError
from chalicelib.http import caller_id, parse_body, parse_query, request_id
from chalicelib.models import (
    Cluster, CreateDropletRequest, Deletion, Droplet, DropletEnvelope, DropletList, DropletListQuery, DropletOut,
)
from chalicelib.services.clusters import ClusterService
from chalicelib.services.provisioning import ProvisioningService

service = ProvisioningService()
clusters = ClusterService()


def _with_cluster(droplet: Droplet) -> DropletOut:
    """The droplet with its nested `cluster`, as the original sent it (the console's droplet table reads it)."""
    owner: dict[str, Cluster] = {}
    if droplet.cluster_id:
        try:
            owner[droplet.cluster_id] = clusters.get(droplet.cluster_id)
        except NotFoundError:  # deleted in between: the droplet goes without
            pass
    return DropletOut.of(droplet, owner)


def create_droplet():
    request = current_request()
    droplet, job = service.create(parse_body(request, CreateDropletRequest), caller=caller_id(request),
                                  correlation_id=request_id(request))
    return created(DropletEnvelope(droplet=_with_cluster(droplet), message="Droplet creation initiated", job_id=job.id))


def list_droplets():
    request = current_request()
    query = parse_query(request, DropletListQuery)
    droplets, total = service.page(query.cluster_id, offset=query.offset, limit=query.page_size)
    owners = clusters.get_many({d.cluster_id for d in droplets if d.cluster_id})  # only this page's clusters
    return paged(DropletList(droplets=[DropletOut.of(d, owners) for d in droplets]), request,
                 page=query.page, page_size=query.page_size, total=total)


def get_droplet(droplet_id: str):
    return ok(DropletEnvelope(droplet=_with_cluster(service.get(droplet_id)), message="Droplet retrieved"))


def delete_droplet(droplet_id: str):
    request = current_request()
    job = service.delete(droplet_id, caller=caller_id(request), correlation_id=request_id(request))
    return ok(Deletion(message="Droplet deleted", job_id=job.id if job else None))
