"""DiagnosisService: the original's rule-based insights and recommendations.

The rules read the cluster (droplet count, region, status). The latest health findings are added as
insights when there are real samples; nothing is made up when there are none.
"""
from __future__ import annotations

from chalicelib.models.domain import Cluster, DiagnosisReport
from chalicelib.services.clusters import ClusterService
from chalicelib.services.monitoring import MonitoringService

_STATUS_INSIGHT = {
    "healthy": "All systems operational",
    "warning": "Some performance degradation detected",
    "critical": "Critical issues require immediate attention",
}


def insights_for(cluster: Cluster) -> list[str]:
    insights = [f"Cluster is running with {len(cluster.droplets)} droplets",
                f"Region distribution: {cluster.region}"]
    if cluster.status in _STATUS_INSIGHT:
        insights.append(_STATUS_INSIGHT[cluster.status])
    return insights


def recommendations_for(cluster: Cluster) -> list[str]:
    count, recommendations = len(cluster.droplets), []
    if count < 2:
        recommendations.append("Add more droplets for better redundancy and load distribution")
    if count == 0:
        recommendations.append("Create initial droplet to get the cluster running")
    if cluster.status == "critical":
        recommendations.append("Immediate scaling required - add droplets to handle load")
        recommendations.append("Check droplet health and restart failed instances")
    if cluster.status == "warning":
        recommendations.append("Consider upgrading droplet sizes for better performance")
        recommendations.append("Add monitoring droplets for better observability")
    if 0 < count < 5:
        recommendations.append("Scale up cluster with additional droplets")
    if not recommendations:
        recommendations.append("Cluster configuration looks good - regular monitoring recommended")
    return recommendations


class DiagnosisService:
    def __init__(self, clusters: ClusterService | None = None, monitoring: MonitoringService | None = None) -> None:
        self.clusters = clusters or ClusterService()
        self.monitoring = monitoring or MonitoringService()

    def diagnose(self, cluster_id: str) -> DiagnosisReport:
        """`{cluster, insights, recommendations}` for an existing cluster (NotFoundError otherwise).
        A diagnose job stores `report.model_dump(mode="json")` as its result."""
        cluster = self.clusters.get(cluster_id)
        insights = insights_for(cluster)
        health = self.monitoring.health(cluster_id)
        if health.status != "unknown":
            insights.append(f"Latest metrics: {health.status}")
            insights.extend(f"Latest metrics: {issue}" for issue in health.issues)
        return DiagnosisReport(cluster=cluster, insights=insights, recommendations=recommendations_for(cluster))
