"""ProvisioningService: the droplet records. Creating one records it as `provisioning`; the provider
(driven by the job worker) moves it to `active` or `error`."""
from __future__ import annotations

from chalicelib.models.domain import Droplet
from chalicelib.models.requests import CreateDropletRequest
from chalicelib.observability import logger
from chalicelib.repositories import DropletRepository


class ProvisioningService:
    def __init__(self, droplets: DropletRepository | None = None) -> None:
        self.droplets = droplets or DropletRepository()

    def create(self, request: CreateDropletRequest) -> Droplet:
        """Record a droplet in `provisioning`; NotFoundError if `request.cluster_id` names no cluster."""
        droplet = Droplet.from_row(self.droplets.create(
            name=request.name, region=request.region, size=request.size, image=request.image,
            provider=request.provider, cluster_id=request.cluster_id,
        ))
        logger.info("droplet created", extra={"droplet_id": droplet.id, "cluster_id": droplet.cluster_id})
        return droplet

    def get(self, droplet_id: str) -> Droplet:
        return Droplet.from_row(self.droplets.get(droplet_id))

    def list(self, cluster_id: str | None = None) -> list[Droplet]:
        return Droplet.from_rows(self.droplets.list(cluster_id))

    def delete(self, droplet_id: str) -> None:
        """Remove the droplet record; NotFoundError when missing."""
        self.droplets.delete(droplet_id)
        logger.info("droplet deleted", extra={"droplet_id": droplet_id})
