"""MonitoringService: metrics listing and cluster health from the latest real samples."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from chalicelib.errors import NotFoundError, ValidationError
from chalicelib.models.domain import METRIC_UNITS, HealthReport, Metric
from chalicelib.models.requests import MetricListQuery
from chalicelib.repositories import ClusterRepository, MetricRepository


@dataclass(frozen=True)
class HealthRule:
    metric_type: str
    threshold: float
    status: str
    issue: str


# The original's thresholds: strictly above the threshold trips the rule.
HEALTH_RULES: tuple[HealthRule, ...] = (
    HealthRule("cpu", 80.0, "warning", "High CPU usage detected"),
    HealthRule("memory", 85.0, "critical", "High memory usage detected"),
    HealthRule("disk", 90.0, "critical", "Low disk space"),
)
_SEVERITY = {"unknown": -1, "healthy": 0, "warning": 1, "critical": 2}


class MonitoringService:
    def __init__(self, metrics: MetricRepository | None = None, clusters: ClusterRepository | None = None) -> None:
        self.metrics = metrics or MetricRepository()
        self.clusters = clusters or ClusterRepository()

    def list_metrics(self, query: MetricListQuery) -> tuple[list[Metric], int]:
        """A page of samples, newest first, and the exact total count."""
        rows, total = self.metrics.list(cluster_id=query.cluster_id, metric_type=query.type,
                                        page=query.page, page_size=query.page_size)
        return Metric.from_rows(rows), total

    def health(self, cluster_id: str) -> HealthReport:
        """Health from the latest sample of each type. The worst rule wins (critical over warning),
        whatever order the samples come in. No cpu, memory or disk sample: `unknown` (nothing is invented).
        NotFoundError when the cluster is missing."""
        if not self.clusters.exists(cluster_id):
            raise NotFoundError("Cluster not found")
        latest = self.metrics.latest_per_type(cluster_id)
        now = dt.datetime.now(dt.timezone.utc)
        if not any(rule.metric_type in latest for rule in HEALTH_RULES):
            # Nothing the rules can judge (no samples, or only network): say so, invent nothing.
            return HealthReport(cluster_id=cluster_id, status="unknown", issues=[], timestamp=now)
        status, issues = "healthy", []
        for rule in HEALTH_RULES:
            sample = latest.get(rule.metric_type)
            if sample is not None and sample["value"] > rule.threshold:
                issues.append(rule.issue)
                if _SEVERITY[rule.status] > _SEVERITY[status]:
                    status = rule.status
        return HealthReport(cluster_id=cluster_id, status=status, issues=issues, timestamp=now)

    def record(self, cluster_id: str, metric_type: str, value: float, timestamp: dt.datetime | None = None) -> int:
        """Store one real sample (telemetry); the unit follows the type."""
        if metric_type not in METRIC_UNITS:
            raise ValidationError(f"type: unknown metric type {metric_type!r}")
        return self.metrics.record(cluster_id=cluster_id, metric_type=metric_type, value=float(value),
                                   unit=METRIC_UNITS[metric_type],
                                   timestamp=timestamp or dt.datetime.now(dt.timezone.utc))
