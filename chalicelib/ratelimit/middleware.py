"""The HTTP middleware that applies the route table to every API request."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

from chalice import Chalice
from chalice.app import Request

from chalicelib.errors import ClusterGenieError, RateLimitedError, ServiceUnavailableError
from chalicelib.http import domain_error_response
from chalicelib.ratelimit.routes import LIMITED_ROUTES, LimitedRoute

if TYPE_CHECKING:
    from chalicelib.ratelimit.manager import LimiterManager


def _container_manager() -> "LimiterManager":
    # Imported on the first limited request: the Redis client library then loads only in the function
    # that serves HTTP, not in every function that imports app.py.
    from chalicelib.ratelimit.manager import get_limiter_manager

    return get_limiter_manager()


def register_rate_limiting(
    app: Chalice,
    routes: Iterable[LimitedRoute] = LIMITED_ROUTES,
    manager: Callable[[], "LimiterManager"] = _container_manager,
) -> None:
    """Limit the routes of `routes` by method and route template.

    Register it after `register_error_handling`; errors are answered with `http.domain_error_response`: a
    denial is `429 {"error": "rate limit exceeded"}` with Retry-After and X-RateLimit-*; a fail-closed
    limiter without Redis answers 503 with Retry-After. Admitted requests carry X-RateLimit-* too, on
    success and on error responses alike.
    """
    table = {(route.method, route.path): route for route in routes}

    @app.middleware("http")
    def rate_limit(event: Request, get_response):  # noqa: ANN001 - Chalice's middleware signature
        route = table.get((event.method, event.path))
        scope = route.scope_of(event) if route is not None else None
        if scope is None:
            return get_response(event)
        decision = manager().allow(route.limiter, scope)
        headers = decision.headers()
        if not decision.allowed:
            if decision.degraded:
                # Not the caller's fault: say the service is unavailable rather than that they exceeded.
                return domain_error_response(ServiceUnavailableError("rate limiter unavailable"), headers)
            return domain_error_response(RateLimitedError("rate limit exceeded"), headers)
        try:
            response = get_response(event)
        except ClusterGenieError as exc:
            response = domain_error_response(exc)
        response.headers = {**(response.headers or {}), **headers}
        return response
