"""Autoscaling end to end on LocalStack (issue 8): a metrics policy plus a burst of high-CPU telemetry on
`cluster-events`, and nothing else. The event handler (via the MSK bridge) stores the samples, the
scheduled `autoscaler` (EventBridge, rate 1 minute) evaluates the policy and enqueues one scale job, the
job worker (SQS) adds the droplet: exactly one new active droplet, and no more during the cool-down."""
from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
import uuid

import pytest
from polling import wait_for

pytestmark = pytest.mark.localstack

BURST = 30
BASELINE = 2


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - 127.0.0.1 only
        return response.status, json.loads(response.read())


def test_a_burst_of_high_cpu_telemetry_adds_exactly_one_droplet(stack, app_db, function_env, unique):
    from kafka import KafkaProducer

    from chalicelib.event_signing import HEADER, sign

    cluster_id = f"cluster-{unique}"
    with app_db.cursor() as cur:
        cur.execute("INSERT INTO clusters (id, name, region, status) VALUES (%s, %s, 'nyc3', 'healthy')",
                    (cluster_id, unique))
        cur.executemany("INSERT INTO droplets (id, cluster_id, name, region, provider, size, image, status) "
                        "VALUES (%s, %s, %s, 'nyc3', 'simulated', 's-1vcpu-1gb', 'ubuntu-22-04-x64', 'active')",
                        [(f"droplet-{uuid.uuid4()}", cluster_id, f"{unique}-{n}") for n in range(BASELINE)])
    try:
        status, policy = post(stack["api_url"] + "/api/v1/autoscaling/policies", {
            "cluster_id": cluster_id, "name": "cpu-high", "type": "metrics", "min_replicas": 1, "max_replicas": 5,
            "metric_type": "cpu", "metric_trigger": 0.8, "cooldown_seconds": 3600})
        assert status == 201, policy

        # From here on, only events.
        producer = KafkaProducer(bootstrap_servers=function_env.get("CG_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
                                 acks="all", linger_ms=5)
        now = dt.datetime.now(dt.timezone.utc)
        for n in range(BURST):
            timestamp = (now + dt.timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z")
            event = {"type": "telemetry", "job_id": None, "job_type": None, "cluster_id": cluster_id,
                     "progress": None, "message": "", "timestamp": timestamp, "trace_id": None,
                     "correlation_id": None, "payload": {"cpu": 95.0 + n % 3}}
            value = json.dumps(event).encode()
            producer.send(function_env.get("CG_EVENTS_TOPIC", "cluster-events"), key=cluster_id.encode(),
                          value=value, headers=[(HEADER, sign(value))])  # as the app's producers sign
        producer.flush(30)
        producer.close()

        def count(sql: str) -> int:
            with app_db.cursor() as cur:
                cur.execute(sql, (cluster_id,))
                return cur.fetchone()["n"]

        active = "SELECT COUNT(*) AS n FROM droplets WHERE cluster_id = %s AND status = 'active'"
        wait_for(lambda: count("SELECT COUNT(*) AS n FROM metrics WHERE cluster_id = %s AND type = 'cpu'") == BURST,
                 timeout=120, what="the event handler to store the telemetry")
        wait_for(lambda: count(active) == BASELINE + 1, timeout=240,
                 what="the autoscaler's scale job to add a droplet")
        # Another autoscaler tick (and more) inside the cool-down changes nothing.
        time.sleep(75)
        assert count(active) == BASELINE + 1
        assert count("SELECT COUNT(*) AS n FROM jobs WHERE cluster_id = %s AND type = 'scale'") == 1
        assert count("SELECT COUNT(*) AS n FROM jobs WHERE cluster_id = %s AND status = 'completed'") == 1
    finally:
        with app_db.cursor() as cur:
            cur.execute("DELETE FROM clusters WHERE id = %s", (cluster_id,))
