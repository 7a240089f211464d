"""MonitoringService: metrics listing and cluster health from the latest real samples."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.errors import ConflictError, NotFoundError, ValidationError
from chalicelib.models.domain import METRIC_UNITS, HealthReport, Metric
from chalicelib.repositories import ClusterRepository, MetricRepository
from chalicelib.repositories.base import unit_of_work

if TYPE_CHECKING:  # the query model is the API's; the exporter and the event handler never build it
    from chalicelib.models.requests import MetricListQuery


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
# The metric types the rules read (`judge_health` looks at no other): what a health evaluation needs to read.
HEALTH_TYPES: tuple[str, ...] = tuple(dict.fromkeys(rule.metric_type for rule in HEALTH_RULES))


def judge_health(latest: dict[str, float]) -> tuple[str, list[str]]:
    """(status, issues) from the latest value of each metric type, by HEALTH_RULES: the worst rule wins
    (critical over warning), whatever order the samples come in. No cpu, memory or disk value: `unknown`
    (nothing is invented). The one place the rules are applied: the health route, the stored cluster
    status and the exporter's gauges all agree."""
    if not any(rule.metric_type in latest for rule in HEALTH_RULES):
        return "unknown", []
    status, issues = "healthy", []
    for rule in HEALTH_RULES:
        value = latest.get(rule.metric_type)
        if value is not None and value > rule.threshold:
            issues.append(rule.issue)
            if _SEVERITY[rule.status] > _SEVERITY[status]:
                status = rule.status
    return status, issues


@dataclass(frozen=True)
class TelemetryItem:
    """One telemetry event's samples: (type, value, timestamp or None for now) each, with its source (see
    `MetricRepository.record_many`); `tenant_id` the tenant the event names, if any."""

    cluster_id: str
    tenant_id: str | None
    samples: list[tuple[str, float, dt.datetime | None]]
    sources: list[str]


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
        """Health from the latest sample of each type (`judge_health`). NotFoundError when the cluster
        is missing."""
        if not self.clusters.exists(cluster_id):
            raise NotFoundError("Cluster not found")
        return self._report(cluster_id, self.metrics.latest_per_type(cluster_id))

    @staticmethod
    def _report(cluster_id: str, latest: dict[str, dict]) -> HealthReport:
        status, issues = judge_health({metric_type: sample["value"] for metric_type, sample in latest.items()})
        return HealthReport(cluster_id=cluster_id, status=status, issues=issues,
                            timestamp=dt.datetime.now(dt.timezone.utc))

    def record(self, cluster_id: str, metric_type: str, value: float, timestamp: dt.datetime | None = None) -> int:
        """Store one real sample (telemetry); the unit follows the type."""
        if metric_type not in METRIC_UNITS:
            raise ValidationError(f"type: unknown metric type {metric_type!r}")
        return self.metrics.record(cluster_id=cluster_id, metric_type=metric_type, value=float(value),
                                   unit=METRIC_UNITS[metric_type],
                                   timestamp=timestamp or dt.datetime.now(dt.timezone.utc))

    def record_many(self, samples: list[tuple[str, str, float, dt.datetime | None]],
                    sources: list[str] | None = None) -> None:
        """Store real samples (cluster_id, type, value, timestamp or None for now) in one transaction;
        NotFoundError (nothing stored) if a cluster is missing. With `sources`, a sample already stored
        under its source is not stored again."""
        now = dt.datetime.now(dt.timezone.utc)
        for _, metric_type, _, _ in samples:
            if metric_type not in METRIC_UNITS:
                raise ValidationError(f"type: unknown metric type {metric_type!r}")
        self.metrics.record_many([(c, t, float(v), METRIC_UNITS[t], ts or now) for c, t, v, ts in samples], sources)

    def record_telemetry(self, items: list[TelemetryItem]) -> list[bool]:
        """Store the samples of many clusters' telemetry and refresh the health of every cluster they touched,
        in one transaction (issue 16: the event handler's batch). Returns, per item, whether it was stored:
        False when its cluster does not exist, or not in the tenant the item names.

        The clusters are locked for update first (one statement, primary-key order), so none is deleted or
        changed before its health is written: the rows go in with one multi-row INSERT (a sample already
        stored under its source is not stored again), the latest value of each type of every touched cluster
        is read in one statement (after the INSERT, so it sees the batch's samples), and every cluster's status
        and `last_checked` are written by one compare-and-set UPDATE. Should a version not match all the same,
        each touched cluster is refreshed on its own after the commit (`refresh_cluster_health`)."""
        with unit_of_work():
            clusters = self.clusters.lock_for_health({item.cluster_id for item in items})
            stored = [item.cluster_id in clusters and item.tenant_id in (None, clusters[item.cluster_id]["tenant_id"])
                      for item in items]
            kept = [item for item, ok in zip(items, stored) if ok]
            if not kept:
                return stored
            self.record_many([(item.cluster_id, *sample) for item in kept for sample in item.samples],
                             [source for item in kept for source in item.sources])
            touched = list(dict.fromkeys(item.cluster_id for item in kept))
            latest = self.metrics.latest_values(touched, HEALTH_TYPES)  # the types the rules read
            checked_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            health = {}
            for cluster_id in touched:
                status, _ = judge_health(latest.get(cluster_id, {}))
                health[cluster_id] = (clusters[cluster_id]["version"], None if status == "unknown" else status)
            written = self.clusters.store_health(health, checked_at)
        if not written:
            for cluster_id in touched:
                try:
                    self.refresh_cluster_health(cluster_id)
                except NotFoundError:
                    pass  # deleted since (its rows cascaded away with it)
        return stored

    def refresh_cluster_health(self, cluster_id: str) -> HealthReport:
        """Evaluate health (the rules above) and store it on the cluster: `status` (unless `unknown`) and
        `last_checked`. Retries a lost optimistic race; NotFoundError when the cluster is missing.

        The cluster's version and its latest samples are read in one transaction (one snapshot, one commit:
        the event handler refreshes every cluster a batch's telemetry touched, issue 16), then written with
        the version's compare-and-set in another."""
        for attempt in range(3):
            with unit_of_work():
                version = self.clusters.version_of(cluster_id)
                report = self._report(cluster_id, self.metrics.latest_per_type(cluster_id))
            changes: dict = {"last_checked": report.timestamp.astimezone(dt.timezone.utc).replace(tzinfo=None)}
            if report.status != "unknown":
                changes["status"] = report.status
            try:
                self.clusters.update(cluster_id, version, changes)
                return report
            except ConflictError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")
