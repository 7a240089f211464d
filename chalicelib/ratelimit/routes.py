"""The table of rate-limited routes: the one place to edit when a route gains or loses a limit.

Each entry names the limiter and how to find the scope in the request. A scope function returns None
when the request does not say (e.g. a body that is not JSON): the request then goes on unlimited to the
route, whose own validation answers 400.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from chalice.app import Request

from chalicelib.http import caller_id
from chalicelib.ratelimit.config import MAX_SCOPE_ID_LENGTH, Scope
from chalicelib.settings import get_settings


@dataclass(frozen=True)
class LimitedRoute:
    method: str
    path: str  # the route template as Chalice sees it (`request.path`), prefix included
    limiter: str
    scope_of: Callable[[Request], Scope | None]


def per_caller(request: Request) -> Scope:
    """One bucket per caller, as `chalicelib.http.caller_id` identifies them."""
    return Scope("user", caller_id(request))


def per_cluster_in_body(request: Request) -> Scope | None:
    """One bucket per `cluster_id` named in the JSON body."""
    raw = request.raw_body or b""
    if not raw or len(raw) > get_settings().max_body_bytes:
        return None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    cluster_id = body.get("cluster_id") if isinstance(body, dict) else None
    if not isinstance(cluster_id, str) or not cluster_id.strip() or len(cluster_id) > MAX_SCOPE_ID_LENGTH:
        return None
    return Scope("cluster", cluster_id.strip())


LIMITED_ROUTES: tuple[LimitedRoute, ...] = (
    LimitedRoute("POST", "/api/v1/jobs", "jobs_create", per_caller),
    LimitedRoute("POST", "/api/v1/diagnosis/diagnose", "diagnosis", per_cluster_in_body),
)
