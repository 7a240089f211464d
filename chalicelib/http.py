"""The HTTP edge: error mapping, body parsing and "the caller", each in one place.

Routes stay thin: they parse input with `parse_body`/`parse_query`, call a service and return a dict.
"""
from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar

import pydantic
from chalice import Chalice, Response
from chalice.app import Request

from chalicelib.errors import ClusterGenieError, PayloadTooLargeError, ValidationError
from chalicelib.observability import logger
from chalicelib.settings import get_settings

Model = TypeVar("Model", bound=pydantic.BaseModel)

JSON_HEADERS = {"Content-Type": "application/json"}


def request_id(request: Request | None) -> str:
    """API Gateway's request id when there is one, else a fresh uuid."""
    context = getattr(request, "context", None) or {}
    return context.get("requestId") or str(uuid.uuid4())


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    return Response(body={"error": message, **extra}, status_code=status, headers={**JSON_HEADERS, **(headers or {})})


def register_error_handling(app: Chalice) -> None:
    """Map every error to `{"error": ...}`: domain errors to their status, anything else to a 500
    carrying a request id, with the trace only in the structured log."""

    @app.middleware("http")
    def map_errors(event: Request, get_response):  # noqa: ANN001 - Chalice's middleware signature
        try:
            response = get_response(event)
        except ClusterGenieError as exc:
            return error_response(exc.status_code, exc.message, exc.headers)
        except Exception:
            rid = request_id(event)
            logger.exception("unhandled error", extra={"request_id": rid, "path": getattr(event, "path", None)})
            return error_response(500, "internal server error", request_id=rid)
        body = response.body
        if isinstance(body, dict) and set(body) == {"Code", "Message"}:
            # Chalice's own errors (bad JSON, unhandled exceptions) in the v1 envelope.
            if response.status_code >= 500:
                return error_response(500, "internal server error", request_id=request_id(event))
            return error_response(response.status_code, body["Message"], response.headers)
        return response


def caller_id(request: Request) -> str:
    """The caller, as the v1 contract identifies it today: the `X-User-ID` header, else "anonymous".

    This is the single place that knows how a caller is identified, so real authentication can replace
    it without touching the routes.
    """
    value = (request.headers or {}).get("x-user-id", "").strip()
    return value[:128] if value else "anonymous"


def parse_body(request: Request, model: type[Model]) -> Model:
    """Validate a JSON body into `model`; any problem is a 400 naming the field (a body over the size limit: 413)."""
    raw = request.raw_body or b""
    if len(raw) > get_settings().max_body_bytes:
        raise PayloadTooLargeError(f"request body exceeds {get_settings().max_body_bytes} bytes")
    try:
        data = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValidationError("request body must be a JSON object")
    return validate(model, data)


def parse_query(request: Request, model: type[Model]) -> Model:
    """Validate query-string parameters into `model` (400 naming the parameter on failure)."""
    return validate(model, dict(request.query_params or {}))


def validate(model: type[Model], data: dict[str, Any]) -> Model:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(describe_validation_error(exc)) from None


def describe_validation_error(exc: pydantic.ValidationError) -> str:
    """A short human message naming each offending field, e.g. "name: must not be empty"."""
    parts = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err.get("loc", ())) or "body"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{field}: {msg}")
    return "; ".join(parts)
