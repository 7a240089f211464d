"""MSK bridge: plays the part of Lambda's managed Kafka poller where there is no MSK event source.

Free LocalStack has no MSK event source mapping, so locally this process does what AWS does for an
`AWS::Lambda::EventSourceMapping` on an MSK cluster: for each mapping it consumes every partition of the
topic at the mapping's consumer group's committed offsets (by assignment: one bridge runs per stack, see
MappingWorker._consumer), gathers batches (batch size, batching window), invokes the function synchronously through the
Lambda Invoke API with the `aws:kafka` event, commits the offsets only after a successful invocation,
retries failures with exponential backoff, and after the last retry sends an on-failure record to an
SQS queue and commits, so that one bad batch does not block its partitions forever.

Plain Kafka only (kafka-python): the same code would consume from MSK. `./dev up` generates its config
from the stack's template (its `AWS::Lambda::EventSourceMapping`s on Kafka, which LocalStack cannot
create) and the stack's outputs (function and queue names), then runs:

    .venv/bin/python localstack/msk_bridge/bridge.py --config $CG_STATE_DIR/msk-bridge/mappings.json

Environment: CG_KAFKA_BOOTSTRAP (default 127.0.0.1:19092), AWS_ENDPOINT_URL (default
http://127.0.0.1:$CG_LOCALSTACK_PORT, port 4566), AWS_DEFAULT_REGION (us-east-1). Logs are JSON lines on
stdout. SIGTERM/SIGINT stop it after the batch in flight.

Replaying the on-failure queue (`./dev replay events` locally; on AWS the same script with `--aws`, a
mappings file naming the function, topic and queue, and CG_KAFKA_BOOTSTRAP set to the MSK brokers):

    .venv/bin/python localstack/msk_bridge/bridge.py --config mappings.json --replay cluster-events

reads each parked batch back from the topic, invokes the function with it as the bridge does, and deletes
the queue message only after the invocation succeeded (see replay_failures).
"""
from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

DEFAULT_EVENT_SOURCE_ARN = (
    "arn:aws:kafka:{region}:000000000000:cluster/clustergenie-local/00000000-0000-0000-0000-000000000000-1"
)
# An idle mapping polls the broker this often at first, then, while nothing comes, less often, doubling up to
# IDLE_POLL_MAX_SECONDS (see MappingWorker._poll_batch).
IDLE_POLL_SECONDS = 0.05
IDLE_POLL_MAX_SECONDS = 0.2
# Within a batching window a partial batch is topped up this many times at most (records that come in a burst
# are taken at once, see _poll_batch): the window bounds the delivery either way, and each poll is a fetch the
# broker answers (issue 16: a 1 s window polled every 50 ms, 20 fetches a second for a trickle of log lines).
WINDOW_POLLS = 5
# Every REPORT_SECONDS the lag monitor (LagMonitor, its own thread and consumers) measures each mapping's group lag
# per partition, and the bridge writes its status
# file ($CG_STATE_DIR/msk-bridge/status.json: `./dev status`, `./dev up`'s progress check) and pushes
# clustergenie_consumer_lag{group,topic,partition} and the last delivery time to the Pushgateway.
REPORT_SECONDS = 5.0
# One lag measurement's broker requests (ListOffsets, OffsetFetch) give up after this long: a broker that answers
# slowly (after a restart) delays the next measurement, never a delivery, which runs on other threads.
LAG_TIMEOUT_MS = 5_000
# The consumer takes every partition of its topic by manual assignment, not through group membership (see
# MappingWorker._consumer); it re-reads the topic's partitions every REPORT_SECONDS from metadata refreshed
# at least this often, so a partition added to the topic is consumed within about this long.
METADATA_MAX_AGE_MS = 30_000
# While the topic does not exist yet (or the broker has no metadata for it), look again this often.
NO_PARTITIONS_RETRY_SECONDS = 1.0
# A batch's invoke payload stays under Lambda's 6 MB limit for a synchronous invoke, as an MSK event source
# closes a batch at 6 MB: a record that would take it past this waits for the next batch (the bridge's JSON
# is compact, so this estimate, from the record's sizes, is an upper bound).
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024 - 64 * 1024
# kafka-python's ConsumerRecord.timestamp_type: 0 = CreateTime, 1 = LogAppendTime.
TIMESTAMP_TYPES = {0: "CREATE_TIME", 1: "LOG_APPEND_TIME"}

_log_lock = threading.Lock()


def log(level: str, msg: str, **fields: Any) -> None:
    """One structured log line (JSON) on stdout."""
    line = {
        "ts": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": "msk_bridge",
        "msg": msg,
        **fields,
    }
    with _log_lock:
        sys.stdout.write(json.dumps(line, default=str) + "\n")
        sys.stdout.flush()


# --- configuration ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Mapping:
    """One event source mapping: a topic feeding a function, with AWS's knobs for MSK mappings."""

    topic: str
    function_name: str
    consumer_group: str
    batch_size: int = 100
    maximum_batching_window_seconds: float = 0.5
    starting_position: str = "TRIM_HORIZON"  # or LATEST
    maximum_retry_attempts: int = 3
    on_failure_queue: str | None = None
    retry_backoff_seconds: float = 1.0
    retry_backoff_max_seconds: float = 30.0
    event_source_arn: str | None = None
    enabled: bool = True
    # ProvisionedPollerConfig.MaximumPollers (issue 16): that many pollers, each owning the partitions p with
    # p % maximum_pollers == its index, each with one batch in flight: batches of different partitions are
    # invoked concurrently, a partition's batches one after another (its order kept). 1: one poller for all.
    maximum_pollers: int = 1

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Mapping":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known - {"name", "comment"}
        if unknown:
            raise ValueError(f"unknown mapping keys: {sorted(unknown)}")
        mapping = cls(**{k: v for k, v in data.items() if k in known})
        if mapping.starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError(f"starting_position must be TRIM_HORIZON or LATEST, not {mapping.starting_position!r}")
        if not 1 <= mapping.batch_size <= 10000:
            raise ValueError("batch_size must be between 1 and 10000")
        if mapping.maximum_pollers < 1:
            raise ValueError("maximum_pollers must be >= 1")
        if mapping.maximum_retry_attempts < -1:
            raise ValueError("maximum_retry_attempts must be >= 0, or -1 (retry until the batch succeeds)")
        return mapping


def load_mappings(path: str) -> list[Mapping]:
    """The enabled mappings of a JSON config file: {"mappings": [{topic, function_name, ...}, ...]}."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    return [m for m in (Mapping.from_dict(item) for item in data["mappings"]) if m.enabled]


# --- event shapes (pure functions: unit-tested without Kafka or AWS) ---------------------------------------
def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def record_to_msk(record: Any) -> dict[str, Any]:
    """One kafka-python ConsumerRecord as an `aws:kafka` event record.

    key and value are base64; a null key or value is left out, as Lambda does. Header values are lists
    of byte values (0-255) under the header's name.
    """
    item: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "timestampType": TIMESTAMP_TYPES.get(record.timestamp_type, "CREATE_TIME"),
    }
    if record.key is not None:
        item["key"] = _b64(record.key)
    if record.value is not None:
        item["value"] = _b64(record.value)
    item["headers"] = [{name: list(value or b"")} for name, value in (record.headers or [])]
    return item


def payload_size(record: Any) -> int:
    """At most the bytes `record_to_msk(record)` adds to the compact JSON payload: base64 key and value, each
    header byte as up to three digits and a comma, and the fixed fields."""
    b64 = lambda data: 0 if data is None else (len(data) + 2) // 3 * 4  # noqa: E731
    headers = sum(len(name) + 8 + 4 * len(value or b"") for name, value in (record.headers or []))
    return 200 + len(record.topic) + b64(record.key) + b64(record.value) + headers


def build_msk_event(records: Iterable[Any], event_source_arn: str, bootstrap_servers: str) -> dict[str, Any]:
    """The `aws:kafka` event Lambda delivers for an MSK mapping: records grouped by "topic-partition"."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        grouped.setdefault(f"{record.topic}-{record.partition}", []).append(record_to_msk(record))
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": event_source_arn,
        "bootstrapServers": bootstrap_servers,
        "records": grouped,
    }


def _iso_ms(timestamp_ms: int | None) -> str | None:
    if timestamp_ms is None or timestamp_ms < 0:
        return None
    moment = datetime.datetime.fromtimestamp(timestamp_ms / 1000, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_failure_records(
    records: Sequence[Any],
    *,
    function_arn: str,
    bootstrap_servers: str,
    attempts: int,
    error: dict[str, Any],
    condition: str = "RetryAttemptsExhausted",
    now: datetime.datetime | None = None,
) -> list[dict[str, Any]]:
    """Lambda's on-failure invocation records for a Kafka batch, one per topic-partition in the batch.

    `error` is {"statusCode", "functionError", "payload"}; the function's error document is kept under
    responseContext.errorPayload (AWS only says "functionError" there) so the failure is explainable.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    by_partition: dict[tuple[str, int], list[Any]] = {}
    for record in records:
        by_partition.setdefault((record.topic, record.partition), []).append(record)
    out = []
    for (topic, partition), items in sorted(by_partition.items()):
        items.sort(key=lambda r: r.offset)
        out.append(
            {
                "requestContext": {
                    "requestId": str(uuid.uuid4()),
                    "functionArn": function_arn,
                    "condition": condition,
                    "approximateInvokeCount": attempts,
                },
                "responseContext": {
                    "statusCode": error.get("statusCode"),
                    "executedVersion": "$LATEST",
                    "functionError": error.get("functionError"),
                    "errorPayload": error.get("payload"),
                },
                "version": "1.0",
                "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "KafkaBatchInfo": {
                    "batchSize": len(items),
                    "topic": topic,
                    "partition": partition,
                    "approximateArrivalOfFirstRecord": _iso_ms(items[0].timestamp),
                    "approximateArrivalOfLastRecord": _iso_ms(items[-1].timestamp),
                    "startOffset": items[0].offset,
                    "endOffset": items[-1].offset,
                    "bootstrapServers": bootstrap_servers,
                },
            }
        )
    return out


def next_offsets(records: Iterable[Any]) -> dict[tuple[str, int], int]:
    """The offsets to commit after a batch: last offset + 1 per topic-partition."""
    result: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        result[key] = max(result.get(key, -1), record.offset + 1)
    return result


def backoff_delays(base: float, cap: float) -> Iterable[float]:
    """Exponential backoff: base, 2*base, 4*base, ... capped at `cap`."""
    delay = base
    while True:
        yield min(delay, cap)
        delay *= 2


def partition_lag(consumer, topic: str, timeout_ms: int | None = None) -> dict[int, int]:
    """Log end offset minus the group's committed offset, per partition of `topic` (the whole log when the
    group has committed nothing there yet). Each request gives up after `timeout_ms` (None: the consumer's)."""
    from kafka.structs import TopicPartition

    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    if not partitions:
        return {}
    ends = consumer.end_offsets(partitions, timeout_ms=timeout_ms)
    starts = consumer.beginning_offsets(partitions, timeout_ms=timeout_ms)
    lag = {}
    for tp in partitions:
        committed = consumer.committed(tp, timeout_ms=timeout_ms)
        lag[tp.partition] = max(0, ends[tp] - (starts[tp] if committed is None else committed))
    return lag


@dataclasses.dataclass(frozen=True)
class LagMeasurement:
    """A mapping's group lag per partition of its topic, and when it was measured (wall clock)."""

    lag: dict[int, int]
    measured_at: float


class LagMonitor(threading.Thread):
    """Measures every mapping's group lag every REPORT_SECONDS, on consumers of its own (one per group, never
    assigned, so never a member: `committed` is an OffsetFetch for the group).

    Off the delivery threads on purpose: an idle poller waits inside its poll, so a lag measured there kept the
    value from before its last batch for as long as the mapping stayed idle (a stale lag that could raise
    ConsumerLagHigh and make `./dev up` restart a healthy bridge); and a broker slow to answer ListOffsets
    after a restart stalled delivery when the pollers measured. Here it delays only the next measurement. A
    failed measurement keeps the last one (its `measured_at` says how old it is) and drops that consumer."""

    def __init__(self, mappings: Sequence["Mapping"], bootstrap: str, stop: threading.Event) -> None:
        super().__init__(name="lag-monitor", daemon=True)
        self.mappings = list(mappings)
        self.bootstrap = bootstrap
        self.stop_event = stop
        self.latest: dict[str, LagMeasurement] = {}  # by function name; replaced whole, read by the reporter
        self._consumers: dict[str, Any] = {}

    def _consumer(self, group: str):
        if group not in self._consumers:
            from kafka import KafkaConsumer

            self._consumers[group] = KafkaConsumer(
                bootstrap_servers=self.bootstrap.split(","), group_id=group, client_id=f"msk-bridge-lag-{group}",
                enable_auto_commit=False, request_timeout_ms=LAG_TIMEOUT_MS + 1_000,
                # The constructor connects, for 30 s by default: a round against a stopped broker ends in the
                # measurement's own time limit instead.
                bootstrap_timeout_ms=LAG_TIMEOUT_MS, metadata_max_age_ms=METADATA_MAX_AGE_MS)
        return self._consumers[group]

    def _drop(self, group: str) -> None:
        consumer = self._consumers.pop(group, None)
        if consumer is not None:
            try:
                consumer.close(autocommit=False)
            except Exception:  # noqa: BLE001
                pass

    def measure(self) -> None:
        """One round: every mapping's lag now."""
        for mapping in self.mappings:
            try:
                lag = partition_lag(self._consumer(mapping.consumer_group), mapping.topic, timeout_ms=LAG_TIMEOUT_MS)
            except Exception as exc:  # noqa: BLE001 - measured again next round; delivery is not concerned
                log("WARNING", "lag measurement failed", topic=mapping.topic, error=repr(exc))
                self._drop(mapping.consumer_group)
                continue
            self.latest = {**self.latest, mapping.function_name: LagMeasurement(lag, time.time())}

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.measure()
            self.stop_event.wait(REPORT_SECONDS)
        for group in list(self._consumers):
            self._drop(group)


def status_document(workers: Sequence["MappingWorker"], lags: dict[str, LagMeasurement], started_at: float,
                    now: float | None = None) -> dict[str, Any]:
    """What the status file holds: the bridge's pid, when it started and wrote, and per mapping its progress
    (over its pollers: alive if every one is, the latest delivery) and its lag as the lag monitor last measured
    it (`lags`, by function name; none yet: empty, and `lag_measured_at` null)."""
    by_mapping: dict[str, list[MappingWorker]] = {}
    for w in workers:
        by_mapping.setdefault(w.mapping.function_name, []).append(w)
    mappings = {}
    for function_name, pollers in by_mapping.items():
        deliveries = [w.last_delivery for w in pollers if w.last_delivery is not None]
        measured = lags.get(function_name)
        lag = measured.lag if measured else {}
        mappings[function_name] = {
            "topic": pollers[0].mapping.topic, "group": pollers[0].mapping.consumer_group,
            "alive": all(w.is_alive() for w in pollers), "last_delivery_at": max(deliveries) if deliveries else None,
            "lag_measured_at": measured.measured_at if measured else None,
            "lag": {str(p): n for p, n in sorted(lag.items())}, "total_lag": sum(lag.values()),
        }
    return {"pid": os.getpid(), "started_at": started_at, "updated_at": now or time.time(), "mappings": mappings}


def write_status(path: str, document: dict[str, Any]) -> None:
    """Atomically: a reader never sees half a file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    os.replace(tmp, path)


def lag_exposition(document: dict[str, Any]) -> str:
    """The status as Prometheus text for the Pushgateway."""
    lines = ["# TYPE clustergenie_consumer_lag gauge",
             "# HELP clustergenie_consumer_lag Records in the partition not yet committed by the consumer group."]
    deliveries = ["# TYPE clustergenie_bridge_last_delivery_timestamp_seconds gauge",
                  "# HELP clustergenie_bridge_last_delivery_timestamp_seconds When the group last delivered a batch."]
    for item in document["mappings"].values():
        for partition, lag in item["lag"].items():
            lines.append(f'clustergenie_consumer_lag{{group="{item["group"]}",topic="{item["topic"]}",'
                         f'partition="{partition}"}} {lag}')
        if item["last_delivery_at"] is not None:
            deliveries.append(f'clustergenie_bridge_last_delivery_timestamp_seconds{{group="{item["group"]}"}} '
                              f'{item["last_delivery_at"]}')
    return "\n".join(lines + deliveries) + "\n"


def push_lag(pushgateway_url: str, document: dict[str, Any], auth: tuple[str, str] | None = None) -> None:
    """PUT the lag gauges under job `clustergenie_msk_bridge` (the group is replaced whole each time), with
    the Pushgateway's basic-auth credentials when it asks for them (`./dev`'s does, issue 18)."""
    import base64
    import urllib.request

    headers = {"Content-Type": "text/plain; version=0.0.4"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(f"{pushgateway_url.rstrip('/')}/metrics/job/clustergenie_msk_bridge",
                                     data=lag_exposition(document).encode(), method="PUT", headers=headers)
    with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310 - the configured Pushgateway
        response.read()


# --- the poller ------------------------------------------------------------------------------------------
class InvokeError(Exception):
    """The Invoke API itself failed (LocalStack down, function not deployed yet): not the function's fault."""


def _ask_for_keep_alive(request: Any, **_: Any) -> None:
    request.headers["Connection"] = "keep-alive"


class MappingWorker(threading.Thread):
    """One mapping: a consumer in the group, batching, invoking, committing, retrying, dead-lettering."""

    def __init__(self, mapping: Mapping, bootstrap: str, region: str, stop: threading.Event, poller: int = 0) -> None:
        super().__init__(name=f"mapping-{mapping.topic}->{mapping.function_name}-{poller}", daemon=True)
        self.mapping = mapping
        self.poller = poller  # this poller's partitions: p % mapping.maximum_pollers == poller
        self.bootstrap = bootstrap
        self.region = region
        self.stop_event = stop
        self.event_source_arn = mapping.event_source_arn or DEFAULT_EVENT_SOURCE_ARN.format(region=region)
        self._lambda = None
        self._sqs = None
        self._failure_queue_url: str | None = None
        # Progress, read by the reporter thread: wall-clock time of the last delivered batch (the lag is the
        # LagMonitor's). When to look at the topic's partitions again (`_assign`).
        self.last_delivery: float | None = None
        self._next_assign = 0.0

    # AWS clients, created lazily; no client-side retries: this loop does its own.
    def _client(self, service: str, read_timeout: int):
        import boto3
        from botocore.config import Config

        client = boto3.session.Session().client(
            service,
            region_name=self.region,
            config=Config(retries={"max_attempts": 1}, connect_timeout=3, read_timeout=read_timeout),
        )
        # One connection for every invoke, as the app's clients (chalicelib/aws.py): LocalStack closes a
        # connection after each response unless the request asks for keep-alive.
        client.meta.events.register("before-send", _ask_for_keep_alive)
        return client

    @property
    def lambda_client(self):
        if self._lambda is None:
            # Longer than any function timeout (15 min max): the invoke is synchronous.
            self._lambda = self._client("lambda", read_timeout=910)
        return self._lambda

    @property
    def sqs(self):
        if self._sqs is None:
            self._sqs = self._client("sqs", read_timeout=10)
        return self._sqs

    def _consumer(self):
        """A consumer of the mapping's group that takes partitions by manual assignment (see _assign).

        No group membership (no JoinGroup, no heartbeats): one bridge runs per stack (`Bridge.ensure` holds
        a lock, bridge-watch supervises it), so there is nobody to balance partitions with, and a killed
        bridge leaves no member behind for its successor to wait on (the local broker never evicted one,
        docs/decisions.md). The group still holds the mapping's position: the consumer starts from the
        group's committed offsets and commits there after each delivered batch (a simple consumer's
        OffsetCommit, generation -1), so `./dev status`, lag metrics and a restarted bridge see it."""
        from kafka import KafkaConsumer

        return KafkaConsumer(
            bootstrap_servers=self.bootstrap.split(","),
            group_id=self.mapping.consumer_group,
            client_id=f"msk-bridge-{self.mapping.function_name}-{self.poller}",
            enable_auto_commit=False,
            auto_offset_reset="earliest" if self.mapping.starting_position == "TRIM_HORIZON" else "latest",
            max_poll_records=self.mapping.batch_size,
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
        )

    def _assign(self, consumer) -> bool | None:
        """Assign every partition of this poller the topic has now (partitions added since are picked up; those
        kept keep their positions). False while the topic has none (not created yet, or no metadata); None
        when it has some, but none of this poller's."""
        from kafka.structs import TopicPartition

        every = consumer.partitions_for_topic(self.mapping.topic) or set()
        if not every:
            return False
        partitions = {TopicPartition(self.mapping.topic, p) for p in every
                      if p % self.mapping.maximum_pollers == self.poller}
        if not partitions:
            return None
        if partitions != set(consumer.assignment()):
            consumer.assign(sorted(partitions))
            log("INFO", "partitions assigned", topic=self.mapping.topic, group=self.mapping.consumer_group,
                partitions=sorted(tp.partition for tp in partitions))
        return True

    def run(self) -> None:
        log("INFO", "mapping starting", topic=self.mapping.topic, function=self.mapping.function_name,
            group=self.mapping.consumer_group, bootstrap=self.bootstrap)
        consumer = None
        delays = backoff_delays(1.0, 30.0)
        while not self.stop_event.is_set():
            try:
                consumer = self._consumer()
                self._loop(consumer)
            except Exception as exc:  # noqa: BLE001 - the broker may be down: reconnect with backoff
                delay = next(delays)
                log("ERROR", "consumer failed, reconnecting", topic=self.mapping.topic, error=repr(exc), retry_in_s=delay)
                self.stop_event.wait(delay)
            finally:
                if consumer is not None:
                    try:
                        consumer.close(autocommit=False)
                    except Exception:  # noqa: BLE001
                        pass
                    consumer = None
        log("INFO", "mapping stopped", topic=self.mapping.topic, function=self.mapping.function_name)

    def _poll_batch(self, consumer) -> list[Any]:
        """Up to batch_size records, waiting at most the batching window once the first record is in.

        Polls without blocking and waits between polls on the stop event. The local broker answers a
        fetch at once even when it has nothing (it ignores the fetch's max wait), and kafka-python's
        `poll(timeout_ms=...)` then spins through empty fetches for the whole timeout: a full core per
        idle consumer. A non-blocking poll every IDLE_POLL_SECONDS costs about 2% of one instead, for at
        most that much added delivery latency; after a batch, polls that find nothing wait twice as long each
        time, up to IDLE_POLL_MAX_SECONDS (issue 16: four idle pollers took about 11% of a core on this 2-core
        machine), so a stream that pauses is picked up again within that long. Within a batching window a partial
        batch is topped up every window / WINDOW_POLLS (at least IDLE_POLL_SECONDS), and at once while polls bring
        records."""
        batch: list[Any] = []
        size = 0
        idle_wait = IDLE_POLL_SECONDS
        window_end: float | None = None
        while not self.stop_event.is_set() and len(batch) < self.mapping.batch_size:
            polled = consumer.poll(timeout_ms=0, max_records=self.mapping.batch_size - len(batch))
            full = False
            for tp, records in polled.items():
                taken = 0
                while not full and taken < len(records):
                    size += payload_size(records[taken])
                    full = bool(batch) and size > MAX_PAYLOAD_BYTES
                    if not full:
                        batch.append(records[taken])
                        taken += 1
                if taken < len(records):  # MAX_PAYLOAD_BYTES reached: the rest comes again, in order, next batch
                    consumer.seek(tp, records[taken].offset)
            if full:
                break
            if batch and window_end is None:
                window_end = time.monotonic() + self.mapping.maximum_batching_window_seconds
            if polled:
                continue  # more may be waiting: ask again at once
            if window_end is None:
                self.stop_event.wait(idle_wait)
                idle_wait = min(IDLE_POLL_MAX_SECONDS, idle_wait * 2)
            else:
                remaining = window_end - time.monotonic()
                if remaining <= 0:
                    break
                step = max(IDLE_POLL_SECONDS, self.mapping.maximum_batching_window_seconds / WINDOW_POLLS)
                self.stop_event.wait(min(step, remaining))
        return batch

    def _loop(self, consumer) -> None:
        while not self.stop_event.is_set():
            if not consumer.assignment() or time.monotonic() >= self._next_assign:
                self._next_assign = time.monotonic() + REPORT_SECONDS
                assigned = self._assign(consumer)
                if assigned is None:  # more pollers than partitions: this one idles until partitions are added
                    self.stop_event.wait(REPORT_SECONDS)
                    continue
                if not assigned:
                    log("WARNING", "topic has no partitions yet", topic=self.mapping.topic,
                        retry_in_s=NO_PARTITIONS_RETRY_SECONDS)
                    self.stop_event.wait(NO_PARTITIONS_RETRY_SECONDS)
                    continue
            batch = self._poll_batch(consumer)
            if not batch:
                continue
            if self._deliver(batch):
                self.last_delivery = time.time()
                self._commit(consumer, batch)
            else:
                # Stopping mid-retry: leave the offsets alone, the batch is delivered again after restart.
                return

    def _invoke(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Invoke synchronously; None on success, else the error (statusCode, functionError, payload)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.lambda_client.invoke(
                FunctionName=self.mapping.function_name,
                InvocationType="RequestResponse",
                Payload=json.dumps(event, separators=(",", ":")).encode(),
            )
        except (BotoCoreError, ClientError) as exc:
            raise InvokeError(repr(exc)) from exc
        body = response["Payload"].read().decode("utf-8", errors="replace")
        if response.get("FunctionError") or response.get("StatusCode", 200) >= 300:
            try:
                payload: Any = json.loads(body)
            except ValueError:
                payload = body
            return {"statusCode": response.get("StatusCode"), "functionError": response.get("FunctionError"), "payload": payload}
        return None

    def _deliver(self, batch: list[Any]) -> bool:
        """True once the batch is handled (succeeded, or dead-lettered); False if asked to stop first."""
        event = build_msk_event(batch, self.event_source_arn, self.bootstrap)
        offsets = {f"{t}-{p}": o for (t, p), o in next_offsets(batch).items()}
        attempts = 0
        function_delays = backoff_delays(self.mapping.retry_backoff_seconds, self.mapping.retry_backoff_max_seconds)
        api_delays = backoff_delays(1.0, 30.0)
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                error = self._invoke(event)
            except InvokeError as exc:
                # Not an attempt of the function: wait for LocalStack/the deployment, like a disabled mapping.
                delay = next(api_delays)
                log("WARNING", "invoke API unavailable", function=self.mapping.function_name, error=str(exc), retry_in_s=delay)
                self.stop_event.wait(delay)
                continue
            attempts += 1
            took_ms = round((time.monotonic() - started) * 1000, 1)
            if error is None:
                log("INFO", "batch delivered", function=self.mapping.function_name, records=len(batch),
                    next_offsets=offsets, attempts=attempts, duration_ms=took_ms)
                return True
            if 0 <= self.mapping.maximum_retry_attempts < attempts:  # -1: as AWS, retried until it succeeds
                log("ERROR", "batch failed after retries", function=self.mapping.function_name, records=len(batch),
                    next_offsets=offsets, attempts=attempts, error=error)
                return self._send_to_failure_destination(batch, attempts, error)
            delay = next(function_delays)
            log("WARNING", "batch failed, retrying", function=self.mapping.function_name, records=len(batch),
                attempts=attempts, retry_in_s=delay, error=error)
            self.stop_event.wait(delay)
        return False

    def _send_to_failure_destination(self, batch: list[Any], attempts: int, error: dict[str, Any]) -> bool:
        if not self.mapping.on_failure_queue:
            log("WARNING", "no on-failure destination: batch dropped", function=self.mapping.function_name,
                next_offsets={f"{t}-{p}": o for (t, p), o in next_offsets(batch).items()})
            return True
        function_arn = f"arn:aws:lambda:{self.region}:000000000000:function:{self.mapping.function_name}"
        records = build_failure_records(
            batch, function_arn=function_arn, bootstrap_servers=self.bootstrap, attempts=attempts, error=error
        )
        delays = backoff_delays(1.0, 30.0)
        while not self.stop_event.is_set():
            try:
                if self._failure_queue_url is None:
                    self._failure_queue_url = self.sqs.get_queue_url(QueueName=self.mapping.on_failure_queue)["QueueUrl"]
                for record in records:
                    self.sqs.send_message(QueueUrl=self._failure_queue_url, MessageBody=json.dumps(record))
                log("WARNING", "batch sent to on-failure destination", queue=self.mapping.on_failure_queue,
                    batches=[r["KafkaBatchInfo"] for r in records])
                return True
            except Exception as exc:  # noqa: BLE001 - keep the offsets until the failure is recorded somewhere
                delay = next(delays)
                log("ERROR", "on-failure destination unavailable", queue=self.mapping.on_failure_queue,
                    error=repr(exc), retry_in_s=delay)
                self.stop_event.wait(delay)
        return False

    def _commit(self, consumer, batch: list[Any]) -> None:
        from kafka.structs import OffsetAndMetadata, TopicPartition

        offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in next_offsets(batch).items()}
        try:
            consumer.commit(offsets)
        except Exception as exc:  # noqa: BLE001 - e.g. the broker is down: the batch may be delivered again (at least once)
            log("WARNING", "offset commit failed", topic=self.mapping.topic, error=repr(exc))


# --- replaying the on-failure queue ----------------------------------------------------------------------
class ReplayError(Exception):
    """A parked batch could not be read back from the topic (records gone past retention, broker down)."""


def fetch_batch(bootstrap: str, topic: str, partition: int, start: int, end: int, timeout_s: float = 15.0) -> list[Any]:
    """The records `start`..`end` (inclusive) of one partition, read back with a group-less consumer."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                             auto_offset_reset="none", bootstrap_timeout_ms=int(timeout_s * 1000))
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while (not records or records[-1].offset < end) and time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=200)
            records.extend(r for r in polled.get(tp, []) if start <= r.offset <= end)
    except Exception as exc:  # noqa: BLE001 - e.g. OffsetOutOfRange: the records are gone
        raise ReplayError(f"{topic}-{partition} {start}..{end}: {exc!r}") from exc
    finally:
        consumer.close(autocommit=False)
    if not records or records[-1].offset < end:
        raise ReplayError(f"{topic}-{partition} {start}..{end}: only {len(records)} record(s) could be read back")
    return records


def replay_failures(
    worker: "MappingWorker",
    *,
    fetch: Callable[..., list[Any]] = fetch_batch,
    invoke: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    limit: int = 1000,
) -> dict[str, int]:
    """Deliver every batch parked in the mapping's on-failure queue again, the way the bridge delivers.

    Each on-failure record names one partition's slice of a batch (KafkaBatchInfo: topic, partition,
    startOffset, endOffset); its records are read back from the topic, sent to the function as the same
    `aws:kafka` event through the same Invoke call, and the message is deleted only once that succeeded.
    Slices are replayed in offset order per partition; after a failure the later slices of that partition
    stay parked (order per partition is kept) and the failed message is made visible again. The handler
    deduplicates by event id, so a slice applied partly before is applied exactly once in effect.
    Returns {"replayed", "failed", "records"}."""
    invoke = invoke or worker._invoke
    if not worker.mapping.on_failure_queue:
        raise ReplayError(f"the mapping of {worker.mapping.function_name} has no on-failure queue")
    sqs = worker.sqs
    url = sqs.get_queue_url(QueueName=worker.mapping.on_failure_queue)["QueueUrl"]
    messages: list[dict[str, Any]] = []
    while len(messages) < limit:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  VisibilityTimeout=900).get("Messages", [])
        if not got:
            break
        messages.extend(got)

    def info(message: dict[str, Any]) -> dict[str, Any]:
        return json.loads(message["Body"])["KafkaBatchInfo"]

    messages.sort(key=lambda m: (info(m)["topic"], info(m)["partition"], info(m)["startOffset"]))
    counts = {"replayed": 0, "failed": 0, "records": 0}
    blocked: set[tuple[str, int]] = set()
    for message in messages:
        batch = info(message)
        where = (batch["topic"], batch["partition"])
        error: Any = "an earlier slice of this partition failed" if where in blocked else None
        if error is None:
            try:
                records = fetch(worker.bootstrap, batch["topic"], batch["partition"], batch["startOffset"], batch["endOffset"])
                error = invoke(build_msk_event(records, worker.event_source_arn, worker.bootstrap))
            except (ReplayError, InvokeError) as exc:
                error = str(exc)
        if error is None:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            counts["replayed"] += 1
            counts["records"] += len(records)
            log("INFO", "parked batch replayed", function=worker.mapping.function_name, batch=batch)
        else:
            blocked.add(where)
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
            counts["failed"] += 1
            log("ERROR", "parked batch replay failed: left in the queue", function=worker.mapping.function_name,
                batch=batch, error=error)
    return counts


def _defaults_from_env() -> None:
    os.environ.setdefault("AWS_ENDPOINT_URL", f"http://127.0.0.1:{os.environ.get('CG_LOCALSTACK_PORT', '4566')}")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")


def main(argv: Sequence[str] | None = None, install_signals: Callable[[threading.Event], None] | None = None) -> int:
    """Run every mapping of the config until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="mappings JSON, generated by ./dev up from the template")
    parser.add_argument("--replay", metavar="FUNCTION",
                        help="do not run: deliver the batches parked in FUNCTION's on-failure queue again, then exit")
    parser.add_argument("--status-file", help="write progress (last delivery, lag per partition) here every few seconds")
    parser.add_argument("--aws", action="store_true",
                        help="talk to AWS itself (no LocalStack endpoint default); for --replay on AWS")
    args = parser.parse_args(argv)
    if not args.aws:
        _defaults_from_env()
    bootstrap = os.environ.get("CG_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    mappings = load_mappings(args.config)
    stop = threading.Event()
    if args.replay:
        chosen = [m for m in mappings if args.replay in (m.function_name, m.topic)]
        if len(chosen) != 1:
            log("ERROR", "no single mapping for --replay", replay=args.replay, functions=[m.function_name for m in mappings])
            return 2
        counts = replay_failures(MappingWorker(chosen[0], bootstrap, region, stop))
        log("INFO", "replay finished", function=chosen[0].function_name, **counts)
        return 1 if counts["failed"] else 0

    def _on_signal(signum, _frame):
        log("INFO", "stopping", signal=signal.Signals(signum).name)
        stop.set()

    (install_signals or (lambda _stop: [signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)]))(stop)
    log("INFO", "bridge starting", mappings=len(mappings), bootstrap=bootstrap, endpoint=os.environ["AWS_ENDPOINT_URL"])
    workers = [MappingWorker(m, bootstrap, region, stop, poller) for m in mappings for poller in range(m.maximum_pollers)]
    for worker in workers:
        worker.start()
    lag_monitor = LagMonitor(mappings, bootstrap, stop)
    lag_monitor.start()
    pushgateway = os.environ.get("CG_PUSHGATEWAY_URL")
    push_auth = ((os.environ["CG_PUSHGATEWAY_USER"], os.environ["CG_PUSHGATEWAY_PASSWORD"])
                 if os.environ.get("CG_PUSHGATEWAY_PASSWORD") else None)
    started_at = time.time()
    while not stop.is_set():
        document = status_document(workers, lag_monitor.latest, started_at)
        if args.status_file:
            write_status(args.status_file, document)
        if pushgateway:
            try:
                push_lag(pushgateway, document, push_auth)
            except Exception as exc:  # noqa: BLE001 - the Pushgateway may be down: pushed again next time
                log("WARNING", "lag push failed", error=repr(exc))
        stop.wait(REPORT_SECONDS)
    for worker in workers:
        worker.join(timeout=15)
    log("INFO", "bridge stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
