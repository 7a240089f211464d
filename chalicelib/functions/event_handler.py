"""event_handler: the function fed by the `cluster-events` topic (MSK event source on AWS, the bridge
locally). At this stage it records each event it got, so delivery can be verified end to end."""
from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEvent

from chalicelib.observability import logger
from chalicelib.redis_client import get_redis

RECEIVED_KEY = "event_handler:received"
RECEIVED_CAP = 1000


def handle_kafka_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kafka_event = KafkaEvent(event)
    received = []
    for record in kafka_event.records:
        try:
            value = record.json_value
        except ValueError:
            value = None
        received.append(
            json.dumps(
                {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "key": record.decoded_key.decode("utf-8", "replace") if record.key else None,
                    "type": value.get("type") if isinstance(value, dict) else None,
                }
            )
        )
    if received:
        pipe = get_redis().pipeline()
        pipe.lpush(RECEIVED_KEY, *received)
        pipe.ltrim(RECEIVED_KEY, 0, RECEIVED_CAP - 1)
        pipe.execute()
    logger.info("events received", extra={"count": len(received)})
    return {"processed": len(received)}
