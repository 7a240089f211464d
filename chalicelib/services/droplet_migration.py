"""Droplet migrations: move a droplet to another catalogue provider, as a `migrate` job.

`DropletMigrationService.start` checks the request and enqueues the job; the job worker's runner calls
`run_job(parameters, checkpoint, record)`, which
1. records the replacement droplet on the target provider (same cluster, name, size, image; the same
   region when the target serves it, else the target's first) and checkpoints its id,
2. launches it (droplet provider of `chalicelib.providers`) and marks it `active`,
3. only then terminates the old droplet and marks it `deleted`.
So the cluster never has fewer active droplets than before: if the launch fails, the new droplet is
`error`, the old one keeps running and the job fails with the reason. A re-run resumes from the
checkpoint instead of creating a second replacement. The catalogue's `used` moves from source to target.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.errors import ConflictError, ValidationError
from chalicelib.models.control_plane import MigrationAccepted, MigrationRequest
from chalicelib.observability import logger
from chalicelib.repositories import DropletRepository
from chalicelib.repositories.provider_catalog import ProviderCatalogRepository


class MigrationFailed(Exception):
    """The migration cannot succeed; the message is the job's error. The old droplet is untouched."""


def _droplet_provider(name: str) -> Any:
    # The droplet providers (machines) live with the job pipeline (issue 4), imported only when a job runs.
    from chalicelib.providers import get_provider

    return get_provider(name)


class DropletMigrationService:
    def __init__(self, droplets: DropletRepository | None = None, catalog: ProviderCatalogRepository | None = None,
                 jobs: Any = None, provider_for: Callable[[str], Any] = _droplet_provider) -> None:
        self.droplets = droplets or DropletRepository()
        self.catalog = catalog or ProviderCatalogRepository()
        self._jobs = jobs
        self.provider_for = provider_for

    @property
    def jobs(self):  # noqa: ANN201 - JobService, imported late
        if self._jobs is None:
            from chalicelib.services.jobs import JobService

            self._jobs = JobService()
        return self._jobs

    def start(self, request: MigrationRequest, caller: str = "anonymous") -> MigrationAccepted:
        """Enqueue the migration (404: droplet or provider missing; 400: droplet in no cluster;
        409: droplet not active, already there, or the target has no free capacity)."""
        droplet = self.droplets.get(request.droplet_id)
        target = self.catalog.get(request.target_provider)
        if droplet["cluster_id"] is None:
            raise ValidationError("droplet_id: the droplet belongs to no cluster; only cluster droplets migrate")
        if droplet["status"] != "active":
            raise ConflictError(f"droplet {droplet['id']} is {droplet['status']}; only active droplets migrate")
        if droplet["provider"] == target["name"]:
            raise ConflictError(f"droplet {droplet['id']} already runs on {target['name']}")
        if target["used"] >= target["capacity"]:
            raise ConflictError(f"provider {target['name']} has no free capacity")
        if droplet["size"] not in target["classes"]:
            raise ConflictError(f"provider {target['name']} does not offer size {droplet['size']}")
        job = self.jobs.submit("migrate", droplet["cluster_id"], {
            "droplet_id": droplet["id"], "target_provider": target["name"]}, caller=caller)
        return MigrationAccepted(ok=True, job_id=job.id, droplet_id=droplet["id"], target_provider=target["name"])

    def run_job(self, parameters: dict[str, str], checkpoint: dict[str, Any] | None = None,
                record: Callable[[dict[str, Any]], None] = lambda _: None) -> dict[str, Any]:
        """The `migrate` job's work (see the module doc). `record(checkpoint)` must persist the checkpoint
        (the worker stores it in the job's result) before the launch, so a crash cannot leak a droplet."""
        checkpoint = checkpoint or {}
        old = self.droplets.get(parameters["droplet_id"])
        target = self.catalog.get(parameters["target_provider"])
        if "new_droplet_id" in checkpoint:
            new = self.droplets.get(checkpoint["new_droplet_id"])
        else:
            region = old["region"] if old["region"] in target["regions"] else target["regions"][0]
            new = self.droplets.create(name=old["name"], region=region, size=old["size"], image=old["image"],
                                       provider=target["name"], cluster_id=old["cluster_id"])
            record({"new_droplet_id": new["id"]})
        if new["status"] != "active":
            try:
                instance = self.provider_for(target["name"]).launch(new)
            except Exception as exc:  # the provider refused: the old droplet keeps serving
                self.droplets.update(new["id"], {"status": "error"})
                raise MigrationFailed(f"provider {target['name']} failed to launch {new['id']}: {exc}") from None
            new = self.droplets.update(new["id"], {"status": "active", "ip_address": instance.ip_address,
                                                   "provider_instance_id": instance.instance_id})
        if old["status"] != "deleted":
            try:
                self.provider_for(old["provider"]).terminate(old)
            except Exception as exc:  # both run; the old one is reported, never silently kept billing
                raise MigrationFailed(f"replacement {new['id']} is active, but provider {old['provider']} "
                                      f"failed to terminate {old['id']}: {exc}") from None
            self.droplets.retire(old["id"], old["provider"], target["name"])
        logger.info("droplet migrated", extra={"old_droplet_id": old["id"], "new_droplet_id": new["id"],
                                               "target_provider": target["name"]})
        return {"old_droplet_id": old["id"], "new_droplet_id": new["id"], "target_provider": target["name"],
                "ip_address": new["ip_address"]}
