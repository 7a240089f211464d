"""Lazily created AWS clients, one per service per warm container.

botocore reads AWS_ENDPOINT_URL itself, so the same code talks to LocalStack locally and to AWS there. The
clients are botocore's own (boto3's `client()` returns the same objects): boto3 adds resources and S3
transfers, which no function uses, and importing it (s3transfer with it) costs a cold start about 40 ms (issue 16).

Every client asks for a persistent connection (`Connection: keep-alive`). AWS keeps HTTP/1.1 connections open
anyway; LocalStack closes each one after its response unless the request asks for keep-alive (a workaround of
its own for an old h11 slowdown), so without the header every call paid a new TCP connection and LocalStack's
per-connection setup: 3.0 ms of LocalStack's CPU per SendMessage, 2.3 ms with it (issue 16, seventh round).
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
    return keep_connections_alive(botocore.session.get_session().create_client(service, config=_CONFIG))


def keep_connections_alive(aws_client: Any) -> Any:
    """`aws_client`, asking for a persistent connection on every request (returned for chaining)."""
    aws_client.meta.events.register("before-send", _ask_for_keep_alive)
    return aws_client


def _ask_for_keep_alive(request: Any, **_: Any) -> None:
    # After signing (an unsigned header); returning None lets botocore send the request itself.
    request.headers["Connection"] = "keep-alive"
