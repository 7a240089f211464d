"""Lazily created boto3 clients, one per service per warm container.

boto3 reads AWS_ENDPOINT_URL itself, so the same code talks to LocalStack locally and to AWS there.

Every request asks for a persistent connection (`Connection: keep-alive`): HTTP/1.1's default, which AWS keeps,
but LocalStack's gateway (hypercorn) answers `Connection: close` to a request that does not ask explicitly,
so each call of a warm container opened a new TCP connection and cost LocalStack a connection set-up on top
of the call (issue 16: the API's SQS SendMessage per `POST /jobs`, docs/benchmarks.md).
"""
from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10)


def _keep_alive(request: Any, **_: Any) -> None:
    request.headers["Connection"] = "keep-alive"


@functools.lru_cache(maxsize=None)
def client(service: str) -> Any:
    """The shared boto3 client for `service` (its connections kept open between calls)."""
    made = boto3.session.Session().client(service, config=_CONFIG)
    made.meta.events.register("before-send", _keep_alive)
    return made
