"""metrics_exporter: the scheduled function that pushes the database's metrics to the Pushgateway.

At this stage it pushes the cluster count and the time of its last successful run, under a stable
job name, so Prometheus can alert when the exporter goes stale.
"""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from chalicelib import db
from chalicelib.observability import logger
from chalicelib.settings import get_settings

PUSH_JOB = "clustergenie_metrics_exporter"


def export() -> dict[str, float]:
    settings = get_settings()
    registry = CollectorRegistry()
    clusters = db.query_one("SELECT COUNT(*) AS n FROM clusters")["n"]
    Gauge("clustergenie_clusters", "Clusters known to ClusterGenie", registry=registry).set(clusters)
    Gauge(
        "clustergenie_exporter_last_success_timestamp_seconds",
        "Unix time of the exporter's last successful push",
        registry=registry,
    ).set_to_current_time()
    push_to_gateway(settings.pushgateway_url, job=PUSH_JOB, registry=registry, timeout=5)
    logger.info("metrics pushed", extra={"clusters": clusters})
    return {"clusters": float(clusters), "pushed_at": time.time()}
