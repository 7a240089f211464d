"""Event pipeline throughput: in-process, end to end through the MSK bridge on LocalStack, and the ceiling.

    .venv/bin/python bench/bench_events.py [--events 2000] [--db clustergenie] [--skip-e2e]

1. In-process: the event_handler function (`handle_kafka_batch`) called with `aws:kafka` batches of 100
   built by the bridge's own shape builder, against the real MariaDB, Redis and Kafka (dead letters),
   for a job-events-only stream, a telemetry-only stream and the mixed stream.
2. End to end: the mixed stream produced to `cluster-events`; timed from the first send until the bridge's
   consumer group has committed every partition's end offset (the deployed function on LocalStack applies
   them; needs `./dev up`).
3. Read ceiling: a bare kafka-python consumer reading the very records of step 2 from the broker.
4. Write ceiling (issue 16): bare clients writing the rows the mixed stream's batches write, with the
   handler's own statements batched the same way: per batch of 100, each `droplet_created` its
   `INSERT INTO droplets ... ON DUPLICATE KEY` and commit (pymysql); the job events' read models (the job-state
   rows, in Redis) in one call of the handler's own script (`handler._JOB_READ_MODELS`, without the ledger's
   marks; redis-py); then in one transaction the telemetry samples in one multi-row `INSERT INTO metrics ...
   ON DUPLICATE KEY` and the health of every cluster the batch's telemetry touched in one compare-and-set
   `UPDATE clusters` (the repository's own `store_health_sql`), and one commit. Events are parsed before the
   clock starts: this is the databases' rate for those rows, the write path's ceiling. (Until the handler's
   batched health write, issue 16, both wrote each cluster's health in its own UPDATE and commit, and the
   samples in a transaction of their own. Until the fourth round the ceiling left out the job read models, 40%
   of the stream's events: the bench still prints the ratio to that MariaDB-only ceiling, timed as the same
   run's ceiling less its Redis calls.)

MariaDB statements, commits and Redis round trips per batch are counted for the in-process mixed runs and
for the ceiling (as bench_job_worker.py counts them), and CPU milliseconds per event by process
(`bench/cpu_accounting.py`: the bench process, MariaDB, Redis, Kafka, LocalStack, the function's execution
environments, the bridge) for the in-process mixed runs, the write ceiling's and the timed end-to-end run.

The in-process and end-to-end rates are printed against the write ceiling (issue 16: at least 0.5 in
process; end to end at least 0.8 of in process) and, as before, against the read ceiling. Clusters it creates are deleted at the end (with their rows).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import statistics
import sys
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import cpu_accounting  # noqa: E402 - bench/ (the script's own directory) is on sys.path

STATE = pathlib.Path(os.environ.get("CG_STATE_DIR", ROOT / ".local"))


def load_stack_env(db_name: str) -> None:
    from devstack.config import load_stack_env as read_stack_env

    read_stack_env()
    os.environ["CG_DB_NAME"] = db_name
    os.environ.setdefault("CG_ENVIRONMENT", "bench")
    os.environ.setdefault("CG_LOG_LEVEL", "WARNING")


def envelope(event_type: str, cluster_id: str, **fields) -> dict:
    return {"type": event_type, "job_id": None, "job_type": None, "cluster_id": cluster_id, "progress": None,
            "message": "", "timestamp": "2026-01-01T00:00:00Z", "trace_id": None, "correlation_id": None,
            "payload": {}, **fields}


def stream(kind: str, clusters: list[str], n: int, seed: int = 1) -> list[tuple[str, bytes]]:
    """(key, value) pairs: `jobs`, `telemetry`, or `mixed` (40% job events, 50% telemetry, 5% droplets,
    5% malformed)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        c = clusters[i % len(clusters)]
        roll = {"jobs": 0.1, "telemetry": 0.5}.get(kind, rng.random())
        if roll < 0.4:
            event = envelope("job_progress", c, job_id=f"job-{i // 5}-{seed}", progress=min(100, i % 5 * 20))
        elif roll < 0.9:
            event = envelope("telemetry", c, payload={"cpu": rng.uniform(5, 70), "memory": rng.uniform(5, 70),
                                                      "disk": rng.uniform(5, 70)})
        elif roll < 0.95:
            event = envelope("droplet_created", c, payload={"droplet": {"id": f"droplet-{uuid.uuid4()}"}})
        else:
            out.append((c, b"{not json"))
            continue
        out.append((c, json.dumps(event).encode()))
    return out


class Record:
    """The fields of a kafka-python ConsumerRecord the bridge's builder reads."""

    def __init__(self, topic, partition, offset, key, value):
        self.topic, self.partition, self.offset, self.key, self.value = topic, partition, offset, key, value
        self.timestamp, self.timestamp_type = 1_700_000_000_000, 0
        self.headers = signed(value)


def signed(value: bytes) -> list[tuple[str, bytes]]:
    """The app's signature header (issue 18): an unsigned record is dead-lettered, never applied."""
    from chalicelib.event_signing import HEADER, sign

    return [(HEADER, sign(value))]


class Context:
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def in_process(kind: str, clusters: list[str], n: int, bridge) -> float:
    from chalicelib.functions.event_handler import handle_kafka_batch

    topic = f"bench-{uuid.uuid4().hex[:8]}"  # fresh ledger keys: nothing is a duplicate
    records = [Record(topic, i % 3, i // 3, k.encode(), v) for i, (k, v) in enumerate(stream(kind, clusters, n))]
    batches = [bridge.build_msk_event(records[i:i + 100], "arn:aws:kafka:bench", "127.0.0.1:19092")
               for i in range(0, len(records), 100)]
    started = time.perf_counter()
    for event in batches:
        handle_kafka_batch(event, Context())
    return n / (time.perf_counter() - started)


def _produce_and_wait(group, producer, topic: str, partitions: list, records: list[tuple[str, bytes]]) -> float:
    """Seconds from the first send until the bridge's group has committed every partition's end offset."""
    started = time.perf_counter()
    for key, value in records:
        producer.send(topic, key=key.encode(), value=value, headers=signed(value))
    producer.flush(60)
    end = group.end_offsets(partitions)
    deadline = time.monotonic() + 600
    while any((group.committed(tp) or 0) < end[tp] for tp in partitions):
        if time.monotonic() > deadline:
            raise SystemExit("the bridge did not catch up within 600 s (is ./dev up running?)")
        time.sleep(0.05)
    return time.perf_counter() - started


def end_to_end(clusters: list[str], n: int, warmup: int = 400) -> tuple[float, float, float, dict[str, float]]:
    """(events/s, bare consumer's events/s, seconds the warm-up took, CPU seconds by process of the timed run).
    The warm-up (`warmup` events first, not
    timed) starts the function's environments the bridge's pollers use, as the in-process runs are warm: a
    cold start right after a deploy is several seconds on this machine, a third of a 2,000-event run."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from chalicelib.settings import get_settings

    settings = get_settings()
    topic = settings.events_topic
    records = stream("mixed", clusters, n, seed=2)
    from devstack.config import StackConfig
    from devstack.deploy import consumer_group
    from devstack.services import stack_json

    group_id = consumer_group(stack_json(StackConfig.from_env()), topic)  # the bridge's, from the stack
    group = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group_id, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in sorted(group.partitions_for_topic(topic))]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
    warm = _produce_and_wait(group, producer, topic, partitions, stream("mixed", clusters, warmup, seed=4)) if warmup else 0.0
    start = group.end_offsets(partitions)
    cpu_before = cpu_accounting.snapshot(STATE)
    e2e = n / _produce_and_wait(group, producer, topic, partitions, records)
    cpu = cpu_accounting.delta(cpu_before, cpu_accounting.snapshot(STATE))
    end = group.end_offsets(partitions)
    group.close()

    bare = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, max_poll_records=500)
    bare.assign(partitions)
    for tp in partitions:
        bare.seek(tp, start[tp])
    got, started = 0, time.perf_counter()
    while any(bare.position(tp) < end[tp] for tp in partitions):
        for tp, batch in bare.poll(timeout_ms=200).items():
            got += sum(1 for r in batch if r.offset < end[tp])
    ceiling = got / (time.perf_counter() - started)
    bare.close()
    return e2e, ceiling, warm, cpu


def write_ceiling(clusters: list[str], n: int) -> tuple[float, float]:
    """Events/s of the mixed stream's row writes by bare clients (see the module's docstring), and events/s of its
    MariaDB writes alone (the same run, less the time of its Redis calls)."""
    import datetime as dt
    import hashlib

    import pymysql

    from chalicelib.event_pipeline import job_models
    from chalicelib.event_pipeline.handler import _JOB_READ_MODELS
    from chalicelib.event_pipeline.model import JOB_EVENT_TYPES, parse_event
    from chalicelib.models.domain import METRIC_UNITS
    from chalicelib.redis_client import get_redis
    from chalicelib.settings import get_settings

    from chalicelib.repositories.clusters import store_health_sql, store_health_args

    run = uuid.uuid4().hex[:8]  # fresh source hashes and droplet ids: nothing is a duplicate
    batches = []
    records = stream("mixed", clusters, n, seed=3)
    for first in range(0, len(records), 100):
        metrics, droplets, touched, job_keys, job_args = [], [], {}, [], []
        for offset, (key, value) in enumerate(records[first:first + 100], start=first):
            try:
                event = parse_event(value)
            except Exception:  # noqa: BLE001 - malformed: dead-lettered by the handler, no row written
                continue
            if event.type == "telemetry":
                for index, sample in enumerate(event.payload.samples()):
                    source = f"{run}:{offset}:{index}".encode()
                    metrics.append((event.cluster_id, sample.type, float(sample.value), METRIC_UNITS[sample.type],
                                    (sample.timestamp or event.timestamp).astimezone(dt.timezone.utc).replace(tzinfo=None),
                                    hashlib.md5(source, usedforsecurity=False).digest()))
                touched[event.cluster_id] = True
            elif event.type == "droplet_created":
                droplets.append((f"droplet-{run}-{offset}", "default", event.cluster_id, f"bench-{offset}", "nyc3",
                                 "simulated", "s-1vcpu-1gb", "ubuntu-22-04-x64", "active", None))
            elif event.type in JOB_EVENT_TYPES:
                job_keys.append(job_models.model_key(event.job_id))
                job_args += job_models.model_args(event)
        batches.append((metrics, droplets, list(touched), job_keys, [len(job_keys), *job_args]))
    settings = get_settings()
    job_models_script = get_redis().register_script(_JOB_READ_MODELS)
    job_models_script(keys=[], args=[0])  # loaded before the clock starts
    in_redis = 0.0
    conn = pymysql.connect(host=settings.db_host, port=settings.db_port, user=settings.db_user,
                           password=settings.db_password or "", database=settings.db_name, autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, version FROM clusters WHERE id IN %s", (clusters,))
            versions = dict(cur.fetchall())
        conn.commit()
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        started = time.perf_counter()
        with conn.cursor() as cur:
            for metrics, droplets, touched, job_keys, job_args in batches:
                for droplet in droplets:  # the handler applies each as it comes (its own transaction)
                    cur.execute("INSERT INTO droplets (id, tenant_id, cluster_id, name, region, provider, size, image, "
                                "status, ip_address) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                                "ON DUPLICATE KEY UPDATE id = id", droplet)
                    conn.commit()
                if job_keys:  # the batch's job read models: one script call
                    redis_started = time.perf_counter()
                    job_models_script(keys=job_keys, args=job_args)
                    in_redis += time.perf_counter() - redis_started
                if metrics:  # the batch's telemetry: one transaction (MonitoringService.record_telemetry)
                    cur.executemany("INSERT INTO metrics (cluster_id, type, value, unit, timestamp, source_hash) "
                                    "VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE id = id", metrics)
                    health = {cluster_id: (versions[cluster_id], "healthy") for cluster_id in touched}
                    cur.execute(store_health_sql(health), store_health_args(health, now))
                    assert cur.rowcount == len(health), "the ceiling's health write lost a version race"
                    for cluster_id in touched:
                        versions[cluster_id] += 1
                    conn.commit()
        elapsed = time.perf_counter() - started
        return n / elapsed, n / (elapsed - in_redis)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--db", default="clustergenie")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--warmup", type=int, default=400,
                        help="events sent through the bridge before the timed end-to-end run (0: none)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating pairs of in-process mixed and write ceiling")
    args = parser.parse_args()
    load_stack_env(args.db)
    from devstack.services import load_bridge_module

    bridge = load_bridge_module()

    from chalicelib.jobs_queue import InMemoryJobQueue, set_job_queue
    from chalicelib.repositories import ClusterRepository

    set_job_queue(InMemoryJobQueue())  # the bench stream has no threshold alerts; never queue for real
    repo = ClusterRepository()
    clusters = [repo.create(f"bench-events-{n}", "nyc3")["id"] for n in range(20)]
    try:
        print(f"load before: {os.getloadavg()}", flush=True)
        rates = {kind: in_process(kind, clusters, args.events, bridge) for kind in ("jobs", "telemetry")}
        # The mixed path and its write ceiling alternate, `--rounds` times each: on a shared machine the load
        # moves within seconds, so each ratio is of neighbours in time, and the median ratio is reported.
        from bench.bench_job_worker import Counter

        counter, trips = Counter(), {"handler": [0, 0, 0], "ceiling": [0, 0, 0]}
        counter.install()
        cpu: dict[str, dict[str, float]] = {"handler": {}, "ceiling": {}}

        def counted(side: str, run):
            before = (counter.sql, counter.commits, counter.redis)
            cpu_before = cpu_accounting.snapshot(STATE)
            rate = run()
            for group, seconds in cpu_accounting.delta(cpu_before, cpu_accounting.snapshot(STATE)).items():
                cpu[side][group] = cpu[side].get(group, 0.0) + seconds
            for i, now in enumerate((counter.sql, counter.commits, counter.redis)):
                trips[side][i] += now - before[i]
            return rate

        runs = [(counted("handler", lambda: in_process("mixed", clusters, args.events, bridge)),
                 counted("ceiling", lambda: write_ceiling(clusters, args.events))) for _ in range(args.rounds)]
        pairs = [(m, w) for m, (w, _) in runs]
        rates["mixed"] = statistics.median(m for m, _ in pairs)
        writes = statistics.median(w for _, w in pairs)
        write_ratio = statistics.median(m / w for m, w in pairs)
        mariadb_only = statistics.median(m / w for m, (_, w) in runs)
        e2e = ceiling = None
        if not args.skip_e2e:
            e2e, ceiling, warm, cpu["end to end"] = end_to_end(clusters, args.events, args.warmup)
    finally:
        for cluster_id in clusters:
            repo.delete(cluster_id)
    print(f"events per run: {args.events}, batch 100, 20 clusters")
    for kind, rate in rates.items():
        line = f"in-process {kind:<10} {rate:9.0f} events/s"
        if ceiling:
            line += f"   {rate / ceiling:6.3f} of the ceiling"
        print(line)
    print(f"write ceiling (bare clients, mixed rows) {writes:9.0f} events/s")
    batches = args.rounds * -(-args.events // 100)
    for side, (sql, commits, redis_trips) in trips.items():
        print(f"per batch of 100, {side:<7}: {sql / batches:5.1f} MariaDB statements, {commits / batches:5.1f} commits, "
              f"{redis_trips / batches:4.1f} Redis round trips")
    for side, spent in cpu.items():
        if spent:
            events = args.events * (1 if side == "end to end" else args.rounds)
            shown = {g: ms for g, ms in cpu_accounting.per_unit_ms(spent, events).items() if ms >= 0.005}
            print(f"CPU ms per event, {side:<10}: " + ", ".join(f"{g} {ms:.3f}" for g, ms in shown.items()))
    print(f"in-process mixed / write ceiling: {write_ratio:6.3f} (median of {args.rounds} alternating pairs: "
          + ", ".join(f"{m:.0f}/{w:.0f}" for m, w in pairs) + ")")
    print(f"in-process mixed / the ceiling's MariaDB writes alone (without the job read models): {mariadb_only:6.3f}")
    if e2e is not None:
        print(f"end to end (bridge + LocalStack, mixed) {e2e:9.0f} events/s   {e2e / ceiling:6.3f} of the ceiling")
        print(f"end to end / in-process mixed: {e2e / rates['mixed']:6.3f} (after a warm-up of {args.warmup} events "
              f"through the bridge, not timed: {warm:.1f} s)")
        print(f"ceiling (bare kafka-python consumer)    {ceiling:9.0f} events/s")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
