"""/api/v1/droplets"""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.responses import created, ok
from chalicelib.http import parse_body, parse_query
from chalicelib.models import CreateDropletRequest, DropletEnvelope, DropletList, DropletListQuery, MessageResponse
from chalicelib.services.provisioning import ProvisioningService

bp = Blueprint(__name__)
service = ProvisioningService()


@bp.route("/droplets", methods=["POST"])
def create_droplet():
    droplet = service.create(parse_body(bp.current_request, CreateDropletRequest))
    return created(DropletEnvelope(droplet=droplet, message="Droplet creation initiated"))


@bp.route("/droplets", methods=["GET"])
def list_droplets():
    query = parse_query(bp.current_request, DropletListQuery)
    return ok(DropletList(droplets=service.list(query.cluster_id)))


@bp.route("/droplets/{droplet_id}", methods=["GET"])
def get_droplet(droplet_id: str):
    return ok(DropletEnvelope(droplet=service.get(droplet_id), message="Droplet retrieved"))


@bp.route("/droplets/{droplet_id}", methods=["DELETE"])
def delete_droplet(droplet_id: str):
    service.delete(droplet_id)
    return ok(MessageResponse(message="Droplet deleted"))
