"""The one reader of the aggregated metrics: renders Redis' hashes (plus scrape-time readings) as the
Prometheus text exposition, through prometheus_client's custom-collector API.

Scrape-time readings are facts other stores already hold, read once per scrape instead of being
counted by every instance: jobs by status and the age of the stalest `processing` job (both on the
`(status, updated_at)` index) and the depth of the jobs dead-letter queue (SQS). A reading that fails is left out and
counted in `clustergenie_metrics_scrape_errors_total{source}`; the rest of the page is still served, and
`clustergenie_metrics_source_up{source}` says which sources answered this scrape (0: unreachable). Redis
unreachable leaves out the aggregated families, never the page.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from chalicelib import metrics
from chalicelib.metrics import COUNTS_KEY, FAMILIES, GAUGES_KEY, SEP, Family

JOB_STATUSES = ("queued", "processing", "completed", "failed")


def _parse(raw: dict[str, str]) -> dict[str, dict[tuple[str, ...], dict[str, float]]]:
    """{family: {label values: {suffix: value}}} from a hash's fields."""
    out: dict[str, dict[tuple[str, ...], dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for key, value in raw.items():
        try:
            name, suffix, labels = key.split(SEP, 2)
            out[name][tuple(json.loads(labels))][suffix] = float(value)
        except ValueError:
            continue  # a field this version does not understand
    return out


def _histogram(family: Family, series: dict[tuple[str, ...], dict[str, float]]) -> Metric:
    metric = HistogramMetricFamily(family.name, family.help, labels=family.labelnames)
    for labels, samples in sorted(series.items()):
        if len(labels) != len(family.labelnames):
            continue  # a series recorded under an older label set (before a deploy changed it)
        running, buckets = 0.0, []
        for bound in (*[repr(b) for b in family.buckets], "+Inf"):
            running += samples.get(bound, 0.0)
            buckets.append((bound, running))
        metric.add_metric(list(labels), buckets, samples.get("sum", 0.0))
    return metric


class AggregatedCollector:
    """Every family in `chalicelib.metrics.FAMILIES`, as summed by Redis over all instances."""

    def __init__(self, redis_client: Any) -> None:
        self.redis = redis_client
        self.sources: dict[str, bool] = {}

    def collect(self) -> Iterator[Metric]:
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(COUNTS_KEY)
            pipe.hgetall(GAUGES_KEY)
            counts, gauges = (_parse(raw) for raw in pipe.execute())
        except Exception as exc:  # noqa: BLE001 - Redis down: the scrape-time readings are still served
            _log_failure("redis", exc)
            self.sources["redis"] = False
            return
        self.sources["redis"] = True
        for family in FAMILIES.values():
            if family.kind == "histogram":
                yield _histogram(family, counts.get(family.name, {}))
                continue
            source = gauges if family.kind == "gauge" else counts
            cls = GaugeMetricFamily if family.kind == "gauge" else CounterMetricFamily
            metric = cls(family.name, family.help, labels=family.labelnames)
            for labels, samples in sorted(source.get(family.name, {}).items()):
                if len(labels) == len(family.labelnames):  # else: recorded under an older label set
                    metric.add_metric(list(labels), samples.get("", 0.0))
            yield metric


class ScrapeTimeCollector:
    """Readings taken at scrape: jobs by status and the DLQ depth."""

    def __init__(self, jobs_by_status=None, dlq_depth=None, job_queue=None,  # noqa: ANN001 - injectable
                 outbox_backlog=None, event_failures=None) -> None:  # noqa: ANN001
        self.jobs_by_status = jobs_by_status or read_jobs_by_status
        self.event_failures = event_failures or read_event_failures_depth
        self.outbox_backlog = outbox_backlog or read_outbox_backlog
        self.dlq_depth = dlq_depth or read_dlq_depth
        self.job_queue = job_queue or read_job_queue
        self.sources: dict[str, bool] = {}

    def collect(self) -> Iterator[Metric]:
        errors = CounterMetricFamily("clustergenie_metrics_scrape_errors",
                                     "Scrape-time readings that failed during this scrape.", labels=["source"])
        jobs = GaugeMetricFamily("clustergenie_jobs", "Jobs by status (read from the database at scrape).",
                                 labels=["status"])
        try:
            counts, oldest = self.jobs_by_status()
            for status in sorted(set(JOB_STATUSES) | set(counts)):
                jobs.add_metric([status], counts.get(status, 0))
            yield jobs
            age = GaugeMetricFamily("clustergenie_jobs_oldest_processing_seconds",
                                    "Age of the least recently updated job in `processing` (0 when none).")
            age.add_metric([], oldest)
            yield age
            self.sources["mariadb"] = True
        except Exception as exc:  # noqa: BLE001 - one failed reading must not cost the whole page
            _log_failure("jobs", exc)
            errors.add_metric(["jobs"], 1)
            self.sources["mariadb"] = False
        try:
            unsent, oldest_unsent = self.outbox_backlog()
            for name, text, value in (
                ("unsent", "Events in the outbox the relay has not published yet (read at scrape).", unsent),
                ("oldest_unsent_seconds", "Age of the oldest unpublished outbox event (0 when none).", oldest_unsent),
            ):
                gauge = GaugeMetricFamily(f"clustergenie_outbox_{name}", text)
                gauge.add_metric([], value)
                yield gauge
        except Exception as exc:  # noqa: BLE001
            _log_failure("outbox", exc)
            errors.add_metric(["outbox"], 1)
            self.sources["mariadb"] = False
        try:
            depth = self.dlq_depth()
            dlq = GaugeMetricFamily("clustergenie_jobs_dlq_messages",
                                    "Messages in the jobs dead-letter queue (SQS, read at scrape).")
            dlq.add_metric([], depth)
            yield dlq
            self.sources["sqs"] = True
        except Exception as exc:  # noqa: BLE001
            _log_failure("dlq", exc)
            errors.add_metric(["dlq"], 1)
            self.sources["sqs"] = False
        try:
            parked = self.event_failures()
            gauge = GaugeMetricFamily("clustergenie_events_failure_queue_messages",
                                      "Batch records in the event handler's on-failure queue (SQS, read at scrape): "
                                      "event batches the Kafka mapping gave up on; `./dev replay events` drains it.")
            gauge.add_metric([], parked)
            yield gauge
        except Exception as exc:  # noqa: BLE001
            _log_failure("event_failures", exc)
            errors.add_metric(["event_failures"], 1)
            self.sources["sqs"] = False
        try:
            # The original's worker-pool gauges, mapped onto the SQS worker: queue depth, in-flight messages
            # (each a busy worker) and the worker concurrency limit.
            visible, in_flight = self.job_queue()
            from chalicelib.settings import get_settings

            for name, text, value in (
                ("queue_length", "Jobs waiting in the job queue (SQS visible messages).", visible),
                ("active_workers", "Jobs being worked on (SQS in-flight messages).", in_flight),
                ("worker_count", "The most job_worker instances SQS runs at once.", get_settings().job_worker_concurrency),
            ):
                gauge = GaugeMetricFamily(f"clustergenie_workerpool_{name}", text + " (the original's name)")
                gauge.add_metric([], value)
                yield gauge
        except Exception as exc:  # noqa: BLE001
            _log_failure("job_queue", exc)
            errors.add_metric(["job_queue"], 1)
        yield errors


class SourceUpCollector:
    """`clustergenie_metrics_source_up{source}`: 1 if the source answered this scrape, 0 if unreachable.
    Registered after the collectors it reports on (generate_latest collects in registration order)."""

    def __init__(self, collectors: Iterable[Any]) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("clustergenie_metrics_source_up",
                               "Whether each source of this page answered the scrape (0: unreachable, its part left out).",
                               labels=["source"])
        for collector in self.collectors:
            for source, answered in sorted(getattr(collector, "sources", {}).items()):
                up.add_metric([source], 1.0 if answered else 0.0)
        yield up


def _log_failure(source: str, exc: Exception) -> None:
    metrics.log().warning("metrics scrape reading failed", extra={"source": source, "error": repr(exc)})


def read_jobs_by_status() -> tuple[dict[str, int], float]:
    """Jobs by status, and how long the stalest `processing` job has not moved."""
    from chalicelib.repositories import JobRepository

    return JobRepository().status_summary()


def read_outbox_backlog() -> tuple[int, float]:
    """(unsent outbox events, age of the oldest in seconds)."""
    from chalicelib.repositories.outbox import OutboxRepository

    return OutboxRepository().backlog()


def read_dlq_depth() -> int:
    from chalicelib.jobs_queue import dead_letter_depth

    return dead_letter_depth()


def read_event_failures_depth() -> int:
    from chalicelib.jobs_queue import event_failures_depth

    return event_failures_depth()


def read_job_queue() -> tuple[int, int]:
    """(visible, in flight) messages of the job queue."""
    from chalicelib.jobs_queue import queue_attributes
    from chalicelib.settings import get_settings

    visible, in_flight = "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"
    figures = queue_attributes(get_settings().jobs_queue_name, [visible, in_flight])
    return figures[visible], figures[in_flight]


def render(collectors: Iterable[Any] | None = None) -> bytes:
    """The exposition text of the aggregated metrics (flushing this instance's own pending ones first)."""
    metrics.flush()
    registry = CollectorRegistry(auto_describe=False)
    if collectors is None:
        from chalicelib.redis_client import get_redis

        collectors = (AggregatedCollector(get_redis()), ScrapeTimeCollector())
    collectors = list(collectors)
    for collector in (*collectors, SourceUpCollector(collectors)):
        registry.register(collector)
    return generate_latest(registry)
