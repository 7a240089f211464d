"""Observability singletons: the structured logger shared by every function.

Powertools' Logger uses the stdlib logger named after the service, which is also the logger Chalice
calls `app.log`, so Chalice's own error reports come out as the same JSON lines.
"""
from __future__ import annotations

import os

from aws_lambda_powertools import Logger

from chalicelib.settings import get_settings

_settings = get_settings()

logger = Logger(
    service=_settings.service,
    level=os.environ.get("CG_LOG_LEVEL", "INFO"),
    environment=_settings.environment,
)
