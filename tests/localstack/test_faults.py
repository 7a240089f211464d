"""The fault tier (issue 17, marker `faults`): a steady load through API Gateway and the broker while one
fault is injected, then healed; afterwards every acknowledged job has completed exactly once, every job
event was published in order, every telemetry sample the broker acknowledged was applied exactly once,
nothing was parked in a dead-letter or on-failure queue, and the API never answered 500.

Faults, one test each (parametrized): MariaDB, Redis and the Kafka broker stopped for 30 s and for 120 s;
the MSK bridge killed with SIGKILL (bridge-watch restarts it); the job worker's local Lambda process killed
with SIGKILL while it processes a batch (SQS redelivers). Figures go to docs/reliability.md.

Runnable alone: `./dev test faults`. It stops or kills only processes `./dev` started (pid files under
`.local/run/`) or the stack's own function processes; a server it did not start is refused, never
touched. Every wait is bounded.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from typing import Any

import pymysql
import pytest

from devstack.config import StackConfig
from devstack.services import Bridge, Kafka, MariaDB, Redis
from polling import wait_for
from processes import function_pids, pid_with_local_port

pytestmark = [pytest.mark.localstack, pytest.mark.faults]

SETTLE_TIMEOUT = 300  # jobs redriven by the sweeper (every minute) after landing in the DLQ
LEAD_SECONDS = 3  # load before the fault and after recovery: short, the tier's budget is its outages


def _call(base: str, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    """A request to the stack's API, as the stack's admin, or as `key` (the load's own key)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["X-API-Key"] = key
    request = urllib.request.Request(f"{base}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except (urllib.error.URLError, TimeoutError) as exc:  # the gateway itself did not answer
        return 0, {"error": repr(exc)}


def _connect(env: dict[str, str], autocommit: bool = True):  # noqa: ANN202 - a pymysql connection
    return pymysql.connect(host=env.get("CG_DB_HOST", "127.0.0.1"), port=int(env.get("CG_DB_PORT", "3306")),
                           user=env.get("CG_DB_USER", "clustergenie"), password=os.environ["CG_DB_PASSWORD"],
                           database=env.get("CG_DB_NAME", "clustergenie"),
                           cursorclass=pymysql.cursors.DictCursor, connect_timeout=3, autocommit=autocommit)


def _query(env: dict[str, str], sql: str, args: Any = None) -> list[dict[str, Any]]:
    # A connection per query: the session-wide `app_db` does not survive the server being stopped.
    conn = _connect(env)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


class Load:
    """Provision jobs, reads and telemetry samples at a steady pace (one of each per second), recording every
    API status, every acknowledged job and every telemetry sample the broker acknowledged."""

    def __init__(self, base: str, cluster_id: str, env: dict[str, str], key: str) -> None:
        from kafka import KafkaProducer

        self.base, self.cluster_id, self.key = base, cluster_id, key
        self.statuses: Counter[int] = Counter()
        self.acknowledged: list[str] = []
        self.samples: list[tuple[str, float, Any]] = []  # (its timestamp, when it was sent, the producer's future)
        self.topic = env.get("CG_EVENTS_TOPIC", "cluster-events")
        # acks=all: a sample counts as sent once the broker acknowledged it. While the broker is down a send
        # waits at most a second for metadata; the producer retries what it buffered until it is back.
        # Not idempotent: in one of six kafka-120s runs the local broker (noida-db) answered
        # OutOfOrderSequenceNumber after its restart, kafka-python's idempotent producer bumped its epoch, and
        # samples it reported acknowledged never reached the log (every record in the log was applied).
        # One request in flight keeps the samples in order, as the idempotent producer did.
        self.producer = KafkaProducer(bootstrap_servers=env.get("CG_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
                                      acks="all", linger_ms=5, max_block_ms=1000, request_timeout_ms=5000,
                                      delivery_timeout_ms=240_000, enable_idempotence=False,
                                      max_in_flight_requests_per_connection=1)
        self.first = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _send_sample(self) -> None:
        from chalicelib.event_signing import HEADER, sign

        stamp = (self.first + dt.timedelta(seconds=len(self.samples))).isoformat().replace("+00:00", "Z")
        envelope = {"type": "telemetry", "job_id": None, "job_type": None, "cluster_id": self.cluster_id,
                    "progress": None, "message": "", "timestamp": stamp, "trace_id": None, "correlation_id": None,
                    "payload": {"cpu": 10.0, "memory": 20.0, "disk": 30.0}}  # low: no autoscaling
        value = json.dumps(envelope).encode()
        try:
            future = self.producer.send(self.topic, key=self.cluster_id.encode(), value=value,
                                        headers=[(HEADER, sign(value))])
        except Exception:  # noqa: BLE001 - the broker is down (no metadata): this sample was never sent
            future = None
        self.samples.append((stamp, time.time(), future))

    def _run(self) -> None:
        while not self.stop.is_set():
            status, body = _call(self.base, "POST", "/api/v1/jobs",
                                 {"type": "provision", "parameters": {"cluster_id": self.cluster_id}}, self.key)
            self.statuses[status] += 1
            if status == 201:
                self.acknowledged.append(body["job"]["id"])
            self.statuses[_call(self.base, "GET", f"/api/v1/clusters/{self.cluster_id}", key=self.key)[0]] += 1
            self._send_sample()
            self.stop.wait(1.0)

    def acknowledged_since(self, moment: float) -> bool:
        """Whether the broker has acknowledged a sample sent at or after `moment` (wall clock)."""
        return any(sent >= moment and future is not None and future.is_done and future.succeeded()
                   for _, sent, future in list(self.samples))

    def acknowledged_samples(self) -> dict[str, float]:
        """The samples the broker acknowledged (after flushing what is still buffered): timestamp -> sent at."""
        self.producer.flush(60)
        return {stamp: sent for stamp, sent, future in self.samples
                if future is not None and future.is_done and future.succeeded()}

    def __enter__(self) -> "Load":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


# --- the faults: each injects its fault and heals it, returning when it did each -------------------------
def _stop_for(service_cls, seconds: int):
    def inject(ctx: dict[str, Any]) -> tuple[float, float]:
        server = service_cls(StackConfig.from_env())
        if server.own_pid() is None:
            pytest.fail(f"refusing to stop {server.name} on port {server.port}: ./dev did not start it (no pid file)",
                        pytrace=False)
        ctx["server"] = server
        assert server.stop()
        started = time.monotonic()
        time.sleep(seconds)
        server.ensure()
        return started, time.monotonic()
    return inject


def _kill_bridge(ctx: dict[str, Any]) -> tuple[float, float]:
    """SIGKILL the MSK bridge; healed when bridge-watch has started another (nothing else is done)."""
    bridge = Bridge(StackConfig.from_env())
    pid = bridge.own_pid()
    if pid is None:
        pytest.fail("no MSK bridge started by ./dev to kill", pytrace=False)
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    ctx["killed_pid"] = pid
    wait_for(lambda: bridge.own_pid() not in (None, pid), timeout=60, interval=0.2,
             what="bridge-watch to start another MSK bridge")
    return started, time.monotonic()


def _kill_worker(ctx: dict[str, Any]) -> tuple[float, float]:
    """SIGKILL the job worker's process in the middle of a batch: while it records a job's droplet.

    A test transaction holds the next-key locks on the load cluster's range of the droplets index, so the worker's
    droplet insert for that cluster waits (reads, the API's job inserts and everything else go on); the worker
    process that owns that waiting connection is killed, then the lock is released. SQS delivers the batch again
    after its visibility timeout and the job resumes from `processing`."""
    env, cluster = ctx["env"], ctx["load"].cluster_id
    conn = _connect(env, autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM droplets WHERE cluster_id = %s FOR UPDATE", (cluster,))

        def waiting_worker() -> tuple[int, str] | None:
            """(pid, host) of a job worker process whose droplet insert for the cluster waits on the lock (the
            event handler's inserts of droplets it is told about may wait too: they are told apart by process)."""
            rows = _query(env, "SELECT HOST FROM information_schema.PROCESSLIST WHERE INFO LIKE %s",
                          (f"INSERT INTO droplets (id, tenant_id, cluster_id,%'{cluster}'%",))
            workers = function_pids(ctx["stack"]["functions"]["job_worker"])
            for row in rows:
                pid = pid_with_local_port(workers, int(row["HOST"].rsplit(":", 1)[1]))
                if pid:
                    return pid, row["HOST"]
            return None

        pid, _host = wait_for(waiting_worker, timeout=90, interval=0.1,
                              what="a job worker to wait on its droplet insert")
        os.kill(pid, signal.SIGKILL)
        ctx["killed_pid"] = pid
    finally:
        conn.rollback()
        conn.close()
    now = time.monotonic()
    return now, now


@dataclasses.dataclass(frozen=True)
class Fault:
    name: str
    inject: Any
    sees_503: bool = False  # every request reads MariaDB: its outage must be seen by the API


FAULTS = [
    Fault("mariadb-30s", _stop_for(MariaDB, 30), sees_503=True),
    Fault("redis-30s", _stop_for(Redis, 30)),
    Fault("kafka-30s", _stop_for(Kafka, 30)),
    Fault("bridge-kill", _kill_bridge),
    Fault("worker-kill", _kill_worker),
    Fault("mariadb-120s", _stop_for(MariaDB, 120), sees_503=True),
    Fault("redis-120s", _stop_for(Redis, 120)),
    Fault("kafka-120s", _stop_for(Kafka, 120)),
]


def _queue_depth(aws, url: str) -> int:
    attrs = aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _dlq_topic_end(env: dict[str, str]) -> int:
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    topic = env.get("CG_EVENTS_DLQ_TOPIC", "cluster-events.dlq")
    consumer = KafkaConsumer(bootstrap_servers=env.get("CG_KAFKA_BOOTSTRAP", "127.0.0.1:19092"))
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


@pytest.fixture
def load_key(stack) -> str:  # noqa: ANN001
    """The load's own operator key: rate limits are per caller, so the load spends its own buckets, not those
    of the stack's admin key that every later test calls with (it left `POST /jobs` answering 429 to the next
    test file once)."""
    status, body = _call(stack["api_url"].rstrip("/"), "POST", "/api/v1/auth/keys",
                         {"role": "operator", "name": f"fault tier load {uuid.uuid4().hex[:6]}"})
    assert status == 201, body
    return body["secret"]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_a_fault_under_load_loses_nothing_and_answers_no_500(stack, aws, function_env, record_property, fault, app_db,
                                                             load_key):
    base = stack["api_url"].rstrip("/")
    cluster_id = f"cluster-faults-{uuid.uuid4().hex[:12]}"
    _query(function_env, "INSERT INTO clusters (id, name, region) VALUES (%s, %s, 'nyc3')", (cluster_id, cluster_id))
    dlq_topic_before = _dlq_topic_end(function_env)
    ctx: dict[str, Any] = {"env": function_env, "stack": stack}
    load = Load(base, cluster_id, function_env, load_key)
    ctx["load"] = load
    try:
        with load:
            time.sleep(LEAD_SECONDS)
            fault_at, healed_at = fault.inject(ctx)
            wait_for(lambda: _call(base, "GET", f"/api/v1/clusters/{cluster_id}")[0] == 200, timeout=60,
                     what=f"the API to answer again after {fault.name}")
            api_recovered_in = time.monotonic() - healed_at
            healed_wall = time.time() - (time.monotonic() - healed_at)
            wait_for(lambda: load.acknowledged_since(healed_wall), timeout=90, interval=0.2,
                     what=f"the broker to acknowledge telemetry again after {fault.name}")
            producer_recovered_in = time.monotonic() - healed_at
            time.sleep(LEAD_SECONDS)
        acknowledged = list(load.acknowledged)
        assert acknowledged, "no job was acknowledged at all"
        marks = ", ".join(["%s"] * len(acknowledged))

        # Every telemetry sample the broker acknowledged is applied exactly once (3 metric rows each).
        samples = load.acknowledged_samples()
        assert samples, "the broker acknowledged no telemetry sample"

        applied_at: dict[str, float] = {}

        def rows_per_sample() -> Counter[str]:
            rows = _query(function_env, "SELECT timestamp, COUNT(*) AS n, UNIX_TIMESTAMP(MIN(created_at)) AS at "
                                        "FROM metrics WHERE cluster_id = %s GROUP BY timestamp", (cluster_id,))
            applied_at.update({r["timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ"): float(r["at"]) for r in rows})
            return Counter({r["timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ"): r["n"] for r in rows})

        wait_for(lambda: all(rows_per_sample()[s] >= 3 for s in samples), timeout=SETTLE_TIMEOUT, interval=1,
                 what="every acknowledged telemetry sample to be applied")
        applied = rows_per_sample()
        # A sample's latency: sent (acknowledged) to applied. Its maximum over the run is how long the pipeline
        # lagged behind because of the fault (for a killed bridge: the time until events are applied again).
        latencies = sorted(applied_at[s] - sent for s, sent in samples.items())
        assert all(applied[s] == 3 for s in samples), {s: applied[s] for s in samples if applied[s] != 3}
        assert all(n == 3 for n in applied.values()), "a sample applied twice"

        def settled() -> list[dict[str, Any]] | None:
            rows = _query(function_env, f"SELECT id, status, error FROM jobs WHERE id IN ({marks})", acknowledged)
            return rows if len(rows) == len(acknowledged) and all(r["status"] == "completed" for r in rows) else None

        try:
            wait_for(settled, timeout=SETTLE_TIMEOUT, interval=1, what="every acknowledged job to complete")
        finally:
            rows = _query(function_env, f"SELECT status, COUNT(*) AS n FROM jobs WHERE id IN ({marks}) GROUP BY status",
                          acknowledged)
            print(f"faults/{fault.name}: jobs {rows}, statuses {dict(load.statuses)}")  # noqa: T201
        done = _query(function_env, f"SELECT UNIX_TIMESTAMP(MAX(completed_at)) AS at FROM jobs WHERE id IN ({marks})",
                      acknowledged)
        jobs_settled_in = float(done[0]["at"]) - healed_wall
        droplets = _query(function_env, "SELECT COUNT(*) AS n FROM droplets WHERE cluster_id = %s", (cluster_id,))
        assert droplets[0]["n"] == len(acknowledged), "one droplet per provision job"

        # Every job event published, in the order of its job's state changes.
        wait_for(lambda: not _query(function_env, f"SELECT id FROM outbox WHERE sent_at IS NULL AND job_id IN ({marks})",
                                    acknowledged), timeout=120, interval=1, what="every job event to be published")
        events = _query(function_env, f"SELECT job_id, event_type, sent_at FROM outbox WHERE job_id IN ({marks}) "
                                      "ORDER BY id", acknowledged)
        per_job: dict[str, list[dict[str, Any]]] = {}
        for row in events:
            per_job.setdefault(row["job_id"], []).append(row)
        for job_id in acknowledged:
            types = [r["event_type"] for r in per_job[job_id]]
            assert types[0] == "job_requested" and types[-1] == "job_completed", (job_id, types)
            assert types.count("job_completed") == 1 and types.count("droplet_created") == 1, (job_id, types)
            sent = [r["sent_at"] for r in per_job[job_id]]
            assert sent == sorted(sent), f"{job_id}'s events were published out of order: {types} sent {sent}"

        # Nothing parked: the jobs' dead-letter queue (redriven by the sweeper), the event handler's on-failure
        # queue, and the dead-letter topic (only bad content goes there; the load sends none).
        wait_for(lambda: _queue_depth(aws, stack["queues"]["jobs_dlq"]) == 0, timeout=150, interval=2,
                 what="the jobs' dead-letter queue to be empty")
        assert _queue_depth(aws, stack["queues"]["event_handler_failures"]) == 0
        assert _dlq_topic_end(function_env) == dlq_topic_before

        # 2xx, 4xx (a quota's 409 and the limiter's 429 are answers too) or 503; never another 5xx.
        assert all(status < 500 or status == 503 for status in load.statuses), dict(load.statuses)
        if fault.sees_503:
            assert load.statuses[503] > 0, "the outage was never seen by the API"
        if fault.name == "bridge-kill":  # the new bridge reports its progress (`./dev status` reads it)
            status = Bridge(StackConfig.from_env()).status()
            assert status["pid"] != ctx["killed_pid"] and Bridge(StackConfig.from_env()).not_progressing(status) is None
        figures = {"fault_s": round(healed_at - fault_at, 1), "jobs_acknowledged": len(acknowledged),
                   "jobs_completed": len(acknowledged), "job_events_published": len(events),
                   "samples_sent": len(load.samples), "samples_acknowledged": len(samples),
                   "samples_applied": sum(1 for s in samples if applied[s] == 3),
                   "api_statuses": dict(sorted(load.statuses.items())), "api_recovered_s": round(api_recovered_in, 1),
                   "producer_recovered_s": round(producer_recovered_in, 1),
                   "sample_latency_max_s": round(latencies[-1], 1),
                   "sample_latency_median_s": round(latencies[len(latencies) // 2], 1),
                   "jobs_all_completed_after_heal_s": round(jobs_settled_in, 1)}
        record_property("figures", figures)
        print(f"faults/{fault.name} figures: {json.dumps(figures)}")  # noqa: T201
    finally:
        load.producer.close(timeout=5)
        server = ctx.get("server")
        if server is not None and server.own_pid() is None:  # never leave the stack without it
            server.ensure()
        app_db.ping(reconnect=True)  # the session's shared connection (later tests use it) may have lost its server
        _query(function_env, "DELETE FROM clusters WHERE id = %s", (cluster_id,))
