"""CORS for browsers on other origins, on every response the API builds (issue 12).

Chalice's own `cors=` setting is not used: it names one origin, and its headers are added by the route
handler only, so the errors, 404/405s, 413s, 429s and 503s that the middleware builds would go without.
Here one middleware, registered outermost, adds the headers to whatever response comes back, and the
preflight `OPTIONS` of every path is a real route (`chalicelib.api.edge_routes`) answered by
`preflight_response` below - through the Lambda, not an API Gateway mock integration, because a mock
integration can only send one fixed origin and we allow a list.

Rules:
- An allowed origin (`CG_CORS_ALLOWED_ORIGINS`, see `chalicelib.settings`) is echoed back in
  `Access-Control-Allow-Origin` with `Vary: Origin`. No credentials (cookies) are ever allowed: the API's
  credentials are request headers (issue 13), so a `*` in the setting is sent as `*` and never with credentials.
- A request from an origin that is not allowed gets no CORS header at all: the browser refuses it.
- `Access-Control-Expose-Headers` lets a page read the rate-limit headers and the request id.
"""
from __future__ import annotations

from chalice import Chalice, Response
from chalice.app import Request

REQUEST_ID_HEADER = "X-Request-Id"
EXPOSED_HEADERS = (
    "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Policy",
    REQUEST_ID_HEADER, "WWW-Authenticate", "X-Total-Count", "Link", "Idempotent-Replayed",
)
# What a page may send: the original's three, plus the demo scripts' caller header and a request id.
# Issue 13: the credentials, `Authorization: Bearer ...` and `X-API-Key` (sent as headers, never cookies).
# Issue 18: `Idempotency-Key` on creates; a page reads X-Total-Count/Link (paging) and Idempotent-Replayed.
ALLOWED_HEADERS = ("Content-Type", "Origin", "Content-Length", "X-User-ID", REQUEST_ID_HEADER, "Authorization",
                   "X-API-Key", "Idempotency-Key")
PREFLIGHT_MAX_AGE = "7200"  # seconds; Chromium caps it at 2 hours


def _header(request: Request, name: str) -> str | None:
    return (getattr(request, "headers", None) or {}).get(name.lower())


def allowed_origin(origin: str | None) -> str | None:
    """The value of Access-Control-Allow-Origin for `origin`, or None when it gets no CORS headers."""
    if not origin:
        return None
    from chalicelib.settings import get_settings  # imported where used: app.py's importers need not load pydantic

    allowed = get_settings().cors_allowed_origins
    if origin in allowed:
        return origin
    if "*" in allowed:
        return "*"
    return None


def cors_headers(request: Request) -> dict[str, str]:
    """The headers an actual (non-preflight) response carries for this request's origin."""
    value = allowed_origin(_header(request, "Origin"))
    if value is None:
        return {}
    headers = {"Access-Control-Allow-Origin": value, "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS)}
    if value != "*":
        headers["Vary"] = "Origin"
    return headers


def preflight_response(request: Request, methods: list[str]) -> Response:
    """204 for `OPTIONS` on a path served by `methods`. The CORS headers themselves come from the middleware,
    which adds the Allow-Methods/Headers/Max-Age trio only for an allowed origin."""
    return Response(body="", status_code=204, headers={"Allow": ", ".join(sorted({*methods, "OPTIONS"}))})


def register_cors(app: Chalice) -> None:
    """Register first of the HTTP middleware (outermost), so every response, whichever layer built it, passes here."""

    @app.middleware("http")
    def cors(event: Request, get_response):  # noqa: ANN001 - Chalice's middleware signature
        from chalicelib.http import request_id

        response = get_response(event)
        headers = dict(response.headers or {})
        headers.setdefault(REQUEST_ID_HEADER, request_id(event))
        extra = cors_headers(event)
        if extra and event.method == "OPTIONS" and response.status_code == 204:
            extra["Access-Control-Allow-Methods"] = headers.get("Allow", "OPTIONS")
            extra["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)
            extra["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        if "Vary" in headers and "Vary" in extra:
            extra["Vary"] = f"{headers['Vary']}, Origin"
        headers.update(extra)
        response.headers = headers
        return response
