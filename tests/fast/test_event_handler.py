"""The event_handler function: MSK-shaped batches in, read models, rows, jobs and dead letters out."""
from __future__ import annotations

import base64
import json
import types
import uuid

import pytest

from msk_events import batch_of, envelope, kafka_record, msk_event

from chalicelib.event_signing import HEADER, sign
from chalicelib.event_pipeline import batch as batch_module
from chalicelib import metrics
from chalicelib.event_pipeline.dead_letters import InMemoryDeadLetters, set_dead_letters
from chalicelib.redis_client import get_redis
from chalicelib.repositories import ClusterRepository, DropletRepository


class Context:
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


@pytest.fixture
def handle(clean_db, job_queue, fresh_rate_limits):  # noqa: ANN001 - fixtures
    """handle(event) runs the deployed handler function in-process."""
    from app import app  # noqa: F401 - the function is wired in app.py
    from chalicelib.functions.event_handler import handle_kafka_batch

    batch_module.reset_batch_processor()
    # Fixtures reuse offsets: start every test with an empty ledger, read models, cool-downs and counters.
    redis = get_redis()
    keys = list(redis.scan_iter("events:*", count=1000))
    if keys:
        redis.delete(*keys)
    metrics.reset_buffer()
    redis.delete(metrics.COUNTS_KEY, metrics.GAUGES_KEY)
    return lambda event: handle_kafka_batch(event, Context())


@pytest.fixture
def dead_letters():
    sink = InMemoryDeadLetters()
    set_dead_letters(sink)
    yield sink
    set_dead_letters(None)


@pytest.fixture
def cluster():
    return ClusterRepository().create(name="events", region="nyc3")


def counts() -> dict[str, int]:
    """`clustergenie_events_handled_total` as GET /metrics serves it, as {"processed:<type>" | "<outcome>:<reason>"
    | "duplicate": n} (series at 0 left out)."""
    from prometheus_client.parser import text_string_to_metric_families

    from chalicelib.metrics import exposition

    text = exposition.render([exposition.AggregatedCollector(get_redis())]).decode()
    served = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "clustergenie_events_handled_total" and s.value:
                detail = s.labels["type"] or s.labels["reason"]
                served[f"{s.labels['outcome']}:{detail}" if detail else s.labels["outcome"]] = int(s.value)
    return served


def metric_rows(cluster_id: str) -> list[dict]:
    from chalicelib import db

    return db.query("SELECT type, value FROM metrics WHERE cluster_id = %s ORDER BY id", (cluster_id,))


# --- one test per event type ------------------------------------------------------------------------------
@pytest.mark.parametrize("event_type,progress,status", [
    ("job_requested", 0, "queued"), ("job_started", 5, "processing"), ("job_progress", 40, "processing"),
    ("job_completed", 100, "completed"), ("job_failed", 40, "failed"),
])
def test_job_event_updates_the_read_model(handle, dead_letters, cluster, event_type, progress, status):
    job_id = f"job-{uuid.uuid4()}"
    previous = envelope("job_progress", cluster["id"], job_id=job_id, progress=40, timestamp="2026-01-01T00:00:00Z")
    event = envelope(event_type, cluster["id"], job_id=job_id, progress=progress if event_type != "job_completed" else None,
                     timestamp="2026-01-01T00:00:05Z")
    assert handle(batch_of([previous, event])) == {"records": 2, "applied": 2, "duplicates": 0, "malformed": 0}
    model = get_redis().hgetall(f"events:job:{job_id}")
    assert model["status"] == status
    assert int(model["progress"]) == max(40, progress)  # progress never goes back
    assert model["last_event_type"] == event_type
    assert model["last_event_at"] == "2026-01-01T00:00:05.000000Z"
    assert model["cluster_id"] == cluster["id"]
    assert counts()[f"processed:{event_type}"] == (2 if event_type == "job_progress" else 1)


def test_the_handler_logs_one_line_per_job_and_batch_naming_its_events(handle, dead_letters, cluster, caplog):
    """`GET /jobs/{id}/logs` shows what the event handler did for the job: one line per job and batch, with the
    job's correlation keys and every event type applied, in order (a line per event was half of all log lines)."""
    first, second = f"job-{uuid.uuid4()}", f"job-{uuid.uuid4()}"
    batch = [envelope("job_started", cluster["id"], job_id=first, progress=5),
             envelope("job_started", cluster["id"], job_id=second, progress=5),
             envelope("job_progress", cluster["id"], job_id=first, progress=30),
             envelope("job_completed", cluster["id"], job_id=first)]
    with caplog.at_level("INFO"):
        assert handle(batch_of(batch))["applied"] == 4
    applied = [r for r in caplog.records if r.getMessage() == "job events applied"]
    assert {r.job_id: r.event_types for r in applied} == {
        first: ["job_started", "job_progress", "job_completed"], second: ["job_started"]}
    assert all(r.cluster_id == cluster["id"] for r in applied)
    assert not [r for r in caplog.records if r.getMessage() == "job event applied"]


def test_the_read_model_is_served_as_the_jobs_event_state(handle, dead_letters, cluster, client):
    from chalicelib.repositories import JobRepository

    # The route serves the read model of a job of the caller's tenant only (issue 13): a stored job.
    job_id = JobRepository().create(job_type="monitor", cluster_id=cluster["id"], parameters={}, trace_id="t")["id"]
    handle(batch_of([envelope("job_started", cluster["id"], job_id=job_id, progress=5, timestamp="2026-01-01T00:00:01Z"),
                     envelope("job_progress", cluster["id"], job_id=job_id, progress=40, timestamp="2026-01-01T00:00:02Z")]))
    served = client.get(f"/api/v1/jobs/{job_id}/event-state")
    assert served.status_code == 200
    assert served.json == {"job_id": job_id, "cluster_id": cluster["id"], "status": "processing", "progress": 40,
                           "last_event_type": "job_progress", "last_event_at": "2026-01-01T00:00:02.000000Z"}
    missing = client.get(f"/api/v1/jobs/job-{uuid.uuid4()}/event-state")
    assert missing.status_code == 404 and missing.json == {"error": "No event about this job was handled"}


def test_final_job_status_survives_a_late_progress_event(handle, dead_letters, cluster):
    job_id = f"job-{uuid.uuid4()}"
    handle(batch_of([envelope("job_completed", cluster["id"], job_id=job_id, timestamp="2026-01-01T00:00:09Z"),
                     envelope("job_progress", cluster["id"], job_id=job_id, progress=50, timestamp="2026-01-01T00:00:01Z")]))
    model = get_redis().hgetall(f"events:job:{job_id}")
    assert (model["status"], model["progress"], model["last_event_type"]) == ("completed", "100", "job_completed")


def test_droplet_created_adds_the_droplet_to_its_cluster_once(handle, dead_letters, cluster, client):
    droplet = {"id": f"droplet-{uuid.uuid4()}", "name": "web-1", "region": "fra1", "size": "s-2vcpu-2gb",
               "image": "ubuntu-22-04-x64", "provider": "simulated", "status": "active", "ip_address": "10.0.0.7"}
    created = envelope("droplet_created", cluster["id"], payload={"droplet": droplet})
    handle(batch_of([created]))
    # The same announcement again at another offset (a producer retry): still listed once.
    handle(msk_event([kafka_record(created, 1)]))
    listed = client.get(f"/api/v1/clusters/{cluster['id']}").json["cluster"]["droplets"]
    assert listed == [droplet["id"]]
    row = DropletRepository().get(droplet["id"])
    assert (row["region"], row["size"], row["status"], row["ip_address"]) == ("fra1", "s-2vcpu-2gb", "active", "10.0.0.7")


def test_droplet_created_for_a_droplet_already_stored_changes_nothing(handle, dead_letters, cluster, snapshot):
    existing = DropletRepository().create(name="w", region="nyc3", size="s-1vcpu-1gb", image="ubuntu-22-04-x64",
                                          provider="simulated", cluster_id=cluster["id"], status="active")
    before = snapshot()
    handle(batch_of([envelope("droplet_created", cluster["id"], payload={"droplet": {"id": existing["id"], "status": "error"}})]))
    assert snapshot() == before
    assert counts()["processed:droplet_created"] == 1


def test_a_droplet_deleted_before_its_jobs_announcement_is_applied_does_not_come_back(
        handle, dead_letters, cluster, snapshot):
    """A provision job's `droplet_created` reaches the event handler through the outbox, Kafka and the bridge;
    a terminate job running in another worker can delete the droplet first (seen in the browser tier once SQS
    batches ran concurrently). The job wrote the row with the announcement, so its absence means deleted."""
    from chalicelib.repositories.jobs import JobRepository

    job = JobRepository().create(job_type="provision", cluster_id=cluster["id"],
                                 parameters={"cluster_id": cluster["id"]}, trace_id=str(uuid.uuid4()))
    before = snapshot()
    gone = {"id": f"droplet-{uuid.uuid4()}", "name": "web-1", "status": "active"}
    handle(batch_of([envelope("droplet_created", cluster["id"], job_id=job["id"], payload={"droplet": gone})]))
    assert snapshot() == before  # not inserted
    assert counts()["processed:droplet_created"] == 1
    # The same announcement from a producer that is not one of our jobs still adds the droplet.
    handle(msk_event([kafka_record(envelope("droplet_created", cluster["id"], job_id=f"job-{uuid.uuid4()}",
                                           payload={"droplet": gone}), 1)]))
    assert DropletRepository().get(gone["id"])["cluster_id"] == cluster["id"]


def test_a_stored_jobs_announcement_is_one_read_and_writes_nothing(handle, dead_letters, cluster, snapshot):
    """Issue 16, sixth round: the usual `droplet_created` (the app's own job announcing the droplet it recorded)
    is settled by one read, without an insert or a locking read; an unknown cluster is still told apart."""
    from chalicelib import db
    from chalicelib.repositories.jobs import JobRepository

    job = JobRepository().create(job_type="provision", cluster_id=cluster["id"],
                                 parameters={"cluster_id": cluster["id"]}, trace_id=str(uuid.uuid4()))

    def writes() -> dict[str, int]:
        rows = db.query("SHOW SESSION STATUS WHERE Variable_name IN ('Com_insert', 'Com_insert_select')")
        return {r["Variable_name"]: int(r["Value"]) for r in rows}

    before, written = snapshot(), writes()
    droplet = {"id": f"droplet-{uuid.uuid4()}", "name": "web-1", "status": "active"}
    handle(batch_of([envelope("droplet_created", cluster["id"], job_id=job["id"], payload={"droplet": droplet}),
                     envelope("droplet_created", f"cluster-{uuid.uuid4()}", job_id=job["id"],
                              payload={"droplet": {**droplet, "id": f"droplet-{uuid.uuid4()}"}})]))
    assert snapshot() == before and writes() == written
    assert (counts()["processed:droplet_created"], counts()["skipped:cluster_not_found"]) == (1, 1)


def test_telemetry_metrics_list_persists_rows_and_sets_health(handle, dead_letters, cluster):
    event = envelope("telemetry", cluster["id"], payload={"metrics": [
        {"type": "cpu", "value": 50.0}, {"type": "memory", "value": 90.0},
        {"type": "disk", "value": 10, "timestamp": "2026-01-01T00:00:00Z"}]})
    handle(batch_of([event]))
    assert metric_rows(cluster["id"]) == [{"type": "cpu", "value": 50.0}, {"type": "memory", "value": 90.0},
                                          {"type": "disk", "value": 10.0}]
    stored = ClusterRepository().get(cluster["id"])
    assert stored["status"] == "critical"  # memory > 85, MonitoringService's rule
    assert stored["last_checked"] is not None


def test_telemetry_flat_keys_persist_rows_and_set_health(handle, dead_letters, cluster):
    handle(batch_of([envelope("telemetry", cluster["id"], payload={"cpu": 85, "memory": 20, "disk": 30, "network": 120})]))
    assert sorted(r["type"] for r in metric_rows(cluster["id"])) == ["cpu", "disk", "memory", "network"]
    assert ClusterRepository().get(cluster["id"])["status"] == "warning"  # cpu > 80


def test_threshold_burst_creates_one_scale_job(handle, dead_letters, cluster, job_queue):
    alert = lambda i: envelope("metric_threshold_exceeded", cluster["id"], payload={"metric": "cpu", "value": 95 + i % 3})  # noqa: E731
    handle(batch_of([alert(i) for i in range(30)]))
    handle(batch_of([alert(i) for i in range(20)], start=30))  # the burst goes on in the next batch
    from chalicelib import db

    jobs = db.query("SELECT id, type, parameters FROM jobs WHERE cluster_id = %s", (cluster["id"],))
    assert [j["type"] for j in jobs] == ["scale"]
    assert json.loads(jobs[0]["parameters"])["reason"] == "metric_threshold_exceeded"
    assert job_queue.sent_job_ids() == [jobs[0]["id"]]  # queued like any job
    assert counts()["processed:metric_threshold_exceeded"] == 1
    assert counts()["skipped:scale_cooldown"] == 49


@pytest.mark.parametrize("fields, expected", [
    ({"correlation_id": "req-from-the-api"}, "req-from-the-api"),  # the producer named what caused it
    ({"id": "alert-42"}, "alert-42"),  # else the alert's own id
    ({}, None),  # else the alert's ledger key (its place in the topic)
])
def test_a_scale_job_from_an_alert_carries_the_alerts_correlation_id(handle, dead_letters, cluster, monkeypatch,
                                                                    fields, expected):
    from chalicelib.services.jobs import JobService

    seen = []
    real_submit = JobService.submit

    def spy(self, job_type, cluster_id, parameters, *, correlation_id=None, caller="anonymous"):  # noqa: ANN001
        seen.append(correlation_id)
        return real_submit(self, job_type, cluster_id, parameters, correlation_id=correlation_id, caller=caller)

    monkeypatch.setattr(JobService, "submit", spy)
    handle(batch_of([envelope("metric_threshold_exceeded", cluster["id"], payload={"metric": "cpu", "value": 97},
                              **fields)]))
    assert len(seen) == 1 and seen[0]
    if expected is not None:
        assert seen[0] == expected
    else:
        topic, partition, offset, _timestamp = seen[0].split(":")  # the record's place in the topic
        assert (partition, offset) == ("0", "0") and topic


def test_threshold_burst_on_a_cluster_with_a_policy_lets_the_policy_decide(handle, dead_letters, client, make_cluster, job_queue):
    cluster_id = make_cluster()["id"]
    for n in range(2):
        DropletRepository().create(name=f"d{n}", region="nyc3", size="s-1vcpu-1gb", image="ubuntu-22-04-x64",
                                   provider="simulated", cluster_id=cluster_id, status="active")
    created = client.post("/api/v1/autoscaling/policies", {"name": "cpu-high", "type": "metrics", "min_replicas": 1,
                                                           "max_replicas": 4, "metric_type": "cpu", "metric_trigger": 0.8,
                                                           "cluster_id": cluster_id})
    assert created.status_code == 201, created.json
    handle(batch_of([envelope("telemetry", cluster_id, payload={"cpu": 93}),
                     *[envelope("metric_threshold_exceeded", cluster_id, payload={"metric": "cpu"}) for _ in range(10)]]))
    from chalicelib import db

    [job] = db.query("SELECT type, parameters FROM jobs WHERE cluster_id = %s", (cluster_id,))
    assert json.loads(job["parameters"])["replicas"] == "3"  # the policy's target, not a bare +1
    assert counts()["processed:metric_threshold_exceeded"] == 1


def test_unknown_type_is_counted_and_skipped(handle, dead_letters, cluster, snapshot):
    before = snapshot()
    result = handle(batch_of([envelope("cluster_renamed", cluster["id"])]))
    assert result["applied"] == 1 and not dead_letters.letters
    assert snapshot() == before
    assert counts() == {"skipped:unknown_type": 1}


def test_event_about_a_missing_cluster_is_skipped(handle, dead_letters):
    handle(batch_of([envelope("telemetry", "cluster-nope", payload={"cpu": 1}),
                     envelope("droplet_created", "cluster-nope", payload={"droplet": {"id": "droplet-x1"}}),
                     envelope("metric_threshold_exceeded", "cluster-nope")]))
    assert counts() == {"skipped:cluster_not_found": 3}
    assert not get_redis().exists("events:scale_cooldown:cluster-nope")  # a later real alert may scale


# --- malformed records: one test per class --------------------------------------------------------------
def _with_raw_value(valid: dict, raw_b64: str | None) -> dict:
    """A batch: valid event, the malformed record, valid event, all on partition 0."""
    event = batch_of([valid, {"placeholder": True}, valid])
    record = event["records"]["cluster-events-0"][1]
    if raw_b64 is None:
        record.pop("value")
    else:
        record["value"] = raw_b64
        try:  # malformed, yet produced (signed) by the app: what is checked is the shape, not the origin
            record["headers"] = [{HEADER: list(sign(base64.b64decode(raw_b64, validate=True)))}]
        except ValueError:
            pass  # not base64: refused before its signature is looked at
    return event


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("reason,raw_b64", [
    ("bad_base64", "abc"),
    ("bad_json", _b64(b'{"type": "telemetry", ')),
    ("bad_json", _b64(b"\xff\xfe not utf-8")),
    ("missing_field", _b64(json.dumps({"type": "job_progress", "cluster_id": "c", "timestamp": "2026-01-01T00:00:00Z"}).encode())),
    ("missing_field", _b64(json.dumps({"cluster_id": "c", "timestamp": "2026-01-01T00:00:00Z"}).encode())),
    ("wrong_type", _b64(json.dumps({"type": "job_progress", "job_id": "j", "cluster_id": "c", "progress": "50",
                                    "timestamp": "2026-01-01T00:00:00Z"}).encode())),
    ("wrong_type", _b64(json.dumps({"type": "telemetry", "cluster_id": "c", "timestamp": "yesterday",
                                    "payload": {"cpu": 1}}).encode())),
    ("wrong_type", _b64(json.dumps([1, 2, 3]).encode())),
    ("missing_value", None),
], ids=["bad_base64", "bad_json", "bad_utf8", "missing_job_id", "missing_type", "string_progress", "bad_timestamp",
        "not_an_object", "missing_value"])
def test_malformed_record_is_dead_lettered_without_blocking_the_partition(handle, dead_letters, cluster, reason, raw_b64):
    job_id = f"job-{uuid.uuid4()}"
    valid = envelope("job_progress", cluster["id"], job_id=job_id, progress=10)
    event = _with_raw_value(valid, raw_b64)
    result = handle(event)
    assert result == {"records": 3, "applied": 2, "duplicates": 0, "malformed": 1}
    assert get_redis().hget(f"events:job:{job_id}", "progress") == "10"
    [letter] = dead_letters.letters
    assert letter["reason"] == reason
    assert letter["source"] == {"topic": "cluster-events", "partition": 0, "offset": 1, "timestamp": 1_700_000_000_000}
    assert letter["value"] == raw_b64  # the record as delivered, for inspection or replay
    assert counts()[f"malformed:{reason}"] == 1
    # Redelivered (same offsets): nothing is dead-lettered twice.
    assert handle(event)["duplicates"] == 3
    assert len(dead_letters.letters) == 1


# --- delivery semantics -----------------------------------------------------------------------------------
def _mixed(cluster_id: str) -> list[dict]:
    job_id = f"job-{uuid.uuid4()}"
    return [
        envelope("job_started", cluster_id, job_id=job_id, progress=0),
        envelope("telemetry", cluster_id, payload={"cpu": 30, "memory": 30, "disk": 30}),
        envelope("droplet_created", cluster_id, payload={"droplet": {"id": f"droplet-{uuid.uuid4()}"}}),
        envelope("metric_threshold_exceeded", cluster_id, payload={"metric": "cpu"}),
        envelope("job_completed", cluster_id, job_id=job_id),
        envelope("mystery", cluster_id),
    ]


def test_replaying_a_batch_changes_nothing(handle, dead_letters, cluster, snapshot, job_queue):
    event = batch_of(_mixed(cluster["id"]))
    event["records"]["cluster-events-0"].append({**event["records"]["cluster-events-0"][0], "offset": 6, "value": "abc"})
    handle(event)
    before, redis_before, sent = snapshot(), counts(), list(job_queue.messages)
    result = handle(event)
    assert result == {"records": 7, "applied": 0, "duplicates": 7, "malformed": 0}
    assert snapshot() == before
    assert job_queue.messages == sent and len(dead_letters.letters) == 1
    assert counts() == {**redis_before, "duplicate": 7}


def test_telemetry_applied_again_after_a_crash_before_the_ledger_mark_stores_its_rows_once(
        handle, dead_letters, cluster, monkeypatch):
    from chalicelib.event_pipeline.ledger import EventLedger

    event = batch_of([envelope("telemetry", cluster["id"], payload={"cpu": 50 + i, "memory": 40})
                      for i in range(3)])
    real_done = EventLedger.done

    def crash_once(self, keys, pipe=None):  # noqa: ANN001 - the rows are committed, the marks not yet
        monkeypatch.setattr(EventLedger, "done", real_done)
        raise ConnectionError("Redis link lost before the ledger mark")

    monkeypatch.setattr(EventLedger, "done", crash_once)
    with pytest.raises(Exception):  # noqa: B017 - the invocation fails; the bridge/MSK redelivers the batch
        handle(event)
    assert len(metric_rows(cluster["id"])) == 6  # committed before the crash
    handle(event)  # the redelivery: the ledger has no marks, so the events are applied again...
    rows = metric_rows(cluster["id"])
    assert len(rows) == 6  # ...but the rows are not stored twice
    assert sorted(r["value"] for r in rows if r["type"] == "cpu") == [50, 51, 52]


def test_a_recreated_topic_reusing_offsets_is_not_mistaken_for_a_replay(handle, dead_letters, cluster):
    """Offsets restart when a topic is recreated (or a broker's data reset): the same coordinates with
    another record timestamp are a new record, applied, not skipped as a duplicate for the ledger's TTL."""
    first = batch_of([envelope("telemetry", cluster["id"], payload={"cpu": 1})])
    assert handle(first)["applied"] == 1
    assert handle(first)["duplicates"] == 1  # the same record again: a replay
    recreated = batch_of([envelope("telemetry", cluster["id"], payload={"cpu": 2})], timestamp=1_800_000_000_000)
    assert handle(recreated) == {"records": 1, "applied": 1, "duplicates": 0, "malformed": 0}
    assert len(metric_rows(cluster["id"])) == 2


def test_an_event_id_makes_copies_at_other_offsets_duplicates(handle, dead_letters, cluster):
    event = envelope("telemetry", cluster["id"], id=str(uuid.uuid4()), payload={"cpu": 10})
    handle(msk_event([kafka_record(event, 0), kafka_record(event, 1), kafka_record(event, 0, partition=1)]))
    assert len(metric_rows(cluster["id"])) == 1


def test_transient_failure_fails_the_batch_and_the_retry_applies_each_event_once(handle, dead_letters, cluster, monkeypatch):
    job_id = f"job-{uuid.uuid4()}"
    events = [envelope("job_progress", cluster["id"], job_id=job_id, progress=10),
              *[envelope("telemetry", cluster["id"], payload={"cpu": i}) for i in range(4)],
              envelope("job_progress", cluster["id"], job_id=job_id, progress=20)]
    processor = batch_module.get_batch_processor()
    real = processor.handler.monitoring.record_many
    calls = {"n": 0}

    def flaky(samples, sources=None):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("database went away")
        return real(samples, sources)

    monkeypatch.setattr(processor.handler.monitoring, "record_many", flaky)
    with pytest.raises(ConnectionError):
        handle(batch_of(events))
    assert metric_rows(cluster["id"]) == []
    assert get_redis().hget(f"events:job:{job_id}", "progress") == "20"  # applied before the failure
    result = handle(batch_of(events))  # the event source retries the whole batch
    assert result == {"records": 6, "applied": 4, "duplicates": 2, "malformed": 0}
    assert [r["value"] for r in metric_rows(cluster["id"])] == [0.0, 1.0, 2.0, 3.0]
    assert counts()["processed:job_progress"] == 2 and counts()["processed:telemetry"] == 4


def test_a_letter_handed_over_before_a_transient_failure_is_stored_once(handle, dead_letters, cluster, monkeypatch):
    """Letters go to the producer as soon as a record is known to be malformed (issue 16), before the batch's
    writes: when a write then fails, the letter already stored is settled, and the retry does not send it again."""
    valid = envelope("telemetry", cluster["id"], payload={"cpu": 1})
    event = _with_raw_value(valid, _b64(b"{not json"))
    processor = batch_module.get_batch_processor()
    real = processor.handler.monitoring.record_many

    def down(samples, sources=None):
        raise ConnectionError("database went away")

    monkeypatch.setattr(processor.handler.monitoring, "record_many", down)
    with pytest.raises(ConnectionError):
        handle(event)
    [letter] = dead_letters.letters
    assert letter["reason"] == "bad_json" and metric_rows(cluster["id"]) == []
    monkeypatch.setattr(processor.handler.monitoring, "record_many", real)
    assert handle(event) == {"records": 3, "applied": 2, "duplicates": 1, "malformed": 0}
    assert len(dead_letters.letters) == 1 and len(metric_rows(cluster["id"])) == 2
    assert counts()["malformed:bad_json"] == 1


def test_telemetry_of_a_batch_is_applied_together_and_health_once_per_cluster(handle, dead_letters, cluster, monkeypatch):
    other = ClusterRepository().create(name="other", region="nyc3")
    processor = batch_module.get_batch_processor()
    refreshed = []  # the clusters of each health write (issue 16: one statement for all the batch touched)
    monitoring = processor.handler.monitoring
    real = monitoring.clusters.store_health
    monkeypatch.setattr(monitoring.clusters, "store_health",
                        lambda health, checked_at: refreshed.append(sorted(health)) or real(health, checked_at))
    monkeypatch.setattr(monitoring, "refresh_cluster_health", lambda cid: refreshed.append([cid]))  # none expected
    handle(batch_of([envelope("telemetry", c["id"], payload={"cpu": 10 + i}) for i in range(10) for c in (cluster, other)]))
    assert refreshed == [sorted([cluster["id"], other["id"]])]
    assert len(metric_rows(cluster["id"])) == len(metric_rows(other["id"])) == 10


def test_a_batch_in_flight_elsewhere_is_retried_not_skipped(handle, dead_letters, cluster):
    from chalicelib.event_pipeline.ledger import EventsInFlight

    event = batch_of([envelope("telemetry", cluster["id"], payload={"cpu": 1})])
    get_redis().set("events:seen:cluster-events:0:0:1700000000000", "p", ex=30)  # another invocation holds it
    with pytest.raises(EventsInFlight):
        handle(event)
    get_redis().delete("events:seen:cluster-events:0:0:1700000000000")
    assert handle(event)["applied"] == 1


def test_a_claim_left_by_a_killed_invocation_is_waited_for_not_failed(handle, dead_letters, cluster):
    """A killed invocation (timeout, crash, redeploy) leaves its claims `p` until their lease ends: the retry
    waits for that instead of failing (failed retries would end in the on-failure queue, unapplied)."""
    event = batch_of([envelope("telemetry", cluster["id"], payload={"cpu": 1}), b"{bad"])
    get_redis().set("events:seen:cluster-events:0:0:1700000000000", "p", px=600)
    get_redis().set("events:seen:cluster-events:0:1:1700000000000", "p", px=300)
    assert handle(event) == {"records": 2, "applied": 1, "duplicates": 0, "malformed": 1}
    assert len(metric_rows(cluster["id"])) == 1 and len(dead_letters.letters) == 1


def test_dead_letters_reach_the_kafka_topic(handle, cluster):
    """The real destination: the `cluster-events.dlq` topic, read back with a plain consumer."""
    from kafka import KafkaConsumer, TopicPartition

    from chalicelib.event_pipeline.dead_letters import KafkaDeadLetters
    from chalicelib.settings import get_settings

    settings = get_settings()
    set_dead_letters(KafkaDeadLetters())
    try:
        consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
        partitions = [TopicPartition(settings.events_dlq_topic, p)
                      for p in consumer.partitions_for_topic(settings.events_dlq_topic)]
        consumer.assign(partitions)
        consumer.seek_to_end()
        start = {tp: consumer.position(tp) for tp in partitions}
        marker = f"c-{uuid.uuid4().hex}"
        event = msk_event([kafka_record(b"not json", 7, key=marker)])
        handle(event)
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        found = []
        for _ in range(20):
            for records in consumer.poll(timeout_ms=500).values():
                found += [json.loads(r.value) for r in records if r.key == marker.encode()]
            if found:
                break
        consumer.close()
    finally:
        set_dead_letters(None)
    assert [(f["reason"], f["source"]["offset"], base64.b64decode(f["value"])) for f in found] == [("bad_json", 7, b"not json")]


def _failing_for(processor, job_id: str, error: Exception, monkeypatch) -> None:  # noqa: ANN001
    real = processor.handler.apply

    def apply(event, key, counts):  # noqa: ANN001
        if event.job_id == job_id:
            raise error
        return real(event, key, counts)

    monkeypatch.setattr(processor.handler, "apply", apply)


def test_an_event_that_cannot_be_applied_is_dead_lettered_at_once_and_the_batch_goes_on(
        handle, dead_letters, cluster, monkeypatch):  # noqa: ANN001
    """Issue 17: a failure of the event's own (the handler refuses it) is no reason to hold the partition."""
    bad, good = f"job-{uuid.uuid4()}", f"job-{uuid.uuid4()}"
    _failing_for(batch_module.get_batch_processor(), bad, ValueError("no such droplet size"), monkeypatch)
    result = handle(batch_of([envelope("job_progress", cluster["id"], job_id=bad, progress=10),
                              envelope("job_progress", cluster["id"], job_id=good, progress=30)]))
    assert result == {"records": 2, "applied": 1, "duplicates": 0, "malformed": 1}
    [letter] = dead_letters.letters
    assert letter["reason"] == "apply_failed" and "no such droplet size" in letter["error"]
    assert get_redis().hget(f"events:job:{good}", "progress") == "30"


@pytest.mark.parametrize("error", ["mariadb", "redis", "queue", "deadlock", "raw_deadlock", "lock_wait"])
def test_a_dependency_outage_while_applying_fails_the_batch_and_dead_letters_nothing(
        handle, dead_letters, cluster, monkeypatch, error):  # noqa: ANN001
    """...and so does a deadlock or lock wait with another writer (the row counters' triggers, issue 16, make
    writers of one tenant meet): busy, not bad content."""
    import pymysql
    import redis

    from chalicelib.errors import ConcurrentUpdateError, DependencyUnavailableError, ServiceUnavailableError

    raised = {"mariadb": DependencyUnavailableError("mariadb"), "redis": redis.ConnectionError("refused"),
              "queue": ServiceUnavailableError("job queue unavailable"),
              "deadlock": ConcurrentUpdateError("concurrent update in progress; retry"),
              "raw_deadlock": pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"),
              "lock_wait": pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")}[error]
    job_id = f"job-{uuid.uuid4()}"
    _failing_for(batch_module.get_batch_processor(), job_id, raised, monkeypatch)
    with pytest.raises(type(raised)):
        handle(batch_of([envelope("job_progress", cluster["id"], job_id=job_id, progress=10)]))
    assert dead_letters.letters == []
    monkeypatch.undo()  # the dependency is back: the retried batch applies
    batch_module.reset_batch_processor()
    assert handle(batch_of([envelope("job_progress", cluster["id"], job_id=job_id, progress=10)]))["applied"] == 1


# --- issue 16: the batched write path keeps its answers -----------------------------------------------------
def test_the_signature_header_is_read_as_powertools_reads_headers(handle, dead_letters, cluster):
    """The handler reads its one header straight from the record: names regardless of case, the last one
    wins, byte values sent signed (Java producers) are taken modulo 256, as Powertools' `decoded_headers`."""
    from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEventRecord

    from chalicelib.event_pipeline.batch import _signature

    value = json.dumps(envelope("telemetry", cluster["id"], payload={"cpu": 1})).encode()
    good = list(sign(value))
    cases = [
        [{HEADER.upper(): good}],
        [{HEADER: [1, 2, 3]}, {"other": [7]}, {HEADER: good}],
        [{HEADER: [b - 256 if b > 127 else b for b in good]}],  # no byte above 127 in a hex MAC: all kept
        [{HEADER: [-1, 200, 5]}],
        [{"other": [1]}],
        [],
    ]
    for headers in cases:
        record = KafkaEventRecord({"topic": "t", "partition": 0, "offset": 0, "timestamp": 1, "headers": headers})
        assert _signature(record.raw_event) == record.decoded_headers.get(HEADER)
    event = batch_of([envelope("telemetry", cluster["id"], payload={"cpu": 1})])
    event["records"]["cluster-events-0"][0]["headers"] = [{HEADER.title(): good}]
    event["records"]["cluster-events-0"][0]["value"] = base64.b64encode(value).decode()
    assert handle(event)["applied"] == 1


def test_a_health_write_that_loses_a_version_race_is_done_again_per_cluster(handle, dead_letters, cluster, monkeypatch):
    """The batch's one health UPDATE is a compare-and-set per cluster: when a version does not match (it cannot
    while the clusters are locked, but the write does not rely on that), each cluster is refreshed on its own."""
    other = ClusterRepository().create(name="other", region="nyc3")
    monitoring = batch_module.get_batch_processor().handler.monitoring
    real = monitoring.clusters.lock_for_health

    def stale(cluster_ids):  # one cluster's version as read before somebody else's update
        found = real(cluster_ids)
        found[cluster["id"]] = {**found[cluster["id"]], "version": found[cluster["id"]]["version"] - 1}
        return found

    monkeypatch.setattr(monitoring.clusters, "lock_for_health", stale)
    refreshed = []
    real_refresh = monitoring.refresh_cluster_health
    monkeypatch.setattr(monitoring, "refresh_cluster_health", lambda cid: refreshed.append(cid) or real_refresh(cid))
    before = {c["id"]: ClusterRepository().get(c["id"])["version"] for c in (cluster, other)}
    handle(batch_of([envelope("telemetry", cluster["id"], payload={"memory": 90}),
                     envelope("telemetry", other["id"], payload={"cpu": 85})]))
    assert sorted(refreshed) == sorted([cluster["id"], other["id"]])
    assert ClusterRepository().get(cluster["id"])["status"] == "critical"
    assert ClusterRepository().get(other["id"])["status"] == "warning"
    assert ClusterRepository().get(cluster["id"])["version"] > before[cluster["id"]]
    assert len(metric_rows(cluster["id"])) == len(metric_rows(other["id"])) == 1
    assert counts()["processed:telemetry"] == 2


def test_telemetry_of_another_tenants_cluster_is_skipped_in_a_batch_that_stores_the_rest(handle, dead_letters, cluster):
    elsewhere = envelope("telemetry", cluster["id"], tenant_id="tenant-b", payload={"cpu": 1})
    handle(batch_of([elsewhere, envelope("telemetry", cluster["id"], payload={"cpu": 2}),
                     envelope("telemetry", "cluster-nope", payload={"cpu": 3})]))
    assert [r["value"] for r in metric_rows(cluster["id"])] == [2.0]
    assert counts() == {"processed:telemetry": 1, "skipped:cluster_not_found": 2}


def test_an_alert_naming_a_tenant_does_not_confine_the_telemetry_it_flushes(handle, dead_letters, cluster, job_queue):
    """A threshold alert flushes the batch's earlier telemetry first (the policies read the latest metrics); the
    alert's tenant confines the alert, not the other tenants' telemetry flushed before it."""
    from chalicelib.tenancy import confined_to

    with confined_to("tenant-b"):
        theirs = ClusterRepository().create(name="theirs", region="nyc3")
    handle(batch_of([envelope("telemetry", cluster["id"], payload={"cpu": 42}),
                     envelope("metric_threshold_exceeded", theirs["id"], tenant_id="tenant-b", payload={"metric": "cpu"})]))
    assert [r["value"] for r in metric_rows(cluster["id"])] == [42.0]
    assert counts()["processed:telemetry"] == 1


# --- issue 16, fourth round: fewer Redis round trips, the same answers ----------------------------------------
def _redis_commands(monkeypatch) -> list[str]:  # noqa: ANN001
    """The Redis commands the handler sends from now on, by script (claim, job models, done, ...), in order; a
    script sent ahead (`PendingScript`) is listed when it is sent."""
    import hashlib

    import redis as redis_lib

    from chalicelib import redis_client
    from chalicelib.event_pipeline import handler as handler_module, ledger as ledger_module

    names = {hashlib.sha1(source.encode()).hexdigest(): name for name, source in (
        ("claim", ledger_module._CLAIM), ("done", ledger_module._DONE), ("release", ledger_module._RELEASE),
        ("job models", handler_module._JOB_READ_MODELS))}
    sent: list[str] = []
    real_execute, real_init = redis_lib.Redis.execute_command, redis_client.PendingScript.__init__

    def execute_command(client, *args, **options):  # noqa: ANN001, ANN002, ANN003
        sent.append(names.get(args[1], args[1]) if args[0] == "EVALSHA" else args[0])
        return real_execute(client, *args, **options)

    def pending(self, client, script, keys, args):  # noqa: ANN001
        sent.append(names[script.sha] + " (sent ahead)")
        return real_init(self, client, script, keys, args)

    monkeypatch.setattr(redis_lib.Redis, "execute_command", execute_command)
    monkeypatch.setattr(redis_client.PendingScript, "__init__", pending)
    return sent


def test_a_batch_costs_three_redis_commands_and_the_job_models_overlap_the_telemetry(
        handle, dead_letters, cluster, monkeypatch):  # noqa: ANN001
    """The claim; the job read models with their marks, sent before the telemetry's transaction and answered after
    its commit; one command marking the telemetry and the dead letters (issue 16: the letters' marks had one of
    their own)."""
    from chalicelib import redis_client

    job_id = f"job-{uuid.uuid4()}"
    order: list[str] = []
    real_result = redis_client.PendingScript.result
    sent = _redis_commands(monkeypatch)

    def result(self):  # noqa: ANN001
        order.append(f"job models answered after {len(order)} commits")
        return real_result(self)

    monkeypatch.setattr(redis_client.PendingScript, "result", result)
    import pymysql.connections

    real_conn_commit = pymysql.connections.Connection.commit
    monkeypatch.setattr(pymysql.connections.Connection, "commit",
                        lambda conn: order.append("commit") or real_conn_commit(conn))
    event = _with_raw_value(envelope("telemetry", cluster["id"], payload={"cpu": 5}), _b64(b"{not json"))
    event["records"]["cluster-events-0"].append(
        batch_of([envelope("job_progress", cluster["id"], job_id=job_id, progress=40)], start=3)["records"]["cluster-events-0"][0])
    assert handle(event) == {"records": 4, "applied": 3, "duplicates": 0, "malformed": 1}
    assert sent == ["claim", "job models (sent ahead)", "done"]
    assert order == ["commit", "job models answered after 1 commits"]  # the telemetry's transaction, then the answer
    assert get_redis().hget(f"events:job:{job_id}", "progress") == "40"
    assert len(metric_rows(cluster["id"])) == 2 and [letter["reason"] for letter in dead_letters.letters] == ["bad_json"]
    assert handle(event) == {"records": 4, "applied": 0, "duplicates": 4, "malformed": 0}  # every one marked
    assert counts() == {"processed:telemetry": 2, "processed:job_progress": 1, "malformed:bad_json": 1, "duplicate": 4}


def test_when_the_broker_does_not_store_the_letters_the_stored_events_keep_their_marks(
        handle, dead_letters, cluster, monkeypatch):  # noqa: ANN001
    """The final command marks the telemetry and the letters together once the broker has the letters; should the
    broker fail, the telemetry (stored) is marked all the same and only the letter is sent again by the retry."""
    job_id = f"job-{uuid.uuid4()}"
    event = _with_raw_value(envelope("telemetry", cluster["id"], payload={"cpu": 7}), _b64(b"{not json"))
    event["records"]["cluster-events-0"].append(
        batch_of([envelope("job_progress", cluster["id"], job_id=job_id, progress=10)], start=3)["records"]["cluster-events-0"][0])
    real_flush = dead_letters.flush

    def broker_down(timeout=None):  # noqa: ANN001 - and what was handed over is lost with it
        dead_letters._pending.clear()
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(dead_letters, "flush", broker_down)
    with pytest.raises(ConnectionError):
        handle(event)
    assert len(metric_rows(cluster["id"])) == 2 and dead_letters.letters == []
    monkeypatch.setattr(dead_letters, "flush", real_flush)
    assert handle(event) == {"records": 4, "applied": 0, "duplicates": 3, "malformed": 1}
    assert len(metric_rows(cluster["id"])) == 2 and [letter["reason"] for letter in dead_letters.letters] == ["bad_json"]
    assert counts() == {"processed:telemetry": 2, "processed:job_progress": 1, "malformed:bad_json": 1, "duplicate": 3}


def test_letters_go_to_the_producer_before_the_batch_applies_anything(handle, cluster, monkeypatch):  # noqa: ANN001
    """All of a batch's letters are handed over together, right after the claim (one produce request: the broker
    stores them while the events are applied); nothing is stored before."""
    from chalicelib.event_pipeline.dead_letters import InMemoryDeadLetters

    order: list[str] = []

    class Recording(InMemoryDeadLetters):
        def send(self, letter):  # noqa: ANN001
            order.append(f"letter {letter['source']['offset']}")
            super().send(letter)

    set_dead_letters(Recording())
    try:
        real = DropletRepository.insert_if_absent
        monkeypatch.setattr(DropletRepository, "insert_if_absent",
                            lambda self, **kw: order.append("droplet") or real(self, **kw))
        droplet = envelope("droplet_created", cluster["id"], payload={"droplet": {"id": f"droplet-{uuid.uuid4()}"}})
        handle(batch_of([droplet, b"{bad", envelope("telemetry", cluster["id"], payload={"cpu": 1}), b"[1]"]))
    finally:
        set_dead_letters(None)
    assert order == ["letter 1", "letter 3", "droplet"]


def test_known_event_types_are_parsed_as_the_exact_union_parses_them():
    """`parse_event` tries a native tagged union for the known types first; whatever it gives is what the
    callable-discriminated union (`_ADAPTER`) gives, and whatever it refuses gets `_ADAPTER`'s answer."""
    from pydantic import ValidationError

    from chalicelib.event_pipeline import model

    base = {"timestamp": "2026-01-01T00:00:00Z", "cluster_id": "c-1"}
    corpus = [
        {**base, "type": "job_progress", "job_id": "j", "progress": 40, "message": "m", "trace_id": "t"},
        {**base, "type": "job_completed", "job_id": "j", "id": "e-1", "tenant_id": "tenant-b"},
        {**base, "type": "job_failed", "job_id": "j", "progress": 101},
        {**base, "type": "job_started", "job_id": "j", "progress": "5"},
        {**base, "type": "job_requested"},
        {**base, "type": "telemetry", "payload": {"cpu": 1, "metrics": [{"type": "disk", "value": 2.5}]}},
        {**base, "type": "telemetry", "payload": {"metrics": [{"type": "gpu", "value": 1}]}},
        {**base, "type": "telemetry", "payload": {}},
        {**base, "type": "telemetry", "payload": {"cpu": -1}},
        {**base, "type": "droplet_created", "payload": {"droplet": {"id": "droplet-abc", "size": "huge"}}},
        {**base, "type": "droplet_created", "payload": {"droplet": {"id": "not-a-droplet"}}},
        {**base, "type": "metric_threshold_exceeded", "payload": {"metric": "cpu", "value": 95}},
        {**base, "type": "mystery", "payload": {"anything": True}},
        {**base, "type": 7},
        {"type": "telemetry", "cluster_id": "c-1", "payload": {"cpu": 1}},
        {**base, "type": "telemetry", "timestamp": "soon", "payload": {"cpu": 1}},
        {**base, "type": "job_progress", "job_id": "j", "extra": {"nested": [1, 2]}, "progress": None},
        {**base, "type": "job_progress", "job_id": "j" * 65},
        [1, 2, 3], "text", None,
    ]
    raws = [json.dumps(value).encode() for value in corpus] + [b"{not json", b"\xff\xfe", b"", b'{"type":"telemetry",}']
    for raw in raws:
        try:
            expected = model._ADAPTER.validate_json(raw)
        except ValidationError as exc:
            with pytest.raises(ValidationError) as got:
                model.parse_event(raw)
            # what a dead letter carries: the reason, and the errors as `batch.decode` writes them
            assert model.malformed_reason(got.value) == model.malformed_reason(exc)
            assert repr(got.value.errors(include_url=False, include_input=False)) == \
                repr(exc.errors(include_url=False, include_input=False))
            continue
        parsed = model.parse_event(raw)
        assert type(parsed) is type(expected) and parsed == expected, raw


def test_the_signature_header_fields_are_read_as_the_general_parse_reads_them():
    """The usual form `k=<id>,v1=<hex>` is read without building a dict, with the same answer as the general parse
    (including the headers the general parse refuses)."""
    from chalicelib import event_signing

    def general(header: bytes) -> tuple[str, str]:
        fields = dict(part.split("=", 1) for part in header.decode("ascii").split(","))
        return fields["k"], fields["v1"]

    for header in [b"k=abc,v1=0f", b"k=a=b,v1=c=d", b"k=,v1=", b"v1=x,k=y", b"k=a,v1=b,v1=c", b"k=a,v1=b,x",
                   b"k=a", b"v1=b", b"k=a;v1=b", b"ka,v1=b", b"k=a,v2=b", b"k=a,v1=b,k=z", b"", b",", b"\xff=1,v1=2",
                   b"k=a,,v1=b", b"k=a,v1=b,"]:
        try:
            expected = general(header)
        except (UnicodeDecodeError, ValueError, KeyError) as exc:
            with pytest.raises(type(exc)):
                event_signing._fields(header)
            continue
        assert event_signing._fields(header) == expected, header


def test_a_warm_containers_heap_is_frozen_once_at_its_second_invocation(monkeypatch):  # noqa: ANN001
    import gc

    from chalicelib.warm import WarmHeap

    calls: list[str] = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append("collect") or 0)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    heap = WarmHeap()
    heap.settle()
    assert calls == []
    heap.settle()
    heap.settle()
    assert calls == ["collect", "freeze"]
