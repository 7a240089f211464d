"""ClusterService: create, read, update (optimistically) and delete clusters."""
from __future__ import annotations

from chalicelib.models.domain import Cluster
from chalicelib.models.requests import CreateClusterRequest, UpdateClusterRequest
from chalicelib.observability import logger
from chalicelib.repositories import ClusterRepository


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

    def list(self) -> list[Cluster]:
        return Cluster.from_rows(self.clusters.list())

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

    def delete(self, cluster_id: str) -> None:
        """Delete the cluster and, in the same transaction, its droplets, jobs and metrics."""
        self.clusters.delete(cluster_id)
        logger.info("cluster deleted", extra={"cluster_id": cluster_id})
