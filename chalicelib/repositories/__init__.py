"""Data access: the only place that holds SQL. Every statement is parameterised; identifiers that
vary (sort columns) come from allow-lists, never from input."""
from chalicelib.repositories.clusters import ClusterRepository
from chalicelib.repositories.droplets import DropletRepository
from chalicelib.repositories.jobs import JobRepository
from chalicelib.repositories.metrics import MetricRepository

__all__ = ["ClusterRepository", "DropletRepository", "JobRepository", "MetricRepository"]
