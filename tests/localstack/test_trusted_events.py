"""Trusted events end to end (issue 18): a record produced straight to `cluster-events` by anyone but the app
(no signature, or a forged one) goes through the real broker, the MSK bridge and the deployed event_handler, and
is dead-lettered with its reason instead of being applied; the same event signed by the app is applied.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from polling import wait_for

from chalicelib.event_signing import HEADER, sign
from test_event_pipeline import partitions_of, read_range

pytestmark = pytest.mark.localstack


def test_forged_events_are_dead_lettered_and_only_signed_ones_applied(stack, app_db, function_env, unique):
    from kafka import KafkaConsumer, KafkaProducer

    bootstrap = function_env.get("CG_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    topic = function_env.get("CG_EVENTS_TOPIC", "cluster-events")
    dlq_topic = function_env.get("CG_EVENTS_DLQ_TOPIC", "cluster-events.dlq")
    cluster_id = f"cluster-{unique}"
    with app_db.cursor() as cur:
        cur.execute("INSERT INTO clusters (id, name, region, status) VALUES (%s, %s, 'nyc3', 'healthy')",
                    (cluster_id, unique))

    def telemetry(cpu: float, phantom: str | None = None) -> bytes:
        now = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        kind, payload = ("droplet_created", {"droplet": {"id": phantom}}) if phantom else ("telemetry", {"cpu": cpu})
        return json.dumps({"type": kind, "job_id": None, "job_type": None, "cluster_id": cluster_id, "progress": None,
                           "message": "", "timestamp": now, "trace_id": None, "correlation_id": None,
                           "payload": payload}).encode()

    probe = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    dlq_partitions = partitions_of(probe, dlq_topic)
    dlq_start = probe.end_offsets(dlq_partitions)
    probe.close()

    phantom = f"droplet-{uuid.uuid4()}"
    forged = [(telemetry(99.0), []),  # unsigned: would set the cluster critical
              (telemetry(0, phantom=phantom), [(HEADER, b"k=guess,v1=" + b"0" * 64)])]  # a guessed signature
    signed = telemetry(42.0)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    sent = [producer.send(topic, key=cluster_id.encode(), value=v, headers=h).get(timeout=30) for v, h in forged]
    producer.send(topic, key=cluster_id.encode(), value=signed, headers=[(HEADER, sign(signed))]).get(timeout=30)
    producer.close()

    def applied():
        with app_db.cursor() as cur:
            cur.execute("SELECT value FROM metrics WHERE cluster_id = %s", (cluster_id,))
            return [r["value"] for r in cur.fetchall()] or None

    assert wait_for(applied, timeout=90, what="the signed telemetry to be applied") == [42.0]

    def letters():
        end = KafkaConsumer(bootstrap_servers=bootstrap).end_offsets(dlq_partitions)
        found = {(l["source"]["partition"], l["source"]["offset"]): l["reason"]
                 for l in (json.loads(r.value) for r in read_range(bootstrap, dlq_start, end))
                 if l["source"]["topic"] == topic}
        return found if all((m.partition, m.offset) in found for m in sent) else None

    found = wait_for(letters, timeout=60, what="both forged records in the dead-letter topic")
    assert [found[(m.partition, m.offset)] for m in sent] == ["unsigned", "bad_signature"]
    with app_db.cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM droplets WHERE id = %s", (phantom,))
        assert cur.fetchone()["n"] == 0
        cur.execute("SELECT status FROM clusters WHERE id = %s", (cluster_id,))
        assert cur.fetchone()["status"] != "critical"
