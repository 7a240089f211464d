"""The OpenAPI document: served, in step with the app's routes, and honoured by the app (schemathesis)."""
from __future__ import annotations

import base64
import copy
from http import HTTPStatus

import pytest
import schemathesis
from chalice.config import Config
from chalice.local import LocalGateway, LocalGatewayException
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks

from app import app as chalice_app
from chalicelib.api.edge_routes import EDGE_VIEWS
from chalicelib.api.openapi import openapi_document
from chalicelib.redis_client import get_redis
from conftest import new_api_key, truncate_tables

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def registered_routes() -> set[tuple[str, str]]:
    """The app's own routes; the edge routes (preflights, 405s, 404 catch-alls) are derived, not documented."""
    return {(method.upper(), path) for path, methods in chalice_app.routes.items()
            for method, entry in methods.items() if entry.view_name not in EDGE_VIEWS}


def documented_routes(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items()
            for method in item if method in HTTP_METHODS}


def test_every_route_is_documented_and_every_documented_route_exists(client):
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200 and served.json["openapi"].startswith("3.")
    assert documented_routes(served.json) == registered_routes()


def test_every_schema_reference_resolves():
    document = openapi_document()
    refs, stack = set(), [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    prefix = "#/components/schemas/"
    assert all(ref.startswith(prefix) for ref in refs)
    assert {ref[len(prefix):] for ref in refs} <= set(document["components"]["schemas"])


# --- schemathesis: generated requests against the real app and database ---------------------------------
def chalice_wsgi(chalice_app):
    """A WSGI face for Chalice's local API Gateway emulation, so schemathesis drives the app in-process.

    It calls `LocalGateway` (what chalice.test.Client wraps) directly, because the test client cannot
    decode the body-less 200 that the gateway emulates for OPTIONS preflights.
    """
    gateway = LocalGateway(chalice_app, Config())

    def wsgi_app(environ, start_response):
        # The raw URI keeps percent-escapes, as API Gateway would receive them.
        path = environ.get("REQUEST_URI") or environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
        if "?" not in path and environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        try:
            response = gateway.handle_request(method=environ["REQUEST_METHOD"], path=path, headers=headers, body=body)
        except LocalGatewayException as exc:  # the gateway's own 403 for unknown routes, and the like
            response = {"statusCode": exc.CODE, "headers": exc.headers, "body": exc.body}
        status, payload = response["statusCode"], response.get("body") or b""
        if response.get("isBase64Encoded"):
            payload = base64.b64decode(payload)
        elif isinstance(payload, str):
            payload = payload.encode()
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        response_headers = {k: str(v) for k, v in (response.get("headers") or {}).items()}
        if payload and not any(k.lower() == "content-type" for k in response_headers):
            response_headers["Content-Type"] = "application/json"  # what API Gateway adds to proxy responses
        start_response(f"{status} {phrase}", list(response_headers.items()))
        return [payload]

    return wsgi_app


# A copy: schemathesis annotates the document it is given (inferred links), and ours is cached.
schema = schemathesis.openapi.from_dict(copy.deepcopy(openapi_document()))

# The contract this issue promises: no 5xx, and every response matches the documented schema/status.
CHECKS = [st_checks.not_a_server_error, st_checks.status_code_conformance,
          st_checks.content_type_conformance, st_checks.response_schema_conformance]


@pytest.fixture
def wsgi_app(app):  # noqa: ANN001 - the `app` fixture gives a clean database and an in-memory queue
    return chalice_wsgi(app)


@pytest.fixture
def admin(app):  # noqa: ANN001
    """Headers of a platform admin (issue 13): every operation is open to it."""
    return {"X-API-Key": new_api_key("admin")}


@schema.parametrize()
@settings(max_examples=50, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_5xx_and_conforming_responses(case, wsgi_app, admin):
    response = case.call(app=wsgi_app, headers=admin)
    case.validate_response(response, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, database=None,  # < the 20 failures per source
          suppress_health_check=list(HealthCheck))
def test_without_a_credential_every_protected_operation_is_401(case, wsgi_app):
    from chalicelib.api.access import PUBLIC, ROUTE_ACCESS

    # Each generated request starts with a full `auth_failures` bucket: the limiter's 429 after 20 failures
    # from one address is tested in test_auth.py; here every refusal must be the 401 itself.
    from chalicelib.ratelimit.redis_bucket import bucket_key

    get_redis().delete(bucket_key("auth_failures", "source:unknown"), bucket_key("auth_failures", "source:127.0.0.1"))
    response = case.call(app=wsgi_app)
    # schemathesis also tries methods a path does not serve: the edge routes' public 405s, and methods no
    # route knows (TRACE), which are closed like any route missing from the access table.
    if case.method.upper() not in chalice_app.routes.get(case.path, {}):
        assert response.status_code < 500, (case.method, case.path, response.text)
        return
    level = ROUTE_ACCESS.get((case.method.upper(), case.path), PUBLIC)
    if level == PUBLIC:
        assert response.status_code not in (401, 403) and response.status_code < 500, (case.method, case.path, response.text)
    else:
        assert response.status_code == 401, (case.method, case.path, response.text)
        headers = {k.lower(): v if isinstance(v, str) else ", ".join(v) for k, v in response.headers.items()}
        assert headers["www-authenticate"].startswith("Bearer")


def test_every_link_names_a_documented_operation():
    document = openapi_document()
    operation_ids = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    links = [link for item in document["paths"].values() for op in item.values()
             for response in op["responses"].values() for link in response.get("links", {}).values()]
    assert links and all(link["operationId"] in operation_ids for link in links)


# Stateful: follow the document's links (create a cluster, then read, update, diagnose, delete it ...),
# so the routes that need an existing resource see real ids, not only 404s.
APIWorkflow = schema.as_state_machine()


def test_linked_workflows_get_no_5xx_and_conforming_responses(wsgi_app):
    class Workflow(APIWorkflow):
        def setup(self) -> None:
            # Every scenario starts from an empty database and full rate-limit buckets, so what
            # hypothesis replays while shrinking sees the same state it saw the first time.
            truncate_tables()
            get_redis().flushdb()
            self.headers = {"X-API-Key": new_api_key("admin")}  # a platform admin (issue 13)

        def get_call_kwargs(self, case):  # noqa: ANN001, ANN201
            return {"app": wsgi_app, "headers": self.headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):  # noqa: ANN001
            case.validate_response(response, checks=CHECKS)

    Workflow.run(settings=settings(max_examples=25, stateful_step_count=6, deadline=None, derandomize=True,
                                   database=None, suppress_health_check=list(HealthCheck)))
