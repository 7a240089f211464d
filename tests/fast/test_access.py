"""Issue 13: who may call what. The route -> access table is complete, and every route x
{no credential, viewer, operator, admin, another tenant's admin} answers as the table says."""
from __future__ import annotations

import re

import pytest

from app import app as chalice_app
from chalicelib.api.access import ADMIN, OPERATOR, PLATFORM, PUBLIC, ROUTE_ACCESS, VIEWER
from chalicelib.api.edge_routes import EDGE_VIEWS
from conftest import new_api_key


def registered_routes() -> set[tuple[str, str]]:
    return {(method, path) for path, methods in chalice_app.routes.items()
            for method, entry in methods.items() if entry.view_name not in EDGE_VIEWS}


def test_every_route_has_an_access_entry_and_every_entry_a_route():
    assert registered_routes() - set(ROUTE_ACCESS) == set(), "add the route to chalicelib/api/access.py"
    assert set(ROUTE_ACCESS) - registered_routes() == set()


# Which callers each level admits: (viewer, operator, admin of the platform tenant, admin of another tenant).
ADMITS = {
    PUBLIC: (True, True, True, True),
    VIEWER: (True, True, True, True),
    OPERATOR: (False, True, True, True),
    ADMIN: (False, False, True, True),
    PLATFORM: (False, False, True, False),
}
CALLERS = ("viewer", "operator", "admin", "other_admin")


def _concrete(path: str) -> str:
    return re.sub(r"{\w+}", "no-such-id", path)


@pytest.mark.parametrize("method,path", sorted(registered_routes()))
def test_route_by_caller_matrix(client, method, path):
    keys = {"viewer": new_api_key("viewer"), "operator": new_api_key("operator"), "admin": new_api_key("admin"),
            "other_admin": new_api_key("admin", tenant="tenant-b")}
    level = ROUTE_ACCESS[(method, path)]
    url = _concrete(path)
    body = {} if method in ("POST", "PUT") else None

    anonymous = client.as_key(None).request(method, url, body)
    if level == PUBLIC:
        assert anonymous.status_code not in (401, 403), anonymous.body
    else:
        assert anonymous.status_code == 401, anonymous.body
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer ")
        assert anonymous.json == {"error": "authentication required"}

    for caller, admitted in zip(CALLERS, ADMITS[level]):
        response = client.as_key(keys[caller]).request(method, url, body)
        if admitted:
            assert response.status_code not in (401, 403) and response.status_code < 500, (caller, response.body)
        else:
            assert response.status_code == 403, (caller, response.body)
            assert set(response.json) == {"error"}
