"""Log lines also produced to Kafka (`logs.clustergenie`), never at the request's expense.

`KafkaLogShipper` is a logging handler on the Powertools logger: `emit` takes the line stdout got
(the shared formatter, `formatting.FormatOnce`, formats each record once: same JSON, same keys) and
puts it on a bounded in-memory queue without waiting; a daemon thread drains the queue in batches into
a kafka-python producer, one Kafka record per batch (JSON lines joined by newlines, at most 256 KiB).
The thread lingers LINGER_SECONDS after the first line of a batch, so a burst of requests wakes it
(and the producer's own I/O thread) once rather than once per line: on a busy process those wake-ups
compete with the requests for the GIL and the cores. When the queue is
full (the broker is slow or down) the line is dropped and counted
(`clustergenie_log_lines_dropped_total{reason}`); the stdout line (CloudWatch on AWS) is still written.
The producer is created in the sender thread, so kafka-python is imported, and the broker contacted,
only off the request path; after a failure the thread backs off (1 s, doubling to 30 s).

The shipped copy leaves out the platform keys no reader of the log store is shown
(`redaction.INTERNAL_KEYS`: the function's ARN, memory size, request id and X-Ray trace id, about a third
of a line's bytes); the stdout line keeps them. The broker, the bridge, the log consumer and the log
store pay for every byte shipped (issue 16).

Trade-off: a Lambda container is frozen between invocations, so lines queued at the very end of an
invocation leave at the next thaw (or are lost with the container). Logs are best-effort telemetry;
the stdout copy is the complete one.
"""
from __future__ import annotations

import logging
import queue
import re
import threading
import time
from typing import Any

from chalicelib.logs.redaction import INTERNAL_KEYS

QUEUE_SIZE = 10_000
BATCH = 500
LINGER_SECONDS = 0.2
MAX_RECORD_BYTES = 256 * 1024
# `,"<platform key>":"<plain string>"` in the JSON line. Powertools writes `level` first, so each of these keys
# follows a comma; a value with an escape in it is left alone (and still hidden from viewers by redaction).
# A key quoted inside a string value is escaped (`\"function_arn\"`) and cannot match.
_PLATFORM_KEYS = re.compile(
    rb',"(?:' + b"|".join(re.escape(key.encode()) for key in sorted(INTERNAL_KEYS)) + rb')":"[^"\\]*"')


class KafkaLogShipper(logging.Handler):
    def __init__(self, bootstrap: str, topic: str, maxsize: int = QUEUE_SIZE, compression: str | None = None) -> None:
        super().__init__()
        self.bootstrap, self.topic, self.compression = bootstrap, topic, compression  # kafka-python's compression_type
        self.queue: queue.Queue[tuple[bytes | None, bytes]] = queue.Queue(maxsize)
        self.sent = 0
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._producer: Any = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._start()
        try:
            line = shipped(self.format(record))
            job_id = getattr(record, "job_id", None)
            self.queue.put_nowait((job_id.encode() if isinstance(job_id, str) else None, line))
        except queue.Full:
            _dropped("queue_full")
        except Exception:  # noqa: BLE001 - logging must never fail the caller
            _dropped("format")

    def _start(self) -> None:
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, name="kafka-log-shipper", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        backoff = 1.0
        while True:
            batch = [self.queue.get()]
            if self.queue.qsize() < BATCH - 1:
                time.sleep(LINGER_SECONDS)  # let the burst gather: one wake-up per batch, not per line
            while len(batch) < BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                producer = self._get_producer()
                for value in pack(batch):
                    producer.send(self.topic, value=value).add_errback(_on_send_error, value.count(b"\n") + 1)
                producer.flush(timeout=10)
                self.sent += len(batch)
                backoff = 1.0
            except Exception:  # noqa: BLE001 - broker unreachable: drop this batch, back off
                _dropped("broker_unreachable", len(batch))
                self._close_producer()
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def _get_producer(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks=1, linger_ms=20,
                                           compression_type=self.compression,
                                           max_block_ms=3000, request_timeout_ms=5000, retries=2,
                                           bootstrap_timeout_ms=3000,  # the constructor connects: 30 s by default
                                           client_id="clustergenie-log-shipper")
        return self._producer

    def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=1)
            except Exception:  # noqa: BLE001
                pass

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until the queue is empty (tests, benches); True when it emptied in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue.empty():
                time.sleep(0.2)  # the last batch is in flight
                return self.queue.empty()
            time.sleep(0.05)
        return False


def shipped(line: str) -> bytes:
    """The Kafka copy of a formatted line: the same JSON without the platform keys."""
    return _PLATFORM_KEYS.sub(b"", line.encode())


def pack(batch: list[tuple[bytes | None, bytes]]) -> list[bytes]:
    """Lines joined by newlines into Kafka records of at most MAX_RECORD_BYTES (a JSON line holds no raw
    newline): one record per batch, not per line, keeps the sender's Python work (and so its share of
    the GIL the request thread needs) small."""
    records, current, size = [], [], 0
    for _, line in batch:
        if current and size + len(line) + 1 > MAX_RECORD_BYTES:
            records.append(b"\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        records.append(b"\n".join(current))
    return records


def _on_send_error(exc: BaseException, lines: int = 1) -> None:
    _dropped("send_failed", lines)


def _dropped(reason: str, n: int = 1) -> None:
    from chalicelib import metrics

    metrics.inc(metrics.LOG_LINES_DROPPED, (reason,), n)


_shipper: KafkaLogShipper | None = None


def attach(powertools_logger: Any, bootstrap: str, topic: str, compression: str | None = None) -> KafkaLogShipper:
    """Add the shipper to the Powertools logger (once), sharing its JSON formatter."""
    global _shipper
    if _shipper is None:
        _shipper = KafkaLogShipper(bootstrap, topic, compression=compression)
        _shipper.setFormatter(powertools_logger.registered_formatter)
        powertools_logger.addHandler(_shipper)
    return _shipper


def detach(powertools_logger: Any) -> None:
    """Stop shipping from this process (the log consumer must not feed its own input)."""
    global _shipper
    if _shipper is not None:
        powertools_logger.removeHandler(_shipper)
        _shipper = None


def get_shipper() -> KafkaLogShipper | None:
    return _shipper
