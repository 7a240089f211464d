"""The event pipeline end to end: 1,000 mixed events produced to the real broker, consumed by the MSK
bridge, applied by the deployed event_handler on LocalStack; then the same records replayed.

Effects are asserted where a user would see them: metric rows, the clusters' droplet lists, scale jobs,
the jobs' read models in Redis, the dead-letter topic and the bridge's committed offsets.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from collections import Counter

import pytest
from polling import wait_for

from devstack.deploy import consumer_group
from devstack.services import load_bridge_module

pytestmark = pytest.mark.localstack

CLUSTERS = 20
ALERT_CLUSTERS, ALERTS_PER_BURST = 5, 10
JOBS, EVENTS_PER_JOB = 60, 5
DROPLETS, DROPLET_REPEATS = 80, 20
MALFORMED = 50
TOTAL = 1000
TELEMETRY = TOTAL - MALFORMED - ALERT_CLUSTERS * ALERTS_PER_BURST - JOBS * EVENTS_PER_JOB - DROPLETS - DROPLET_REPEATS


def _ts(i: int) -> str:
    return (dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=i)).isoformat().replace("+00:00", "Z")


def _envelope(event_type: str, cluster_id: str, i: int, **fields) -> dict:
    return {"type": event_type, "job_id": None, "job_type": None, "cluster_id": cluster_id, "progress": None,
            "message": "", "timestamp": _ts(i), "trace_id": None, "correlation_id": None, "payload": {}, **fields}


def build_stream(clusters: list[str], seed: int) -> tuple[list[tuple[str, bytes, bool]], dict]:
    """(key, value, malformed) records in a shuffled but per-cluster-ordered stream, and what they should do."""
    rng = random.Random(seed)
    per_cluster: dict[str, list[bytes]] = {c: [] for c in clusters}
    expect = {"metric_rows": Counter(), "droplets": {}, "jobs": {}, "alert_clusters": clusters[:ALERT_CLUSTERS]}
    i = 0
    for n in range(TELEMETRY):
        c = clusters[n % CLUSTERS]
        if n % 2:
            payload = {"metrics": [{"type": "cpu", "value": rng.uniform(5, 60)}, {"type": "disk", "value": rng.uniform(5, 60)}]}
            expect["metric_rows"][c] += 2
        else:
            payload = {"cpu": rng.uniform(5, 60), "memory": rng.uniform(5, 60), "disk": rng.uniform(5, 60)}
            expect["metric_rows"][c] += 3
        per_cluster[c].append(json.dumps(_envelope("telemetry", c, i := i + 1, payload=payload)).encode())
    for c in expect["alert_clusters"]:
        for _ in range(ALERTS_PER_BURST):
            per_cluster[c].append(json.dumps(_envelope("metric_threshold_exceeded", c, i := i + 1,
                                                       payload={"metric": "cpu", "value": 97})).encode())
    for n in range(DROPLETS):
        c = clusters[n % CLUSTERS]
        droplet_id = f"droplet-{uuid.uuid4()}"
        expect["droplets"][droplet_id] = c
        value = json.dumps(_envelope("droplet_created", c, i := i + 1, payload={"droplet": {
            "id": droplet_id, "name": f"d{n}", "region": "nyc3", "status": "active"}})).encode()
        per_cluster[c].append(value)
        if n < DROPLET_REPEATS:
            per_cluster[c].append(value)  # announced twice (a producer retry): still listed once
    for n in range(JOBS):
        c = clusters[n % CLUSTERS]
        job_id = f"job-{uuid.uuid4()}"
        expect["jobs"][job_id] = c
        for event_type, progress in (("job_requested", 0), ("job_started", 0), ("job_progress", 30),
                                     ("job_progress", 70), ("job_completed", None)):
            per_cluster[c].append(json.dumps(_envelope(event_type, c, i := i + 1, job_id=job_id, job_type="monitor",
                                                       progress=progress)).encode())
    bad = [b"{not json", b"\xff\xfe", b"[1, 2]", b'"a string"',
           json.dumps({"type": "job_progress", "cluster_id": "x", "timestamp": _ts(0)}).encode(),  # no job_id
           json.dumps({"type": "telemetry", "cluster_id": "x", "timestamp": "soon", "payload": {"cpu": 1}}).encode(),
           json.dumps({"cluster_id": "x", "timestamp": _ts(0)}).encode(),  # no type
           json.dumps({"type": "job_progress", "job_id": "j", "cluster_id": "x", "progress": "10", "timestamp": _ts(0)}).encode()]
    records = [(c, v, False) for c, values in per_cluster.items() for v in values]
    records += [(clusters[n % CLUSTERS], bad[n % len(bad)], True) for n in range(MALFORMED)]
    assert len(records) == TOTAL
    # Interleave clusters while keeping each cluster's own order (a partition preserves it).
    queues = {c: [(v, bad) for k, v, bad in records if k == c] for c in clusters}
    stream = []
    while any(queues.values()):
        c = rng.choice([c for c, q in queues.items() if q])
        stream.append((c, *queues[c].pop(0)))
    return stream, expect


def partitions_of(consumer, topic: str):
    from kafka import TopicPartition

    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]


def read_range(bootstrap: str, start: dict, end: dict) -> list:
    """Every record of `topic-partition` from start[tp] to end[tp] (exclusive), by a bare consumer."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign(list(start))
    for tp, offset in start.items():
        consumer.seek(tp, offset)
    out, deadline = [], time.monotonic() + 60
    while any(consumer.position(tp) < end[tp] for tp in start) and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            out += [r for r in records if r.offset < end[tp]]
    consumer.close()
    return out


def state(app_db, app_redis, clusters: list[str], expect: dict) -> dict:
    """Everything the events may have changed, for the replay comparison."""
    marks = ", ".join(["%s"] * len(clusters))
    with app_db.cursor() as cur:
        cur.execute(f"SELECT cluster_id, COUNT(*) AS n FROM metrics WHERE cluster_id IN ({marks}) GROUP BY cluster_id", clusters)
        metrics = {r["cluster_id"]: r["n"] for r in cur.fetchall()}
        # Every droplet of these clusters: the announced ones, and those the scale jobs' worker adds meanwhile.
        cur.execute(f"SELECT id, cluster_id, status FROM droplets WHERE cluster_id IN ({marks}) ORDER BY id", clusters)
        droplets = [tuple(r.values()) for r in cur.fetchall()]
        cur.execute(f"SELECT cluster_id, type, COUNT(*) AS n FROM jobs WHERE cluster_id IN ({marks}) GROUP BY cluster_id, type", clusters)
        jobs = sorted(tuple(r.values()) for r in cur.fetchall())
        cur.execute(f"SELECT id, status, last_checked FROM clusters WHERE id IN ({marks}) ORDER BY id", clusters)
        health = [tuple(r.values()) for r in cur.fetchall()]
    models = {j: app_redis.hgetall(f"events:job:{j}") for j in expect["jobs"]}
    # The worker runs the scale jobs meanwhile (their status changes, droplets are added): the replay
    # comparison covers what the events themselves did, `announced` rather than every droplet.
    announced = [d for d in droplets if d[0] in expect["droplets"]]
    return {"metrics": metrics, "droplets": droplets, "announced": announced, "jobs": jobs,
            "health": health, "read_models": models}


def test_a_mixed_stream_is_applied_exactly_once_and_a_replay_changes_nothing(stack, aws, app_db, app_redis, function_env, unique):
    from kafka import KafkaConsumer, KafkaProducer

    bootstrap = function_env.get("CG_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    topic = function_env.get("CG_EVENTS_TOPIC", "cluster-events")
    dlq_topic = function_env.get("CG_EVENTS_DLQ_TOPIC", "cluster-events.dlq")
    clusters = [f"cluster-{unique}-{n:02d}" for n in range(CLUSTERS)]
    with app_db.cursor() as cur:
        cur.executemany("INSERT INTO clusters (id, name, region, status) VALUES (%s, %s, 'nyc3', 'healthy')",
                        [(c, c) for c in clusters])
    stream, expect = build_stream(clusters, seed=5)

    probe = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    dlq_partitions = partitions_of(probe, dlq_topic)
    dlq_start = probe.end_offsets(dlq_partitions)
    probe.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    from chalicelib.event_signing import HEADER, sign

    # signed as the app's producers sign (issue 18): malformed records too, so they are refused for their shape
    futures = [producer.send(topic, key=key.encode(), value=value,
                             headers=[(HEADER, sign(value))] if value is not None else [])
               for key, value, _ in stream]
    producer.flush(30)
    metadata = [f.get(timeout=30) for f in futures]
    producer.close()
    produced_at = time.monotonic()
    malformed_at = {(m.partition, m.offset) for m, (_, _, bad) in zip(metadata, stream) if bad}
    assert len(malformed_at) == MALFORMED

    # The bridge's consumer group commits past the last record of every partition.
    group = KafkaConsumer(bootstrap_servers=bootstrap, group_id=consumer_group(stack, topic), enable_auto_commit=False)
    partitions = partitions_of(group, topic)

    def caught_up():
        ends = group.end_offsets(partitions)
        committed = {tp: group.committed(tp) or 0 for tp in partitions}
        return committed if all(committed[tp] >= ends[tp] for tp in partitions) else None

    wait_for(caught_up, timeout=150, what="the MSK bridge to commit every partition's end offset")
    applied_in = time.monotonic() - produced_at
    group.close()

    # Every valid event applied exactly once in effect.
    first = state(app_db, app_redis, clusters, expect)
    assert first["metrics"] == dict(expect["metric_rows"])
    listed = {}
    for droplet_id, cluster_id, _ in first["droplets"]:
        listed.setdefault(cluster_id, []).append(droplet_id)
    for cluster_id, ids in listed.items():
        assert len(ids) == len(set(ids)), f"{cluster_id} lists a droplet twice"
    for droplet_id, cluster_id in expect["droplets"].items():
        assert droplet_id in listed.get(cluster_id, []), f"{droplet_id} not listed in {cluster_id}"
    scale_jobs = {c: n for c, t, n in first["jobs"] if t == "scale"}
    assert scale_jobs == {c: 1 for c in expect["alert_clusters"]}, "one scale job per alert burst"
    for job_id, cluster_id in expect["jobs"].items():
        model = first["read_models"][job_id]
        assert (model["status"], model["progress"], model["cluster_id"]) == ("completed", "100", cluster_id)
    assert all(last_checked is not None for _, _, last_checked in first["health"])

    # All 50 malformed records in the dead-letter topic, each once.
    dlq_end = KafkaConsumer(bootstrap_servers=bootstrap).end_offsets(dlq_partitions)
    letters = [json.loads(r.value) for r in read_range(bootstrap, dlq_start, dlq_end)]
    ours = Counter((l["source"]["partition"], l["source"]["offset"]) for l in letters if l["source"]["topic"] == topic)
    assert set(ours) >= malformed_at
    assert all(ours[at] == 1 for at in malformed_at)

    # Replay: the very same records (same topic, partition, offset) delivered again in the exact MSK shape,
    # through the deployed function. Nothing changes, and nothing is dead-lettered again.
    bridge = load_bridge_module()
    own = {}
    for m in metadata:
        own.setdefault(m.partition, [m.offset, m.offset])
        own[m.partition] = [min(own[m.partition][0], m.offset), max(own[m.partition][1], m.offset)]
    from kafka import TopicPartition

    records = [r for r in read_range(bootstrap, {TopicPartition(topic, p): lo for p, (lo, hi) in own.items()},
                                     {TopicPartition(topic, p): hi + 1 for p, (lo, hi) in own.items()})
               if (r.partition, r.offset) in {(m.partition, m.offset) for m in metadata}]
    assert len(records) == TOTAL
    lam = aws("lambda")
    results = []
    for n in range(0, len(records), 100):
        event = bridge.build_msk_event(records[n:n + 100], "arn:aws:kafka:us-east-1:000000000000:cluster/replay/1", bootstrap)
        response = lam.invoke(FunctionName=stack["functions"]["event_handler"], Payload=json.dumps(event).encode())
        assert "FunctionError" not in response, response["Payload"].read()
        results.append(json.loads(response["Payload"].read()))
    assert sum(r["duplicates"] for r in results) == TOTAL
    assert sum(r["applied"] + r["malformed"] for r in results) == 0
    after = state(app_db, app_redis, clusters, expect)
    for part in ("metrics", "announced", "jobs", "health", "read_models"):
        assert after[part] == first[part], part
    dlq_after = KafkaConsumer(bootstrap_servers=bootstrap).end_offsets(dlq_partitions)
    again = [json.loads(r.value) for r in read_range(bootstrap, dlq_end, dlq_after)]
    assert not [l for l in again if (l["source"]["partition"], l["source"]["offset"]) in malformed_at]
    print(f"\n1000 events applied through the bridge in {applied_in:.1f}s")
