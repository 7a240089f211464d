"""CORS on every response, preflights on every path, and 404/405 in the v1 envelope (issue 12).

In process, through chalice.test.Client (Chalice's API Gateway emulation, as `chalice local` serves it);
the LocalStack tier checks the same through API Gateway, and tests/browser through a real Chromium.
"""
from __future__ import annotations

import json
import re

import pytest
from chalice.test import Client

from app import app as chalice_app
from chalicelib.api.edge_routes import EDGE_VIEWS, catch_all_paths
from chalicelib.cors import EXPOSED_HEADERS
from chalicelib.settings import get_settings, load_settings
from conftest import new_api_key, signed_client

ALLOWED = "http://localhost:5173"
DENIED = "http://evil.example"
CORS_KEYS = {"access-control-allow-origin", "access-control-expose-headers", "access-control-allow-methods",
             "access-control-allow-headers", "access-control-max-age"}


def lower(headers) -> dict[str, str]:  # noqa: ANN001
    return {k.lower(): v for k, v in headers.items()}


def call(client, method: str, path: str, origin: str | None = ALLOWED, body=None, headers=None):  # noqa: ANN001
    hdrs = {"Content-Type": "application/json", **({"Origin": origin} if origin else {}), **(headers or {})}
    raw = json.dumps(body).encode() if body is not None else b""
    return client.http.request(method, path, headers=hdrs, body=raw)


def assert_cors(response, origin: str = ALLOWED) -> None:  # noqa: ANN001
    h = lower(response.headers)
    assert h["access-control-allow-origin"] == origin, response.headers
    assert "origin" in h["vary"].lower()
    exposed = {x.strip().lower() for x in h["access-control-expose-headers"].split(",")}
    assert {"retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-request-id"} <= exposed
    assert "access-control-allow-credentials" not in h
    assert h["x-request-id"]


def assert_no_cors(response) -> None:  # noqa: ANN001
    assert not CORS_KEYS & set(lower(response.headers)), response.headers


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x-missing", path)


@pytest.fixture
def http(app):  # noqa: ANN001 - clean database, in-memory queue, full buckets
    with Client(app) as client:
        yield signed_client(client)  # a platform admin's key on every request (issue 13)


def app_routes() -> list[tuple[str, str]]:
    return sorted((path, method) for path, methods in chalice_app.routes.items()
                  for method, entry in methods.items() if entry.view_name not in EDGE_VIEWS)


def test_default_origins_are_the_console_and_local_dev_servers(monkeypatch):
    monkeypatch.delenv("CG_CORS_ALLOWED_ORIGINS", raising=False)
    monkeypatch.setenv("CG_CONSOLE_ORIGIN", "http://console.s3-website.localhost.localstack.cloud:4566/")
    origins = load_settings().cors_allowed_origins
    assert {"http://localhost:5173", "http://127.0.0.1:5173",
            "http://console.s3-website.localhost.localstack.cloud:4566"} <= origins
    assert "*" not in origins
    monkeypatch.setenv("CG_CORS_ALLOWED_ORIGINS", " https://a.example , https://b.example/")
    assert load_settings().cors_allowed_origins == {"https://a.example", "https://b.example"}


def test_every_path_answers_its_preflight_for_an_allowed_origin_only(http):
    paths = sorted({path for path, _ in app_routes()})
    assert len(paths) > 20
    for path in paths:
        served = sorted(m for m in chalice_app.routes[path] if chalice_app.routes[path][m].view_name not in EDGE_VIEWS)
        ok = call(http, "OPTIONS", concrete(path), headers={"Access-Control-Request-Method": served[0]})
        assert ok.status_code == 204, (path, ok.status_code)
        assert_cors(ok)
        h = lower(ok.headers)
        assert set(served) <= {m.strip() for m in h["access-control-allow-methods"].split(",")}
        assert "content-type" in h["access-control-allow-headers"].lower()
        assert int(h["access-control-max-age"]) > 0
        refused = call(http, "OPTIONS", concrete(path), origin=DENIED, headers={"Access-Control-Request-Method": "GET"})
        assert_no_cors(refused)


def test_success_and_every_kind_of_error_carry_cors_headers(http, make_cluster):
    cluster = make_cluster()
    cases = [
        ("GET", "/api/v1/clusters", None, 200),
        ("POST", "/api/v1/clusters", {"name": "c", "region": "nyc3"}, 201),
        ("PUT", f"/api/v1/clusters/{cluster['id']}", {"name": "renamed"}, 200),
        ("GET", "/api/v1/clusters/nope", None, 404),
        ("POST", "/api/v1/clusters", {"name": 7}, 400),
        ("DELETE", "/api/v1/clusters", None, 405),
        ("PATCH", f"/api/v1/clusters/{cluster['id']}", None, 405),
        ("GET", "/api/v1/no/such/route", None, 404),
        ("GET", "/", None, 404),
        ("DELETE", f"/api/v1/clusters/{cluster['id']}", None, 200),
    ]
    for method, path, body, status in cases:
        response = call(http, method, path, body=body)
        assert response.status_code == status, (method, path, response.body)
        assert_cors(response)
        if status >= 400:
            assert set(json.loads(response.body)) >= {"error"}
        denied = call(http, "GET", path, origin=DENIED)
        assert_no_cors(denied)
        assert lower(denied.headers)["x-request-id"]


def test_oversized_body_is_a_413_with_cors(http):
    raw = b'{"name": "' + b"x" * (get_settings().max_body_bytes + 10) + b'", "region": "nyc3"}'
    response = http.http.request("POST", "/api/v1/clusters", body=raw,
                                 headers={"Content-Type": "application/json", "Origin": ALLOWED})
    assert response.status_code == 413 and "exceeds" in json.loads(response.body)["error"]
    assert_cors(response)


def test_429_from_the_rate_limiter_carries_cors_and_exposes_retry_after(http, make_cluster):
    cluster = make_cluster()
    body = {"cluster_id": cluster["id"]}
    responses = [call(http, "POST", "/api/v1/diagnosis/diagnose", body=body) for _ in range(6)]
    assert responses[-1].status_code == 429
    assert_cors(responses[-1])
    assert int(lower(responses[-1].headers)["retry-after"]) >= 1
    assert json.loads(responses[-1].body) == {"error": "rate limit exceeded"}


def test_503_from_a_fail_closed_limiter_carries_cors(http, monkeypatch):
    # A Redis that is not running makes the fail-closed limiter answer 503 (the real manager, no fake).
    from chalicelib.ratelimit import manager as manager_module
    from private_redis import free_port
    import redis

    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)
    limiter = manager_module.LimiterManager(dead, fail_closed={"jobs_create"})
    monkeypatch.setattr(manager_module, "get_limiter_manager", lambda: limiter)
    response = call(http, "POST", "/api/v1/jobs", body={"type": "monitor"}, headers={"X-User-ID": "u-503"})
    assert response.status_code == 503
    assert_cors(response)


def test_405_names_the_allowed_methods_and_404_answers_every_depth(http):
    response = call(http, "PUT", "/api/v1/jobs")
    assert response.status_code == 405
    assert set(lower(response.headers)["allow"].replace(" ", "").split(",")) >= {"GET", "POST", "OPTIONS"}
    assert "PUT" in json.loads(response.body)["error"]
    for depth in range(1, len(catch_all_paths())):
        path = "/" + "/".join(["zz"] * depth)
        response = call(http, "POST", path, body={})
        assert response.status_code == 404, path
        assert json.loads(response.body) == {"error": f"no route POST {path}"}


def test_exposed_headers_are_the_ones_the_api_sends():
    assert {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-Request-Id"} <= set(EXPOSED_HEADERS)


def test_401_and_403_carry_cors_headers(http):
    anonymous = call(http, "GET", "/api/v1/clusters", headers={"X-API-Key": ""})
    assert anonymous.status_code == 401 and lower(anonymous.headers)["www-authenticate"].startswith("Bearer")
    assert_cors(anonymous)
    assert "www-authenticate" in {x.strip().lower() for x in lower(anonymous.headers)["access-control-expose-headers"].split(",")}
    viewer = call(http, "POST", "/api/v1/clusters", body={"name": "x", "region": "nyc3"},
                  headers={"X-API-Key": new_api_key("viewer")})
    assert viewer.status_code == 403
    assert_cors(viewer)
    preflight = call(http, "OPTIONS", "/api/v1/clusters", headers={"Access-Control-Request-Method": "POST",
                                                                   "Access-Control-Request-Headers": "x-api-key"})
    assert preflight.status_code == 204  # a preflight needs no credential
    allowed = {x.strip().lower() for x in lower(preflight.headers)["access-control-allow-headers"].split(",")}
    assert {"authorization", "x-api-key"} <= allowed
