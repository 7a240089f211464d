"""Aggregated metrics (chalicelib.metrics): counts add up across instances, GET /metrics serves them."""
from __future__ import annotations

import multiprocessing

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chalicelib import metrics
from chalicelib.metrics import exposition


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, metric: str, **labels: str) -> float | None:
    return samples(text).get((metric, tuple(sorted(labels.items()))))


def clear_aggregated_metrics() -> None:
    from chalicelib.redis_client import get_redis

    get_redis().delete(metrics.COUNTS_KEY, metrics.GAUGES_KEY)


@pytest.fixture
def fresh_metrics(fresh_rate_limits):  # noqa: ANN001 - full limiter buckets too
    metrics.reset_buffer()
    clear_aggregated_metrics()
    yield
    metrics.reset_buffer()


def render_without_scrape_readings() -> str:
    from chalicelib.redis_client import get_redis

    return exposition.render([exposition.AggregatedCollector(get_redis())]).decode()


def _instance(n: int) -> None:
    # A fresh "Lambda instance": its own buffer and Redis connection; one flush per invocation.
    metrics._client.set(None)
    metrics.reset_buffer()
    for i in range(n):
        metrics.observe_job("provision", "completed", 0.02 * (i % 7))
        metrics.inc(metrics.EXPORTER_RUNS, ("ok",))
        if i % 10 == 9:
            assert metrics.flush()
    assert metrics.flush()


def test_counts_from_concurrent_instances_add_up_exactly(fresh_metrics):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_instance, args=(200,)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    text = render_without_scrape_readings()
    assert value(text, "clustergenie_job_duration_seconds_count", type="provision", outcome="completed") == 1600
    assert value(text, "clustergenie_job_duration_seconds_bucket", type="provision", outcome="completed", le="+Inf") == 1600
    assert value(text, "clustergenie_exporter_runs_total", outcome="ok") == 1600
    # Cumulative buckets: 0.0 observations are in every bucket; 0.12 only from le=0.5 up.
    assert value(text, "clustergenie_job_duration_seconds_bucket", type="provision", outcome="completed", le="0.01") < \
        value(text, "clustergenie_job_duration_seconds_bucket", type="provision", outcome="completed", le="0.5")


def test_http_requests_are_counted_by_route_template_and_status(client, make_cluster, fresh_metrics):
    cluster = make_cluster()
    client.get(f"/api/v1/clusters/{cluster['id']}")
    client.get("/api/v1/clusters/cluster-missing")
    response = client.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.body.decode()
    route, path = "/api/v1/clusters/{cluster_id}", "/api/v1/clusters/:cluster_id"  # path: the original's label
    assert value(text, "clustergenie_http_requests_total", method="GET", route=route, status="200", path=path) == 1
    assert value(text, "clustergenie_http_requests_total", method="GET", route=route, status="404", path=path) == 1
    assert value(text, "clustergenie_http_request_duration_seconds_count", method="GET", route=route, path=path) == 2
    assert value(text, "clustergenie_http_requests_total", method="POST", route="/api/v1/clusters", status="201",
                 path="/api/v1/clusters") == 1
    # Jobs by status are read from the database at scrape, every status present.
    assert value(text, "clustergenie_jobs", status="queued") == 0


def test_rate_limit_denials_reach_the_aggregate(client, fresh_metrics):
    for _ in range(6):
        client.post("/api/v1/jobs", {"type": "monitor", "parameters": {}}, headers={"X-User-ID": "metrics-test"})
    text = render_without_scrape_readings()
    assert value(text, "clustergenie_rate_limit_exceeded_total", name="jobs_create", scope_type="user") >= 1
    assert value(text, "clustergenie_http_requests_total", method="POST", route="/api/v1/jobs", status="429",
                 path="/api/v1/jobs") >= 1


def test_scrape_readings_are_served_and_a_failing_one_is_counted(fresh_metrics):
    def broken() -> int:
        raise ConnectionError("sqs down")

    collector = exposition.ScrapeTimeCollector(jobs_by_status=lambda: ({"failed": 3}, 42.0), dlq_depth=lambda: 4,
                                               event_failures=lambda: 2)
    text = exposition.render([collector]).decode()
    assert value(text, "clustergenie_events_failure_queue_messages") == 2
    assert value(text, "clustergenie_jobs", status="failed") == 3
    assert value(text, "clustergenie_jobs", status="processing") == 0
    assert value(text, "clustergenie_jobs_dlq_messages") == 4
    assert value(text, "clustergenie_jobs_oldest_processing_seconds") == 42.0
    text = exposition.render([exposition.ScrapeTimeCollector(jobs_by_status=lambda: ({}, 0.0), dlq_depth=broken,
                                                             event_failures=broken)]).decode()
    assert value(text, "clustergenie_jobs_dlq_messages") is None
    assert value(text, "clustergenie_metrics_scrape_errors_total", source="dlq") == 1
    assert value(text, "clustergenie_events_failure_queue_messages") is None
    assert value(text, "clustergenie_metrics_scrape_errors_total", source="event_failures") == 1


def test_events_handled_and_publish_failures_are_served_with_the_other_counters(fresh_metrics):
    from chalicelib.event_pipeline.counters import BatchCounts
    from chalicelib.events import EventPublisher

    counts = BatchCounts()
    for _ in range(7):
        counts.processed("job_completed")
    counts.skipped("unknown_type")
    counts.skipped("unknown_type")
    counts.duplicate()
    counts.record()

    class Unreachable(EventPublisher):
        def publish(self, event):  # noqa: ANN001
            raise ConnectionError("broker down")

    assert Unreachable().publish_best_effort({"type": "job_failed", "job_id": "job-x"}) is False
    text = render_without_scrape_readings()
    assert value(text, "clustergenie_events_handled_total", type="job_completed", outcome="processed", reason="") == 7
    assert value(text, "clustergenie_events_handled_total", type="", outcome="skipped", reason="unknown_type") == 2
    assert value(text, "clustergenie_events_handled_total", type="", outcome="duplicate", reason="") == 1
    assert value(text, "clustergenie_event_publish_failures_total", type="job_failed") == 1


def test_unreachable_redis_keeps_the_increments_for_the_next_flush(fresh_metrics, monkeypatch):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    dead = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    metrics._client.set(dead)
    metrics.inc(metrics.EXPORTER_RUNS, ("ok",))
    assert metrics.flush() is False  # no exception: the invocation goes on
    metrics.inc(metrics.EXPORTER_RUNS, ("ok",))
    metrics._client.set(None)
    assert metrics.flush() is False  # still inside the retry pause
    metrics._buffer.retry_at = 0.0
    assert metrics.flush() is True
    text = render_without_scrape_readings()
    assert value(text, "clustergenie_exporter_runs_total", outcome="ok") == 2


def test_switched_off_records_nothing(fresh_metrics, monkeypatch):
    from chalicelib import settings

    off = settings.get_settings().model_copy(update={"metrics_enabled": False})
    monkeypatch.setattr(settings, "get_settings", lambda: off)  # metrics reads it where used
    metrics.inc(metrics.EXPORTER_RUNS, ("ok",))
    metrics.observe_http("GET", "/x", 200, 0.001)
    assert metrics.pending() == 0


def test_jobs_run_by_the_worker_are_counted_once_by_type_and_outcome(app, client, make_cluster, fresh_metrics):
    import json

    from chalice.test import Client

    cluster = make_cluster()
    job_ids = [client.post("/api/v1/jobs", {"type": "diagnose", "parameters": {"cluster_id": cluster["id"]}},
                           headers={"X-User-ID": f"metrics-{i}"}).json["job"]["id"] for i in range(3)]
    with Client(app) as test_client:
        event = test_client.events.generate_sqs_event(
            queue_name="clustergenie-jobs", message_bodies=[json.dumps({"job_id": j, "trace_id": "t"}) for j in job_ids])
        test_client.lambda_.invoke("job_worker", event)
        test_client.lambda_.invoke("job_worker", event)  # a redelivery: idempotent, not counted again
    text = render_without_scrape_readings()
    assert value(text, "clustergenie_job_duration_seconds_count", type="diagnose", outcome="completed") == 3


def test_a_job_run_interrupted_by_an_outage_is_counted_as_retried_then_completed(app, client, make_cluster,
                                                                               fresh_metrics):
    import json

    from chalice.test import Client

    from provider_doubles import FailingLaunches

    from chalicelib.providers import set_provider

    cluster = make_cluster()
    job_id = client.post("/api/v1/jobs", {"type": "provision", "parameters": {"cluster_id": cluster["id"]}},
                         headers={"X-User-ID": "metrics-retry"}).json["job"]["id"]
    with Client(app) as test_client:
        event = test_client.events.generate_sqs_event(
            queue_name="clustergenie-jobs", message_bodies=[json.dumps({"job_id": job_id, "trace_id": "t"})])
        set_provider("simulated", FailingLaunches(ConnectionError("provider API unreachable")))
        try:
            failed = test_client.lambda_.invoke("job_worker", event).payload
        finally:
            set_provider("simulated", None)
        assert len(failed["batchItemFailures"]) == 1  # left for SQS to deliver again
        test_client.lambda_.invoke("job_worker", event)
    text = render_without_scrape_readings()
    assert value(text, "clustergenie_job_duration_seconds_count", type="provision", outcome="retried") == 1
    assert value(text, "clustergenie_job_duration_seconds_count", type="provision", outcome="completed") == 1


def test_an_outage_at_a_jobs_start_is_counted_as_retried_and_leaves_the_job_queued(app, client, make_cluster,
                                                                                    fresh_metrics, monkeypatch):
    """A runner started before it runs (diagnose) meets an outage in its start: the delivery is retried and counted
    `retried` like an outage anywhere else in the run, nothing is written, and the redelivery completes the job."""
    import json

    from chalice.test import Client

    from chalicelib.errors import DependencyUnavailableError
    from chalicelib.repositories import JobRepository
    from chalicelib.services.jobs import JobService

    cluster = make_cluster()
    job_id = client.post("/api/v1/jobs", {"type": "diagnose", "parameters": {"cluster_id": cluster["id"]}},
                         headers={"X-User-ID": "metrics-start-outage"}).json["job"]["id"]

    def unreachable(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        raise DependencyUnavailableError("database")

    with Client(app) as test_client:
        event = test_client.events.generate_sqs_event(
            queue_name="clustergenie-jobs", message_bodies=[json.dumps({"job_id": job_id, "trace_id": "t"})])
        with monkeypatch.context() as patched:
            patched.setattr(JobService, "start", unreachable)
            failed = test_client.lambda_.invoke("job_worker", event).payload
        assert len(failed["batchItemFailures"]) == 1  # left for SQS to deliver again
        assert client.get(f"/api/v1/jobs/{job_id}").json["job"]["status"] == "queued"
        assert JobRepository().attempt_record(job_id)[0] is None  # an outage is not the job's own error
        test_client.lambda_.invoke("job_worker", event)
    text = render_without_scrape_readings()
    assert value(text, "clustergenie_job_duration_seconds_count", type="diagnose", outcome="retried") == 1
    assert value(text, "clustergenie_job_duration_seconds_count", type="diagnose", outcome="completed") == 1
    assert client.get(f"/api/v1/jobs/{job_id}").json["job"]["status"] == "completed"


def test_the_originals_job_and_worker_pool_metric_names_are_served(fresh_metrics, client):
    # The original's dashboards and rules (api-v1-wire.md §6) query these names and labels.
    metrics.observe_job("provision", "completed", 0.3)
    metrics.observe_job("scale", "failed", 2.0)
    collector = exposition.ScrapeTimeCollector(jobs_by_status=lambda: ({}, 0.0), dlq_depth=lambda: 0,
                                               job_queue=lambda: (7, 2), event_failures=lambda: 0)
    text = exposition.render([exposition.AggregatedCollector(_redis()), collector]).decode()
    assert value(text, "clustergenie_jobs_processed_total", job_type="provision", status="completed") == 1
    assert value(text, "clustergenie_jobs_processed_total", job_type="scale", status="failed") == 1
    assert value(text, "clustergenie_job_processing_seconds_bucket", job_type="provision", status="completed", le="0.5") == 1
    assert value(text, "clustergenie_job_processing_seconds_bucket", job_type="provision", status="completed", le="0.25") == 0
    assert value(text, "clustergenie_workerpool_queue_length") == 7
    assert value(text, "clustergenie_workerpool_active_workers") == 2
    assert value(text, "clustergenie_workerpool_worker_count") == 10
    # HEAD /metrics is answered (the original answered any method), without a body
    head = client.request("HEAD", "/metrics")
    assert head.status_code == 200 and not head.body and head.headers["Content-Type"].startswith("text/plain")


def test_series_recorded_under_an_older_label_set_are_skipped_not_fatal(fresh_metrics):
    # A deploy that adds a label (as `path` was) leaves the old series in Redis: the page must still render.
    from chalicelib.redis_client import get_redis

    get_redis().hset(metrics.COUNTS_KEY, metrics.field("clustergenie_http_requests_total", "", ("GET", "/x", "200")), 3)
    text = exposition.render([exposition.AggregatedCollector(get_redis())]).decode()
    assert value(text, "clustergenie_http_requests_total", method="GET", route="/x", status="200") is None


def _redis():
    from chalicelib.redis_client import get_redis

    return get_redis()
