"""ClusterService: create, read, update (optimistically) and delete clusters."""
from __future__ import annotations

from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.models.domain import Cluster, Job
from chalicelib.models.requests import CreateClusterRequest, UpdateClusterRequest
from chalicelib.observability import logger
from chalicelib.repositories import ClusterRepository, DropletRepository


class ClusterService:
    def __init__(self, clusters: ClusterRepository | None = None) -> None:
        self.clusters = clusters or ClusterRepository()

    def create(self, request: CreateClusterRequest) -> Cluster:
        """Store a new, healthy cluster with no droplets."""
        cluster = Cluster.from_row(self.clusters.create(request.name, request.region))
        logger.info("cluster created", extra={"cluster_id": cluster.id})
        return cluster

    def get(self, cluster_id: str) -> Cluster:
        """The cluster; NotFoundError when missing."""
        return Cluster.from_row(self.clusters.get(cluster_id))

    def page(self, *, offset: int, limit: int) -> tuple[list[Cluster], int]:
        """One page of clusters and the total."""
        rows, total = self.clusters.page(offset=offset, limit=limit)
        return Cluster.from_rows(rows), total

    def get_many(self, cluster_ids: set[str]) -> dict[str, Cluster]:
        """The existing clusters among `cluster_ids`, by id."""
        return {c.id: c for c in Cluster.from_rows(self.clusters.get_many(cluster_ids))}

    def update(self, cluster_id: str, request: UpdateClusterRequest) -> Cluster:
        """Apply the given fields. With `request.version` the update is a compare-and-set against it;
        without, against the version just read. Either way a concurrent winner makes this a 409."""
        expected = request.version
        if expected is None:
            expected = self.clusters.get(cluster_id)["version"]
        changes = request.model_dump(include={"name", "region", "status"}, exclude_none=True)
        cluster = Cluster.from_row(self.clusters.update(cluster_id, expected, changes))
        logger.info("cluster updated", extra={"cluster_id": cluster_id, "version": cluster.version})
        return cluster

    def delete(self, cluster_id: str, caller: str = "anonymous",
               correlation_id: str | None = None) -> list[Job] | None:
        """Delete the cluster and, in the same transaction, its droplets, jobs and metrics (None: done).

        When droplets of the cluster have machines, the cluster is marked `deleting` instead and each
        machine is stopped by a `terminate` job (returned, those already deleting excepted: their outcome is
        the deletion's); the last of them deletes the cluster (`finish_deletion`). 409 while a deletion is
        under way."""
        from chalicelib.services.provisioning import queue_termination

        row = self.clusters.get(cluster_id)
        if row["status"] == "deleting":
            raise ConflictError(f"cluster {cluster_id} is being deleted: its machines are being terminated")
        droplets = DropletRepository()
        with_machine = [d for d in droplets.list(cluster_id) if d.get("provider_instance_id") and d["status"] != "deleted"]
        machines = [d for d in with_machine if d["status"] != "deleting"]  # those deleting have their job already
        if not with_machine:
            self.clusters.delete(cluster_id)
            logger.info("cluster deleted", extra={"cluster_id": cluster_id})
            return None
        self.clusters.update(cluster_id, row["version"], {"status": "deleting"})
        jobs = []
        for droplet in machines:
            droplets.update(droplet["id"], {"status": "deleting"})
            jobs.append(queue_termination(droplet, caller=caller, correlation_id=correlation_id))
        logger.info("cluster deletion started", extra={"cluster_id": cluster_id, "machines": len(with_machine)})
        if not machines:  # only droplets already deleting: their jobs may have ended before the mark above
            self.finish_deletion(cluster_id)
        return jobs

    def finish_deletion(self, cluster_id: str) -> bool:
        """Delete a `deleting` cluster once none of its machines is left; True when this call deleted it."""
        try:
            row = self.clusters.get(cluster_id)
        except NotFoundError:
            return False
        if row["status"] != "deleting":
            return False
        if any(d.get("provider_instance_id") and d["status"] != "deleted" for d in DropletRepository().list(cluster_id)):
            return False
        try:
            self.clusters.delete(cluster_id)
        except NotFoundError:  # another terminate job finished at the same moment and deleted it
            return False
        logger.info("cluster deleted after its machines were terminated", extra={"cluster_id": cluster_id})
        return True
