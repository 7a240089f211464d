"""CORS and the 404/405 catch-alls through API Gateway on LocalStack (issue 12).

What a browser sees is checked in tests/browser; here every path's preflight, and the headers of
successes and of errors built by the middleware, as API Gateway hands them over.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid

import pytest

pytestmark = pytest.mark.localstack

ALLOWED = "http://localhost:5173"
STRANGER = "http://localhost:5999"


def call(method: str, url: str, origin: str | None = ALLOWED, body=None, headers=None):  # noqa: ANN001
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {**({"Origin": origin} if origin else {}), **({"Content-Type": "application/json"} if data else {}),
            **(headers or {})}
    request = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, headers_, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, headers_, raw = exc.code, exc.headers, exc.read()
    return status, {k.lower(): v for k, v in headers_.items()}, raw


def api_paths() -> dict[str, list[str]]:
    from app import app
    from chalicelib.api.edge_routes import EDGE_VIEWS

    paths: dict[str, list[str]] = {}
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            if entry.view_name not in EDGE_VIEWS:
                paths.setdefault(path, []).append(method)
    return paths


def test_every_path_answers_its_preflight_through_api_gateway(stack):
    base = stack["api_url"].rstrip("/")
    for path, methods in sorted(api_paths().items()):
        url = base + re.sub(r"\{[^}]+\}", "x-missing", path)
        status, headers, _ = call("OPTIONS", url, headers={"Access-Control-Request-Method": methods[0],
                                                            "Access-Control-Request-Headers": "content-type"})
        assert status == 204, (path, status)
        assert headers["access-control-allow-origin"] == ALLOWED
        assert set(methods) <= {m.strip() for m in headers["access-control-allow-methods"].split(",")}
        assert "content-type" in headers["access-control-allow-headers"].lower()
        status, headers, _ = call("OPTIONS", url, origin=STRANGER, headers={"Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in headers, path


def test_unknown_paths_and_methods_are_v1_404_and_405_with_cors(stack):
    base = stack["api_url"].rstrip("/")
    for method, path, expected in [("GET", "/api/v1/nope", 404), ("POST", "/api/v1/clusters/x/y/z", 404),
                                   ("GET", "/health", 404), ("GET", "/", 404), ("DELETE", "/api/v1/jobs", 405),
                                   ("PATCH", "/api/v1/clusters/x", 405), ("PUT", "/metrics", 405)]:
        status, headers, raw = call(method, base + path)
        assert status == expected, (method, path, status, raw)
        assert "error" in json.loads(raw)
        assert headers["access-control-allow-origin"] == ALLOWED
        assert "retry-after" in headers["access-control-expose-headers"].lower()
        if expected == 405:
            assert "OPTIONS" in headers["allow"]
    # Deeper than the catch-alls: API Gateway's own answer, made a 404 by the Gateway Response in infra/.
    status, _, _ = call("GET", base + "/a" * 12)
    assert status == 404


def test_errors_from_the_middleware_carry_cors_and_strangers_get_none(stack):
    base = stack["api_url"].rstrip("/")
    target = {"cluster_id": f"cluster-cors-{uuid.uuid4().hex}"}
    answers = [call("POST", base + "/api/v1/diagnosis/diagnose", body=target) for _ in range(6)]
    status, headers, raw = answers[-1]
    assert status == 429 and json.loads(raw) == {"error": "rate limit exceeded"}
    assert headers["access-control-allow-origin"] == ALLOWED and int(headers["retry-after"]) >= 1
    status, headers, raw = call("POST", base + "/api/v1/clusters", body={"name": "x" * 70_000, "region": "nyc3"})
    assert status == 413 and headers["access-control-allow-origin"] == ALLOWED
    status, headers, _ = call("GET", base + "/api/v1/clusters", origin=STRANGER)
    assert status == 200 and not any(k.startswith("access-control-") for k in headers)
    assert headers["x-request-id"]
