"""Lazily created boto3 clients, one per service per warm container.

boto3 reads AWS_ENDPOINT_URL itself, so the same code talks to LocalStack locally and to AWS there.
"""
from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10)


@functools.lru_cache(maxsize=None)
def client(service: str) -> Any:
    """The shared boto3 client for `service`."""
    return boto3.session.Session().client(service, config=_CONFIG)
