"""metrics_exporter: the scheduled function that turns the database's `metrics` table into Prometheus
gauges on the Pushgateway.

- **Through indexes.** The latest sample per cluster and type is one backwards lookup on
  `idx_metrics_cluster_type_ts` per (cluster, type), all in one statement: its cost grows with the
  number of clusters, never with the number of metric rows (`bench/bench_exporter.py`; the EXPLAIN is
  pinned by `tests/fast/test_metrics_exporter.py`). Droplet counts come from `idx_droplets_cluster_status`.
- **Memory flat in the number of clusters** (issue 18). The database is read a chunk of clusters at a
  time (`CHUNK_CLUSTERS`, by primary key); each family's sample lines go to a temporary file of its own,
  and the exposition (families one after another, as the text format wants) is streamed from those
  files to the Pushgateway with a Content-Length, never held in memory whole
  (`bench/bench_exporter_memory.py`, peak RSS at 30k and 100k clusters in docs/benchmarks.md).
- **Labels from bounded, server-chosen sets** (issue 18): a cluster's series carry its id (chosen by the
  server), never its name (chosen by the caller); the name is the API's to show.
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

import base64
import functools
import json
import shutil
import tempfile
import time
import urllib.request
from typing import Any, BinaryIO

from chalicelib import metrics
from chalicelib.models.domain import METRIC_UNITS
from chalicelib.observability import logger
from chalicelib.repositories import DropletRepository, MetricRepository
from chalicelib.services.monitoring import judge_health
from chalicelib.settings import Settings, get_settings

PUSH_JOB = "clustergenie_metrics_exporter"
GROUPING_KEY = {"instance": "database"}
HEALTH_STATUSES = ("unknown", "healthy", "warning", "critical")
CHUNK_CLUSTERS = 1000
# The Pushgateway parses the whole group before it answers (tens of MB at tens of thousands of clusters).
PUSH_TIMEOUT_SECONDS = 30
# The text format's content type, as prometheus_client names it (its CONTENT_TYPE_LATEST; the test checks the
# two agree). The exporter writes the lines itself, so it does not import the library for this (70 ms, issue 16).
CONTENT_TYPE = "text/plain; version=1.0.0; charset=utf-8"

# The per-cluster families, in the order they are written: name -> help.
CLUSTER_FAMILIES = {
    "clustergenie_cluster_metric": "Latest sample of a cluster's metric, by type.",
    "clustergenie_cluster_metric_timestamp_seconds": "Unix time of that latest sample.",
    "clustergenie_cluster_health": "1 for the cluster's current health status (unknown, healthy, warning, "
                                   "critical), 0 for the others.",
    "clustergenie_cluster_droplets": "Droplets of a cluster by status.",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(name: str, labels: dict[str, str], value: float) -> bytes:
    text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return f"{name}{{{text}}} {float(value)!r}\n".encode() if labels else f"{name} {float(value)!r}\n".encode()


def _header(name: str, help_text: str) -> bytes:
    return f"# HELP {name} {help_text}\n# TYPE {name} gauge\n".encode()


def collect(out: BinaryIO) -> dict[str, int]:
    """Write the database's state as Prometheus text to `out`, a chunk of clusters at a time; returns
    counts for the log line."""
    spools = {name: tempfile.TemporaryFile() for name in CLUSTER_FAMILIES}
    try:
        clusters = samples = 0
        droplet_counts = DropletRepository()
        for rows in MetricRepository().latest_of_every_cluster(CHUNK_CLUSTERS):
            latest: dict[str, dict[str, float]] = {}
            for row in rows:
                cluster_id = row["cluster_id"]
                latest.setdefault(cluster_id, {})
                if row["value"] is None:
                    continue
                latest[cluster_id][row["type"]] = row["value"]
                spools["clustergenie_cluster_metric"].write(_line("clustergenie_cluster_metric", {
                    "cluster_id": cluster_id, "type": row["type"], "unit": METRIC_UNITS.get(row["type"], "")},
                    row["value"]))
                spools["clustergenie_cluster_metric_timestamp_seconds"].write(_line(
                    "clustergenie_cluster_metric_timestamp_seconds", {"cluster_id": cluster_id, "type": row["type"]},
                    float(row["ts"])))
            for cluster_id, found in latest.items():
                current, _ = judge_health(found)
                for status in HEALTH_STATUSES:
                    spools["clustergenie_cluster_health"].write(_line("clustergenie_cluster_health", {
                        "cluster_id": cluster_id, "status": status}, 1 if status == current else 0))
            for row in droplet_counts.count_by_cluster_status(list(latest)):
                spools["clustergenie_cluster_droplets"].write(_line("clustergenie_cluster_droplets", {
                    "cluster_id": row["cluster_id"], "status": row["status"]}, row["n"]))
            clusters += len(latest)
            samples += sum(len(s) for s in latest.values())
        for name, help_text in CLUSTER_FAMILIES.items():
            out.write(_header(name, help_text))
            spools[name].seek(0)
            shutil.copyfileobj(spools[name], out)
        out.write(_header("clustergenie_clusters", "Clusters known to ClusterGenie.")
                  + _line("clustergenie_clusters", {}, clusters))
        return {"clusters": clusters, "samples": samples}
    finally:
        for spool in spools.values():
            spool.close()


@functools.lru_cache(maxsize=4)
def _secret_credentials(secret_id: str) -> tuple[str, str]:
    from chalicelib.aws import client

    doc = json.loads(client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    return doc["username"], doc["password"]


def pushgateway_auth(settings: Settings) -> dict[str, str]:
    """The Authorization header the Pushgateway requires (issue 18): the password from the settings (local
    runs, tests) or from the Secrets Manager secret (deployed; read once per container); none without either."""
    if settings.pushgateway_password is not None:
        user, password = settings.pushgateway_user, settings.pushgateway_password
    elif settings.pushgateway_secret_id:
        user, password = _secret_credentials(settings.pushgateway_secret_id)
    else:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def push(url: str, body: BinaryIO, auth: dict[str, str] | None = None) -> None:
    """PUT the exposition in `body` (from its start) as the exporter's whole group: streamed, not read whole."""
    size = body.seek(0, 2)
    body.seek(0)
    path = "/".join(f"{k}/{v}" for k, v in GROUPING_KEY.items())
    request = urllib.request.Request(f"{url.rstrip('/')}/metrics/job/{PUSH_JOB}/{path}", data=body, method="PUT",
                                     headers={"Content-Type": CONTENT_TYPE, "Content-Length": str(size),
                                              **(auth or {})})
    with urllib.request.urlopen(request, timeout=PUSH_TIMEOUT_SECONDS) as response:
        response.read()


def export() -> dict[str, Any]:
    """One run: read, push, count the outcome. Never raises (a scheduled function must not crash-loop)."""
    settings = get_settings()
    started = time.perf_counter()
    with tempfile.TemporaryFile() as body:
        try:
            counts = collect(body)
        except Exception:
            logger.exception("metrics export failed reading the database")
            metrics.inc(metrics.EXPORTER_RUNS, ("error",))
            return {"pushed": False, "error": "database"}
        body.write(_header("clustergenie_exporter_duration_seconds", "Time the exporter spent reading the database.")
                   + _line("clustergenie_exporter_duration_seconds", {}, time.perf_counter() - started))
        body.write(_header("clustergenie_exporter_last_success_timestamp_seconds",
                           "Unix time of the exporter's last successful push")
                   + _line("clustergenie_exporter_last_success_timestamp_seconds", {}, time.time()))
        try:
            push(settings.pushgateway_url, body, pushgateway_auth(settings))
        except Exception as exc:  # noqa: BLE001 - unreachable, refused, 5xx: all the same to a scheduled run
            logger.error("metrics push failed; the next run pushes the whole state again",
                         extra={"error": repr(exc), "pushgateway": settings.pushgateway_url, **counts})
            metrics.inc(metrics.EXPORTER_RUNS, ("push_failed",))
            return {"pushed": False, "error": "pushgateway", **counts}
    metrics.inc(metrics.EXPORTER_RUNS, ("ok",))
    elapsed = time.perf_counter() - started
    logger.info("metrics pushed", extra={**counts, "seconds": round(elapsed, 4)})
    return {"pushed": True, "seconds": elapsed, "pushed_at": time.time(), **counts}
