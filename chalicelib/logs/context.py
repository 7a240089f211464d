"""Correlation keys on every log line of every function.

The Powertools logger (cleared at each invocation by `inject_lambda_context`) gets `function` (the
logical name: api, job_worker, ...) and `request_id` (API Gateway's request id for HTTP, the Lambda
request id otherwise) here; HTTP requests also get `trace_id` from an `X-Trace-Id` header and `job_id`
/ `cluster_id` from the route's path parameters. Job-level keys in the worker and the event handler
come from their messages (`logger.append_keys(job_id=..., trace_id=..., cluster_id=...)`).
"""
from __future__ import annotations

import functools
import os
import time

from chalice import Chalice, ConvertToMiddleware

CORRELATION_PARAMS = ("job_id", "cluster_id")


@functools.lru_cache(maxsize=8)
def logical_function_name(deployed: str) -> str:
    """The function's role (api, job_worker, ...): `CG_FUNCTION`, which the template sets on every deployed
    function (CloudFormation names them `<stack>-<LogicalId>-<suffix>`); in-process runs without it map
    Chalice's own names (`clustergenie-dev-job_worker` -> `job_worker`, `api_handler` -> `api`)."""
    role = os.environ.get("CG_FUNCTION")
    if role:
        return role
    from chalicelib.settings import get_settings

    prefix = f"{get_settings().service}-{get_settings().environment}"
    if deployed == prefix or deployed in ("api_handler", ""):
        return "api"
    return deployed[len(prefix) + 1:] if deployed.startswith(prefix + "-") else deployed


def _context(event):  # noqa: ANN001, ANN202
    return getattr(event, "lambda_context", None) or getattr(event, "context", None)


def register_log_context(app: Chalice) -> None:
    """Register first: Powertools' `inject_lambda_context` (which clears the keys at each invocation), then the
    correlation keys. The logger (and the settings it is built from) is imported on the first invocation, so
    importing app.py stays cheap for every function."""
    powertools: list = []

    @app.middleware("all")
    def lambda_context(event, get_response):  # noqa: ANN001 - Chalice's middleware signature
        if not powertools:
            from chalicelib.observability import logger

            powertools.append(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
        return powertools[0](event, get_response)

    @app.middleware("all")
    def bind_function(event, get_response):  # noqa: ANN001 - Chalice's middleware signature
        from chalicelib.observability import logger

        context = _context(event)
        deployed = getattr(context, "function_name", None) or os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        keys = {"function": logical_function_name(deployed)}
        request_id = getattr(context, "aws_request_id", None)
        if request_id and not hasattr(event, "lambda_context"):  # HTTP binds API Gateway's id below
            keys["request_id"] = request_id
        logger.append_keys(**keys)
        return get_response(event)

    @app.middleware("http")
    def bind_request(event, get_response):  # noqa: ANN001
        from chalicelib.observability import logger

        keys = {"request_id": (event.context or {}).get("requestId") or getattr(event.lambda_context, "aws_request_id", None)}
        trace = (event.headers or {}).get("x-trace-id")
        if trace:
            keys["trace_id"] = trace[:64]
        for name in CORRELATION_PARAMS:
            value = (event.uri_params or {}).get(name)
            if value:
                keys[name] = value[:64]
        logger.append_keys(**keys)
        started = time.perf_counter()
        response = get_response(event)
        logger.debug("request handled", extra={"method": event.method, "route": event.path,
                                               "status": response.status_code,
                                               "ms": round((time.perf_counter() - started) * 1000, 3)})
        return response
