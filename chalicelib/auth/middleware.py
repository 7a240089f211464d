"""The HTTP middleware that authenticates every request and applies `chalicelib.api.access.ROUTE_ACCESS`.

Registered inside CORS and error handling (401/403/503 carry CORS headers and the v1 envelope) and
before rate limiting (which then scopes on the principal). For each request:

- authentication off (`CG_AUTH_ENABLED=false`, the local stage only): the caller is `LOCAL`, as in the original;
- a public route: no credential needed (ANONYMOUS);
- else `Authorization: Bearer <key or token>` or `X-API-Key: <key>` is verified (`authenticator`): none or a bad
  one is 401 with `WWW-Authenticate`, and counts against the `auth_failures` limiter of the source address
  (API Gateway's `requestContext.identity.sourceIp`), which answers 429 once exhausted; MariaDB down while
  verifying is 503; a role below the route's level is 403;
- then the route runs, and a mutation is recorded in the audit log (`audit`).
"""
from __future__ import annotations

from chalice import Chalice, Response
from chalice.app import Request

from chalicelib.api.access import PLATFORM, PUBLIC, required_access
from chalicelib.api.edge_routes import EDGE_VIEWS
from chalicelib.auth.principal import ANONYMOUS, LOCAL, Principal, acting_as, is_platform_admin
from chalicelib.errors import AuthenticationError, ClusterGenieError, PermissionDeniedError, RateLimitedError
from chalicelib.http import domain_error_response, request_id, source_ip
from chalicelib.tenancy import confined_to

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="clustergenie", charset="UTF-8"'}
FAILURE_LIMITER = "auth_failures"


def credential_of(request: Request) -> str | None:
    """The credential the request presents (Authorization: Bearer first, then X-API-Key); None when none.
    AuthenticationError when the Authorization header is not a Bearer credential."""
    headers = request.headers or {}
    authorization = headers.get("authorization", "").strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationError("invalid credentials")
        return value.strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


def allowed(principal: Principal, level: str) -> bool:
    if level == PUBLIC:
        return True
    if level == PLATFORM:
        return is_platform_admin(principal)
    return principal.has_role(level)


def _unauthenticated(request: Request, exc: AuthenticationError) -> Response:
    from chalicelib.ratelimit.config import Scope
    from chalicelib.ratelimit.manager import get_limiter_manager

    decision = get_limiter_manager().allow(FAILURE_LIMITER, Scope("source", source_ip(request)))
    if not decision.allowed and not decision.degraded:
        return domain_error_response(RateLimitedError("too many failed authentication attempts"),
                                     {**CHALLENGE, **decision.headers()})
    return domain_error_response(exc, CHALLENGE)


def _view_name(app: Chalice, request: Request) -> str | None:
    entry = app.routes.get(request.path, {}).get(request.method)
    return entry.view_name if entry is not None else None


def register_authentication(app: Chalice) -> None:
    @app.middleware("http")
    def authenticate(event: Request, get_response):  # noqa: ANN001 - Chalice's middleware signature
        # Imported where used (the verifier needs a JWT library, the audit log the database driver), so that
        # importing app.py stays cheap for every function; after the first request these are dict lookups.
        from chalicelib.auth import audit
        from chalicelib.auth.authenticator import get_authenticator
        from chalicelib.settings import get_settings

        if not get_settings().auth_enabled:
            with acting_as(LOCAL), confined_to(LOCAL.tenant):
                return get_response(event)
        level = PUBLIC if _view_name(app, event) in EDGE_VIEWS else required_access(event.method, event.path)
        if level == PUBLIC:
            with acting_as(ANONYMOUS):  # no tenant data on a public route, and no confinement needed
                return get_response(event)
        try:
            credential = credential_of(event)
            if credential is None:
                raise AuthenticationError("authentication required")
            principal = get_authenticator().authenticate(credential)
        except AuthenticationError as exc:
            return _unauthenticated(event, exc)
        with acting_as(principal), confined_to(principal.tenant):
            response: Response | None = None
            try:
                if not allowed(principal, level):
                    needed = "a platform admin" if level == PLATFORM else f"the {level} role"
                    response = domain_error_response(PermissionDeniedError(f"this operation needs {needed}"))
                else:
                    try:
                        response = get_response(event)
                    except ClusterGenieError as exc:
                        response = domain_error_response(exc)
                return response
            finally:
                audit.record(event, principal, response, request_id(event))
