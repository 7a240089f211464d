"""autoscaler: the scheduled function that evaluates every cluster with an enabled policy.

The same `AutoscalingService.evaluate` serves `POST /api/v1/autoscaling/evaluate`, this schedule and the
event handler's `metric_threshold_exceeded` (`on_threshold_exceeded`), so the three cannot disagree.
"""
from __future__ import annotations

from typing import Any

from chalicelib.observability import logger
from chalicelib.services.autoscaling import AutoscalingService


def run(service: AutoscalingService | None = None) -> dict[str, Any]:
    """Evaluate each cluster with an enabled policy; one cluster's failure does not stop the others."""
    service = service or AutoscalingService()
    clusters = service.policies.clusters_with_enabled_policies()
    jobs, failed = [], []
    for cluster_id in clusters:
        try:
            result = service.evaluate(cluster_id, trigger="schedule")
        except Exception:  # the next tick retries; the others still run
            logger.exception("autoscaler evaluation failed", extra={"cluster_id": cluster_id})
            failed.append(cluster_id)
            continue
        jobs.extend(a.job_id for a in result.actions)
    logger.info("autoscaler run", extra={"clusters": len(clusters), "jobs": len(jobs), "failed": len(failed)})
    return {"clusters": len(clusters), "jobs": jobs, "failed": failed}


def on_threshold_exceeded(cluster_id: str, correlation_id: str | None = None) -> dict[str, Any]:
    """For the event handler: a `metric_threshold_exceeded` event re-evaluates the cluster's policies
    (the same path, cool-down and claim as the schedule). `evaluated == 0` means the cluster has no enabled
    policy, and the caller decides what a bare threshold event does then. A scale job it creates carries
    `correlation_id` (the alert's)."""
    return AutoscalingService().evaluate(cluster_id, trigger="metric_threshold_exceeded",
                                         correlation_id=correlation_id).model_dump(mode="json")
