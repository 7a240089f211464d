"""Lazily created AWS clients, one per service per warm container.

botocore reads AWS_ENDPOINT_URL itself, so the same code talks to LocalStack locally and to AWS there. The
clients are botocore's own (boto3's `client()` returns the same objects): boto3 adds resources and S3
transfers, which no function uses, and importing it (s3transfer with it) costs a cold start about 40 ms (issue 16).
"""
from __future__ import annotations

import functools
from typing import Any

import botocore.session
from botocore.config import Config

_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10)


@functools.lru_cache(maxsize=None)
def client(service: str) -> Any:
    """The shared client for `service`."""
    return botocore.session.get_session().create_client(service, config=_CONFIG)
