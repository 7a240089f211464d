"""Routes that exist so that API Gateway never answers for us (issue 12).

Without them API Gateway answers an unknown path, an unknown method on a known path and every `OPTIONS`
preflight with its own `403 {"message": "Missing Authentication Token"}`, with no CORS headers, so a
browser can neither preflight nor read the error. Registered after every other route (`register_edge_routes`
at the end of app.py), they derive from the route table:

- `OPTIONS` on every path: the CORS preflight (`chalicelib.cors`).
- every other method a path does not serve: `405 {"error": ...}` with `Allow`.
- `/` and `/{p1}`, `/{p1}/{p2}`, ... up to `CATCH_ALL_DEPTH` segments, any method: `404 {"error": ...}`.
  API Gateway (and LocalStack) prefer a static path segment to a variable one, so these only catch paths no
  other route serves. Fixed-depth routes rather than one greedy `/{proxy+}` because `chalice local` and
  `chalice.test.Client` cannot match a greedy path; deeper paths are caught on API Gateway by the
  MISSING_AUTHENTICATION_TOKEN Gateway Response in infra/ (a 404 in the same envelope).

Being real routes, they pass through the same middleware as the others: the v1 envelope, CORS headers,
the request id and the HTTP metrics.
"""
from __future__ import annotations

from chalice import Chalice, Response

from chalicelib.cors import preflight_response
from chalicelib.http import error_response

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD")
CATCH_ALL_DEPTH = 8
# View names of the routes added here: the OpenAPI document and its tests leave them out.
EDGE_VIEWS = frozenset({"cors_preflight", "method_not_allowed", "route_not_found"})


def catch_all_paths(depth: int = CATCH_ALL_DEPTH) -> list[str]:
    return ["/"] + ["/" + "/".join(f"{{p{i}}}" for i in range(1, n + 1)) for n in range(1, depth + 1)]


def register_edge_routes(app: Chalice) -> None:
    """Call once, after every blueprint is registered."""
    served = {path: sorted(m for m in entries if m != "OPTIONS") for path, entries in app.routes.items()}

    def cors_preflight(**_params: str) -> Response:
        return preflight_response(app.current_request, served.get(app.current_request.path, []))

    def method_not_allowed(**_params: str) -> Response:
        request = app.current_request
        methods = served.get(request.path, [])
        return error_response(405, f"method {request.method} is not allowed on {request.path}",
                              {"Allow": ", ".join([*methods, "OPTIONS"])})

    def route_not_found(**params: str) -> Response:
        request = app.current_request
        path = "/" + "/".join(params[f"p{i}"] for i in range(1, len(params) + 1))
        return error_response(404, f"no route {request.method} {path}")

    for path, methods in served.items():
        if path in app.routes and "OPTIONS" not in app.routes[path]:
            app.route(path, methods=["OPTIONS"], name="cors_preflight")(cors_preflight)
        missing = [m for m in METHODS if m not in methods]
        if missing:
            app.route(path, methods=missing, name="method_not_allowed")(method_not_allowed)
    for path in catch_all_paths():
        if path not in app.routes:
            app.route(path, methods=[*METHODS, "OPTIONS"], name="route_not_found")(route_not_found)
