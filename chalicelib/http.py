"""The HTTP edge: error mapping, body parsing and "the caller", each in one place.

Routes stay thin: they parse input with `parse_body`/`parse_query`, call a service and return a dict.
"""
from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from chalice import Chalice, Response
from chalice.app import Request

from chalicelib.dependencies import as_unavailable
from chalicelib.errors import (
    AuthenticationError, ClusterGenieError, ConflictError, DependencyUnavailableError, IdempotencyKeyReusedError,
    NotFoundError, PayloadTooLargeError, PermissionDeniedError, RateLimitedError, ServiceUnavailableError,
    ValidationError,
)
from chalicelib.json_limits import decode_json

if TYPE_CHECKING:
    import pydantic

Model = TypeVar("Model", bound="pydantic.BaseModel")

JSON_HEADERS = {"Content-Type": "application/json"}

# The one table from domain errors to HTTP status codes (most specific class first wins via the MRO).
STATUS_FOR: dict[type[ClusterGenieError], int] = {
    ValidationError: 400, AuthenticationError: 401, PermissionDeniedError: 403, NotFoundError: 404, PayloadTooLargeError: 413,
    ConflictError: 409, IdempotencyKeyReusedError: 422, RateLimitedError: 429, DependencyUnavailableError: 503,
    ServiceUnavailableError: 503, ClusterGenieError: 500,
}

# Every 503 tells the caller when to try again (a dependency outage, a refused queue): seconds.
RETRY_AFTER_SECONDS = 5


def request_id(request: Request | None) -> str:
    """API Gateway's request id when there is one, else a fresh uuid."""
    context = getattr(request, "context", None) or {}
    return context.get("requestId") or str(uuid.uuid4())


# An error reply never echoes more than a short excerpt of what the caller sent (issue 18).
MAX_ERROR_MESSAGE_CHARS = 300


def short_message(message: str) -> str:
    """`message`, cut to MAX_ERROR_MESSAGE_CHARS with an ellipsis."""
    return message if len(message) <= MAX_ERROR_MESSAGE_CHARS else message[:MAX_ERROR_MESSAGE_CHARS - 1] + "…"


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    return Response(body={"error": short_message(message), **extra}, status_code=status,
                    headers={**JSON_HEADERS, **(headers or {})})


def domain_error_response(exc: ClusterGenieError, headers: dict[str, str] | None = None) -> Response:
    """The v1 envelope `{"error": message}` with the status STATUS_FOR gives the error's class."""
    status = next(STATUS_FOR[cls] for cls in type(exc).__mro__ if cls in STATUS_FOR)
    if isinstance(exc, DependencyUnavailableError):
        from chalicelib import metrics  # here, not at import: app.py's importers need not load the Redis client

        from chalicelib.observability import logger

        metrics.inc(metrics.DEPENDENCY_UNAVAILABLE, (exc.source,))
        logger.warning("dependency unavailable", extra={"source": exc.source, "error": exc.detail})
    if status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **(headers or {})}
    return error_response(status, exc.message, headers)


def _unavailable_response(exc: Exception) -> Response | None:
    """A 503 when `exc` says a dependency (Redis, the broker) is unreachable; None otherwise."""
    unavailable = as_unavailable(exc)
    return domain_error_response(unavailable) if unavailable is not None else None


def _answering_domain_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    # Chalice turns any exception a view raises into its own 500 before middleware sees it, so a view's
    # domain error is answered here, at the edge, from the same table.
    @functools.wraps(view)
    def answered(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except ClusterGenieError as exc:
            return domain_error_response(exc)
        except Exception as exc:
            response = _unavailable_response(exc)
            if response is None:
                raise
            return response

    answered.answers_domain_errors = True  # type: ignore[attr-defined]
    return answered


def _wrap_views(app: Chalice) -> None:
    for methods in app.routes.values():
        for entry in methods.values():
            if not getattr(entry.view_function, "answers_domain_errors", False):
                entry.view_function = _answering_domain_errors(entry.view_function)


def register_error_handling(app: Chalice) -> None:
    """Map every error to `{"error": ...}`: domain errors (from a view or a middleware) to their status,
    anything else to a 500 carrying a request id, with the trace only in the structured log.

    Every route's view is wrapped on the first request, once all blueprints are registered."""

    @app.middleware("http")
    def map_errors(event: Request, get_response):  # noqa: ANN001 - Chalice's middleware signature
        _wrap_views(app)
        try:
            response = get_response(event)
        except ClusterGenieError as exc:
            return domain_error_response(exc)
        except Exception as exc:
            unavailable = _unavailable_response(exc)
            if unavailable is not None:
                return unavailable
            from chalicelib.observability import logger

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


def source_ip(request: Request) -> str:
    """The client address as API Gateway reports it (`requestContext.identity.sourceIp`); never a header."""
    context = getattr(request, "context", None) or {}
    return str((context.get("identity") or {}).get("sourceIp") or "unknown")[:64]


def caller_id(request: Request) -> str:
    """The caller: the authenticated principal (issue 13). Only with authentication off (the local stage)
    does the v1 contract's `X-User-ID` header still name it, else the source address does.

    This is the single place that knows how a caller is identified.
    """
    from chalicelib.auth.principal import current_principal

    principal = current_principal()
    if principal.kind in ("key", "token"):
        return principal.id
    if principal.kind == "local":
        value = (request.headers or {}).get("x-user-id", "").strip()
        return value[:128] if value else "anonymous"
    return f"ip:{source_ip(request)}"


def json_body(request: Request) -> Any:
    """The request body as JSON (None when empty): 413 over the size limit, 400 when it is not JSON or
    nests deeper / has more keys than the settings allow."""
    from chalicelib.settings import get_settings

    settings = get_settings()
    raw = request.raw_body or b""
    if len(raw) > settings.max_body_bytes:
        raise PayloadTooLargeError(f"request body exceeds {settings.max_body_bytes} bytes")
    if not raw.strip():
        return None
    return decode_json(raw, max_depth=settings.max_json_depth, max_keys=settings.max_json_keys)


def parse_body(request: Request, model: type[Model]) -> Model:
    """Validate a JSON body into `model`; any problem is a 400 naming the field (a body over the size limit: 413)."""
    data = json_body(request)
    if not isinstance(data, dict):
        raise ValidationError("request body must be a JSON object")
    from chalicelib.models.validation import validate

    return validate(model, data)


def parse_query(request: Request, model: type[Model]) -> Model:
    """Validate query-string parameters into `model` (400 naming the parameter on failure)."""
    from chalicelib.models.validation import validate

    return validate(model, dict(request.query_params or {}))
