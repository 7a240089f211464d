"""Observability singletons: the structured logger shared by every function.

Powertools' Logger uses the stdlib logger named after the service, which is also the logger Chalice
calls `app.log`, so Chalice's own error reports come out as the same JSON lines. With
`CG_LOGS_TO_KAFKA` on (the local and dev stages), every line is also produced to `logs.clustergenie`
by a non-blocking handler (`chalicelib/logs/shipping.py`). Correlation keys (function, request_id,
job_id, trace_id, cluster_id) are bound per invocation by `chalicelib/logs/context.py`.
"""
from __future__ import annotations

import os

from aws_lambda_powertools import Logger

from chalicelib.logs.formatting import FormatOnce
from chalicelib.settings import get_settings

_settings = get_settings()

logger = Logger(
    service=_settings.service,
    level=os.environ.get("CG_LOG_LEVEL", "INFO"),
    environment=_settings.environment,
    # Shared with the Kafka shipper, so each line is formatted once. Keys given to the formatter itself
    # survive the per-invocation clear_state (keys given only to the Logger would not, with a custom one).
    logger_formatter=FormatOnce(service=_settings.service, environment=_settings.environment),
)

if _settings.logs_to_kafka:
    from chalicelib.logs import shipping

    shipping.attach(logger, _settings.kafka_bootstrap, _settings.logs_topic, _settings.kafka_compression_type)
