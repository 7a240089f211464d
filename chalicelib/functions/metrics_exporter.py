"""metrics_exporter: the scheduled function that turns the database's `metrics` table into Prometheus
gauges on the Pushgateway.

- **Through indexes.** The latest sample per cluster and type is one backwards lookup on
  `idx_metrics_cluster_type_ts` per (cluster, type), all in one statement: its cost grows with the
  number of clusters, never with the number of metric rows (`bench/bench_exporter.py`; the EXPLAIN is
  pinned by `tests/fast/test_metrics_exporter.py`). Droplet counts come from `idx_droplets_cluster_status`.
- **A stable group, replaced whole.** Every run PUTs the complete state under job
  `clustergenie_metrics_exporter` and grouping key `{instance="database"}`; a PUT replaces the group, so
  the series of a deleted cluster disappear at the next run.
- **Failures do not crash-loop.** An unreachable Pushgateway (or database) is logged and counted
  (`clustergenie_exporter_runs_total{outcome}` in the aggregated metrics); the run returns normally, so
  neither Lambda's async retries nor the schedule pile up. The next run pushes the whole state again,
  so it catches up; `clustergenie_exporter_last_success_timestamp_seconds` only moves on success, which
  is what the "exporter stale" alert watches.
"""
from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from chalicelib import metrics
from chalicelib.models.domain import METRIC_UNITS
from chalicelib.observability import logger
from chalicelib.repositories import DropletRepository, MetricRepository
from chalicelib.services.monitoring import judge_health
from chalicelib.settings import get_settings

PUSH_JOB = "clustergenie_metrics_exporter"
GROUPING_KEY = {"instance": "database"}
HEALTH_STATUSES = ("unknown", "healthy", "warning", "critical")



def collect(registry: CollectorRegistry) -> dict[str, int]:
    """Read the database into gauges on `registry`; returns counts for the log line."""
    rows, droplet_rows = MetricRepository().latest_of_every_cluster(), DropletRepository().count_by_cluster_status()

    value = Gauge("clustergenie_cluster_metric", "Latest sample of a cluster's metric, by type.",
                  ["cluster_id", "cluster_name", "type", "unit"], registry=registry)
    sampled_at = Gauge("clustergenie_cluster_metric_timestamp_seconds", "Unix time of that latest sample.",
                       ["cluster_id", "type"], registry=registry)
    health = Gauge("clustergenie_cluster_health", "1 for the cluster's current health status (unknown, healthy, "
                   "warning, critical), 0 for the others.", ["cluster_id", "cluster_name", "status"], registry=registry)
    droplets = Gauge("clustergenie_cluster_droplets", "Droplets of a cluster by status.", ["cluster_id", "status"],
                     registry=registry)
    clusters_total = Gauge("clustergenie_clusters", "Clusters known to ClusterGenie.", registry=registry)

    latest: dict[str, dict[str, float]] = {}
    names: dict[str, str] = {}
    for row in rows:
        names[row["cluster_id"]] = row["cluster_name"]
        latest.setdefault(row["cluster_id"], {})
        if row["value"] is None:
            continue
        latest[row["cluster_id"]][row["type"]] = row["value"]
        value.labels(row["cluster_id"], row["cluster_name"], row["type"], METRIC_UNITS.get(row["type"], "")).set(row["value"])
        sampled_at.labels(row["cluster_id"], row["type"]).set(float(row["ts"]))
    for cluster_id, samples in latest.items():
        current, _ = judge_health(samples)
        for status in HEALTH_STATUSES:
            health.labels(cluster_id, names[cluster_id], status).set(1 if status == current else 0)
    for row in droplet_rows:
        droplets.labels(row["cluster_id"], row["status"]).set(row["n"])
    clusters_total.set(len(latest))
    return {"clusters": len(latest), "samples": sum(len(s) for s in latest.values())}


def export() -> dict[str, Any]:
    """One run: read, push, count the outcome. Never raises (a scheduled function must not crash-loop)."""
    settings = get_settings()
    started = time.perf_counter()
    registry = CollectorRegistry()
    try:
        counts = collect(registry)
    except Exception:
        logger.exception("metrics export failed reading the database")
        metrics.inc(metrics.EXPORTER_RUNS, ("error",))
        return {"pushed": False, "error": "database"}
    Gauge("clustergenie_exporter_duration_seconds", "Time the exporter spent reading the database.",
          registry=registry).set(time.perf_counter() - started)
    Gauge("clustergenie_exporter_last_success_timestamp_seconds", "Unix time of the exporter's last successful push",
          registry=registry).set_to_current_time()
    try:
        push_to_gateway(settings.pushgateway_url, job=PUSH_JOB, grouping_key=GROUPING_KEY, registry=registry, timeout=5)
    except Exception as exc:  # noqa: BLE001 - unreachable, refused, 5xx: all the same to a scheduled run
        logger.error("metrics push failed; the next run pushes the whole state again",
                     extra={"error": repr(exc), "pushgateway": settings.pushgateway_url, **counts})
        metrics.inc(metrics.EXPORTER_RUNS, ("push_failed",))
        return {"pushed": False, "error": "pushgateway", **counts}
    metrics.inc(metrics.EXPORTER_RUNS, ("ok",))
    elapsed = time.perf_counter() - started
    logger.info("metrics pushed", extra={**counts, "seconds": round(elapsed, 4)})
    return {"pushed": True, "seconds": elapsed, "pushed_at": time.time(), **counts}
