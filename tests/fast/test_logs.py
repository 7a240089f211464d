"""Logs: JSON lines with correlation keys, shipped to Kafka without blocking, stored by the log consumer,
read back per job; Loki gets them when LOKI_URL is set."""
from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import logging
import threading
import time
import uuid

import pytest

from chalicelib import db, metrics, settings
from chalicelib.functions import log_consumer, log_retention
from chalicelib.logs.redaction import INTERNAL_KEYS
from chalicelib.logs.shipping import KafkaLogShipper, shipped
from chalicelib.repositories.log_lines import LogStore, row_of
from chalicelib.observability import logger


def line(function: str, ts: str, message: str, **keys: str) -> str:
    return json.dumps({"level": "INFO", "message": message, "timestamp": ts, "service": "clustergenie",
                       "environment": "test", "function": function, "request_id": f"req-{function}", **keys})


def kafka_event(lines: list[str], topic: str = "logs.clustergenie", partition: int = 0, first_offset: int = 0) -> dict:
    return {"eventSource": "aws:kafka", "records": {f"{topic}-{partition}": [
        {"topic": topic, "partition": partition, "offset": first_offset + i, "timestamp": 0, "timestampType": "CREATE_TIME",
         "key": None, "value": base64.b64encode(text.encode()).decode(), "headers": []}
        for i, text in enumerate(lines)]}}


@pytest.fixture
def clean_logs(clean_db):  # noqa: ANN001
    with db.transaction() as cur:
        cur.execute("DELETE FROM log_lines")


def test_a_jobs_lines_from_every_function_come_back_in_time_order(client, make_cluster, clean_logs):
    cluster = make_cluster()
    job = client.post("/api/v1/jobs", {"type": "monitor", "parameters": {"cluster_id": cluster["id"]}}).json["job"]
    job_id = job["id"]
    lines = [
        line("event_handler", "2026-01-01 10:00:02,500+0000", "event handled", job_id=job_id, trace_id="t1"),
        line("api", "2026-01-01 10:00:00,100+0000", "job queued", job_id=job_id, trace_id="t1"),
        line("job_worker", "2026-01-01 10:00:01,000+0000", "job processed", job_id=job_id, trace_id="t1"),
        line("job_worker", "2026-01-01 10:00:01,000+0000", "another job", job_id="job-other"),
        "not json at all",
    ]
    # Two records: four lines, then a batch of two lines in one record (as the shipper packs them).
    event = kafka_event(lines[:3] + ["\n".join(lines[3:])])
    assert log_consumer.handle_kafka_batch(event, None) == {"received": 5, "stored": 5}
    # Redelivery of the same records (same topic:partition:offset:line) stores nothing twice.
    assert log_consumer.handle_kafka_batch(event, None) == {"received": 5, "stored": 0}

    response = client.get(f"/api/v1/jobs/{job_id}/logs")
    assert response.status_code == 200
    got = response.json["lines"]
    assert [(x["function"], x["message"]) for x in got] == [
        ("api", "job queued"), ("job_worker", "job processed"), ("event_handler", "event handled")]
    assert got[0]["ts"] == "2026-01-01 10:00:00.100000Z" and got[0]["line"]["trace_id"] == "t1"
    assert client.get("/api/v1/jobs/job-missing/logs").status_code == 404


class Lines(logging.Handler):
    """The JSON lines exactly as the logger's stdout handler formats them."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_every_line_carries_the_correlation_keys(client, make_cluster):
    cluster = make_cluster()
    captured = Lines()
    captured.setFormatter(logger.registered_formatter)
    logger.addHandler(captured)
    try:
        logger.info("probe")  # outside an invocation: service, environment, level, timestamp still there
        client.post("/api/v1/jobs", {"type": "monitor", "parameters": {"cluster_id": cluster["id"]}},
                    headers={"X-Trace-Id": "trace-from-client"})
    finally:
        logger.removeHandler(captured)
    records = captured.lines
    for key in ("service", "environment", "level", "timestamp"):
        assert all(key in r for r in records), key
    queued = [r for r in records if r["message"] == "job queued"]
    assert queued, records
    record = queued[0]
    assert record["function"] == "api" and record["request_id"]
    assert record["job_id"].startswith("job-") and record["trace_id"]


@pytest.fixture
def topic(fresh_topic) -> str:  # noqa: ANN001
    """Made and deleted by the fixture: an auto-created topic would stay in the broker's store for good."""
    return fresh_topic(1, "logs-test")


def test_lines_are_produced_to_kafka_with_the_same_json(topic):
    from kafka import KafkaConsumer

    from chalicelib.settings import get_settings

    bootstrap = get_settings().kafka_bootstrap
    shipper = KafkaLogShipper(bootstrap, topic, compression=get_settings().kafka_compression_type)
    shipper.setFormatter(logger.registered_formatter)
    logger.addHandler(shipper)
    try:
        logger.append_keys(job_id="job-shipped", **LAMBDA_CONTEXT_KEYS)
        for i in range(20):
            logger.info("shipped line", extra={"n": i})
        logger.remove_keys(["job_id", *LAMBDA_CONTEXT_KEYS])
        assert shipper.drain(20)
    finally:
        logger.removeHandler(shipper)
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=5000, group_id=None)
    records = list(consumer)
    consumer.close()
    values = [json.loads(text) for m in records for text in m.value.split(b"\n")]
    assert [v["n"] for v in values] == list(range(20))
    # The sender lingers after the first line, so a burst leaves as one Kafka record, not one per line, and
    # compressed as the settings say (lz4 unless told; the consumer decompresses it).
    assert len(records) == 1
    assert shipper._get_producer().config["compression_type"] == "lz4"
    assert all(v["job_id"] == "job-shipped" and v["service"] == "clustergenie" for v in values)
    # The platform keys stay on stdout; the shipped copy (and so the log store) does without them.
    assert all(v["function_name"] == "cg-worker" and not set(v) & INTERNAL_KEYS for v in values)


# What Powertools' inject_lambda_context adds to every line (the values as it writes them).
LAMBDA_CONTEXT_KEYS = {"function_name": "cg-worker", "function_memory_size": "256",
                       "function_arn": "arn:aws:lambda:us-east-1:000000000000:function:cg-worker",
                       "function_request_id": "2ffcc2a8-0e45-4707-8273-f12f80084eba",
                       "xray_trace_id": "1-6b10eaa4-05aab05a2cf978bee3bdd27a"}


def test_the_shipped_copy_drops_only_the_platform_keys():
    line = {"level": "INFO", "message": 'quoting ,"function_arn":"arn:aws:x" and a \\ backslash', **LAMBDA_CONTEXT_KEYS,
            "job_id": "job-1", "function_arn_note": "not a platform key"}
    text = json.dumps(line, separators=(",", ":"))  # as Powertools writes it
    assert json.loads(shipped(text)) == {k: v for k, v in line.items() if k not in INTERNAL_KEYS}
    assert len(shipped(text)) < len(text.encode()) * 0.7



def test_each_line_is_formatted_once_for_stdout_and_the_shipper(monkeypatch):
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    calls = []
    real_format = LambdaPowertoolsFormatter.format

    def counting(self, record):
        calls.append(record.getMessage())
        return real_format(self, record)

    monkeypatch.setattr(LambdaPowertoolsFormatter, "format", counting)
    stdout, shipped = Lines(), Lines()
    for handler in (stdout, shipped):
        handler.setFormatter(logger.registered_formatter)
        logger.addHandler(handler)
    try:
        logger.info("first", extra={"n": 1})
        logger.info("second", extra={"n": 2})
    finally:
        for handler in (stdout, shipped):
            logger.removeHandler(handler)
    assert calls.count("first") == calls.count("second") == 1
    assert stdout.lines == shipped.lines and [x["n"] for x in stdout.lines] == [1, 2]


def test_a_dead_broker_never_blocks_logging_and_drops_are_counted(fresh_rate_limits):
    from chalicelib.redis_client import get_redis

    metrics.reset_buffer()
    get_redis().delete(metrics.COUNTS_KEY, metrics.GAUGES_KEY)
    shipper = KafkaLogShipper("127.0.0.1:1", "logs.clustergenie", maxsize=100)
    shipper.setFormatter(logger.registered_formatter)
    quiet = logging.getLogger("shipper-test")
    quiet.propagate = False
    quiet.setLevel(logging.INFO)
    quiet.addHandler(shipper)
    started = time.perf_counter()
    for i in range(2000):
        quiet.info("line %d", i)
    elapsed = time.perf_counter() - started
    quiet.removeHandler(shipper)
    assert elapsed < 1.0  # 2000 lines, not one wait on the broker
    assert metrics.flush()
    from chalicelib.metrics import exposition
    from chalicelib.redis_client import get_redis

    text = exposition.render([exposition.AggregatedCollector(get_redis())]).decode()
    dropped = [x for x in text.splitlines() if x.startswith('clustergenie_log_lines_dropped_total{reason="queue_full"}')]
    # The sender takes what the queue holds (at most 100) once per linger period while the loop runs, and drops
    # it as broker_unreachable; every other line must be counted as a queue_full drop.
    from chalicelib.logs.shipping import LINGER_SECONDS

    accepted_at_most = 100 * (2 + int(elapsed / LINGER_SECONDS))
    assert dropped and float(dropped[0].split()[-1]) >= 2000 - accepted_at_most


def test_lines_are_pushed_to_loki_when_configured(clean_logs, monkeypatch):
    pushes: list[dict] = []

    class Loki(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            pushes.append({"path": self.path, "body": json.loads(self.rfile.read(int(self.headers["Content-Length"])))})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):  # noqa: ANN002
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Loki)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real = log_consumer.get_settings()
    monkeypatch.setattr(log_consumer, "get_settings",
                        lambda: real.model_copy(update={"loki_url": f"http://127.0.0.1:{server.server_port}"}))
    try:
        log_consumer.handle_kafka_batch(kafka_event([
            line("job_worker", "2026-01-01 10:00:01,000+0000", "job processed", job_id="job-loki")], first_offset=10_000), None)
    finally:
        server.shutdown()
    assert pushes and pushes[0]["path"] == "/loki/api/v1/push"
    stream = pushes[0]["body"]["streams"][0]
    assert stream["stream"] == {"service": "clustergenie", "environment": "test", "level": "INFO", "function": "job_worker"}
    assert json.loads(stream["values"][0][1])["job_id"] == "job-loki"
    assert stream["values"][0][0] == str(1767261601 * 10**9)


# --- Retention ----------------------------------------------------------------------------------------

def _stored_at(*ages_in_days: float, now: dt.datetime) -> None:
    rows = [row_of(f"retention:{i}:{uuid.uuid4().hex[:6]}",
                   line("api", (now - dt.timedelta(days=age)).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3] + "+0000",
                        f"aged {age}"))
            for i, age in enumerate(ages_in_days)]
    assert LogStore().insert(rows) == len(rows)


def _messages() -> list[str]:
    return [r["message"] for r in db.query("SELECT message FROM log_lines ORDER BY ts")]


def test_log_retention_deletes_only_lines_older_than_the_period(clean_logs, monkeypatch):
    monkeypatch.setenv("CG_LOG_RETENTION_DAYS", "7")
    settings.reset_settings()
    now = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc)
    _stored_at(30, 7.01, 6.99, 0, now=now)
    try:
        result = log_retention.run(now=now)
    finally:
        settings.reset_settings()
    assert result["deleted"] == 2 and result["cutoff"] == "2026-11-20T12:00:00Z"
    assert _messages() == ["aged 6.99", "aged 0"]
    assert log_retention.run(now=now)["deleted"] == 0  # nothing left to do: a rerun changes nothing


def test_log_retention_works_a_backlog_off_in_short_batches_over_several_runs(clean_logs):
    now = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc)
    _stored_at(20, 19, 18, 17, 16, 1, now=now)
    store = LogStore()
    cutoff = (now - dt.timedelta(days=7)).replace(tzinfo=None)
    assert store.prune(cutoff, batch=2, max_batches=2) == 4  # this run's share, oldest first
    assert _messages() == ["aged 16", "aged 1"]
    assert store.prune(cutoff, batch=2, max_batches=2) == 1
    assert _messages() == ["aged 1"]


def test_log_retention_deletes_along_the_timestamp_index(clean_logs):
    with db.transaction() as cur:
        cur.execute("EXPLAIN DELETE FROM log_lines WHERE ts < %s ORDER BY ts LIMIT 5000",
                    (dt.datetime(2026, 1, 1),))
        plan = cur.fetchall()
    assert [row["key"] for row in plan] == ["idx_log_lines_ts"], plan


def test_log_retention_refuses_a_period_under_one_day(monkeypatch):
    monkeypatch.setenv("CG_LOG_RETENTION_DAYS", "0")
    settings.reset_settings()
    try:
        with pytest.raises(ValueError, match="CG_LOG_RETENTION_DAYS"):
            log_retention.run()
    finally:
        settings.reset_settings()


def test_log_retention_is_scheduled_hourly_in_the_app():
    from app import app

    assert "log_retention" in app.handler_map
    schedule = next(r for r in app.event_sources if getattr(r, "name", "") == "log_retention")
    assert schedule.schedule_expression == "rate(1 hour)"


def test_the_logical_function_name_is_the_role_the_template_sets(monkeypatch):
    from chalicelib.logs.context import logical_function_name

    logical_function_name.cache_clear()
    monkeypatch.setenv("CG_FUNCTION", "job_worker")
    try:  # CloudFormation's name carries no role; CG_FUNCTION (set per function in the template) does
        assert logical_function_name("clustergenie-local-JobWorker-8e66acfb") == "job_worker"
    finally:
        logical_function_name.cache_clear()
    monkeypatch.delenv("CG_FUNCTION")
    assert logical_function_name("api_handler") == "api"  # in-process runs keep Chalice's names
    logical_function_name.cache_clear()
