"""ProvisioningService: the droplet records. Creating one records it as `provisioning` and queues the
`provision` job that has its provider launch it (the job worker moves it to `active` with an address, or
to `error`); deleting one queues a `terminate` job when it has a machine to stop."""
from __future__ import annotations

from chalicelib.errors import ConflictError, ServiceUnavailableError
from chalicelib.models.domain import Droplet, Job
from chalicelib.models.requests import CreateDropletRequest
from chalicelib.observability import logger
from chalicelib.repositories import DropletRepository


class ProvisioningService:
    def __init__(self, droplets: DropletRepository | None = None) -> None:
        self.droplets = droplets or DropletRepository()

    def create(self, request: CreateDropletRequest, caller: str = "anonymous",
               correlation_id: str | None = None) -> tuple[Droplet, Job]:
        """Record a droplet in `provisioning` and queue its `provision` job; NotFoundError if
        `request.cluster_id` names no cluster. The job's failure to queue (503) leaves the droplet `error`."""
        from chalicelib.services.jobs import JobService
        from chalicelib.services.quotas import QuotaService

        QuotaService().check_new_droplets(request.cluster_id, 1)
        droplet = Droplet.from_row(self.droplets.create(
            name=request.name, region=request.region, size=request.size, image=request.image,
            provider=request.provider, cluster_id=request.cluster_id,
        ))
        logger.info("droplet created", extra={"droplet_id": droplet.id, "cluster_id": droplet.cluster_id})
        try:
            job = JobService().submit("provision", request.cluster_id, {"droplet_id": droplet.id},
                                      caller=caller, correlation_id=correlation_id)
        except ServiceUnavailableError:
            self.droplets.update(droplet.id, {"status": "error"})
            raise
        return droplet, job

    def get(self, droplet_id: str) -> Droplet:
        return Droplet.from_row(self.droplets.get(droplet_id))

    def page(self, cluster_id: str | None, *, offset: int, limit: int) -> tuple[list[Droplet], int]:
        """One page of droplets (optionally of one cluster) and the total."""
        rows, total = self.droplets.page(cluster_id, offset=offset, limit=limit)
        return Droplet.from_rows(rows), total

    def delete(self, droplet_id: str, caller: str = "anonymous", correlation_id: str | None = None) -> Job | None:
        """Delete the droplet; NotFoundError when missing. A droplet with a machine is marked `deleting` and
        a `terminate` job stops the machine, then removes the record (the job returned is its outcome);
        one that never got a machine is removed at once (None)."""
        droplet = self.droplets.get(droplet_id)
        if droplet["status"] == "deleting":
            raise ConflictError(f"droplet {droplet_id} is being deleted: its machine is being terminated")
        if not droplet.get("provider_instance_id") or droplet["status"] == "deleted":
            self.droplets.delete(droplet_id)
            logger.info("droplet deleted", extra={"droplet_id": droplet_id})
            return None
        self.droplets.update(droplet_id, {"status": "deleting"})
        try:
            return queue_termination(droplet, caller=caller, correlation_id=correlation_id)
        except ServiceUnavailableError:  # no job will stop it: the droplet stays as it was, the caller may retry
            self.droplets.update(droplet_id, {"status": droplet["status"]})
            raise


def queue_termination(droplet: dict, *, caller: str, correlation_id: str | None) -> Job:
    """The `terminate` job of a droplet that has a machine."""
    from chalicelib.services.jobs import JobService

    job = JobService().submit("terminate", droplet["cluster_id"], {"droplet_id": droplet["id"]},
                              caller=caller, correlation_id=correlation_id)
    logger.info("droplet termination queued", extra={"droplet_id": droplet["id"], "job_id": job.id})
    return job
