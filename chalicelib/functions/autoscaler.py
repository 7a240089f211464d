"""autoscaler: the scheduled function that evaluates every cluster with an enabled policy.

The same `AutoscalingService.evaluate` serves `POST /api/v1/autoscaling/evaluate`, this schedule and the
event handler's `metric_threshold_exceeded` (`AutoscalingService.react_to_alert`), so the three cannot disagree.
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

