"""log_consumer: Kafka `logs.clustergenie` (MSK event source on AWS, the bridge locally) -> the log store
(MySQL `log_lines`, always) and Loki's push API (when LOKI_URL is set).

A batch is stored in one multi-row INSERT IGNORE keyed by topic:partition:offset, so a redelivered batch
(the bridge retries until the function succeeds) stores nothing twice. Loki is best-effort: a failed
push is logged and counted (`clustergenie_log_lines_dropped_total{reason="loki"}`); the batch is not
failed for it, since the store already has the lines. This process never ships its own logs to Kafka
(it would consume them again).
"""
from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections import defaultdict
from typing import Any

from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEvent

from chalicelib import metrics
from chalicelib.logs import shipping
from chalicelib.observability import logger
from chalicelib.repositories.log_lines import LogStore, row_of
from chalicelib.settings import get_settings

shipping.detach(logger)
LOKI_LABELS = ("service", "environment", "level", "function")
store = LogStore()


def decode(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, line) of every line of every record of an `aws:kafka` event, in partition order.

    A record holds one or more JSON lines joined by newlines (the shipper sends a batch per record);
    a line's source is `topic:partition:offset:timestamp:index`: with the record's timestamp, because an
    offset alone repeats when a topic is recreated and new lines would be ignored as already stored."""
    out = []
    for record in KafkaEvent({"records": event.get("records") or {}}).records:
        value = record.decoded_value.decode("utf-8", "replace") if record.get("value") else ""
        where = f"{record.topic}:{record.partition}:{record.offset}:{record.get('timestamp')}"
        out.extend((f"{where}:{i}", line) for i, line in enumerate(value.split("\n")) if line.strip())
    return out


def push_to_loki(url: str, rows: list[tuple[Any, ...]]) -> None:
    """POST /loki/api/v1/push, one stream per (service, environment, level, function); job_id, trace_id
    and cluster_id stay in the JSON line (`| json | job_id="..."`), not in labels: unbounded values
    would make a stream per job."""
    streams: dict[tuple[str, ...], list[list[str]]] = defaultdict(list)
    for row in rows:
        ts, level, service, environment, function = row[1], row[2], row[3], row[4], row[5]
        labels = (service or "clustergenie", environment or "unknown", level, function or "unknown")
        nanos = int(ts.replace(tzinfo=dt.timezone.utc).timestamp() * 1e9)
        streams[labels].append([str(nanos), row[-1]])
    body = {"streams": [{"stream": dict(zip(LOKI_LABELS, labels)), "values": values} for labels, values in streams.items()]}
    request = urllib.request.Request(url.rstrip("/") + "/loki/api/v1/push", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 - the configured Loki


def handle_kafka_batch(event: dict[str, Any], context: Any) -> dict[str, int]:
    rows = [row_of(source, line) for source, line in decode(event)]
    stored = store.insert(rows)
    loki_url = get_settings().loki_url
    if loki_url and rows:
        try:
            push_to_loki(loki_url, rows)
        except Exception as exc:  # noqa: BLE001
            logger.warning("loki push failed", extra={"error": repr(exc), "lines": len(rows)})
            metrics.inc(metrics.LOG_LINES_DROPPED, ("loki",), len(rows))
    logger.debug("log lines stored", extra={"received": len(rows), "stored": stored})
    return {"received": len(rows), "stored": stored}
