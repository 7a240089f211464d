"""Turning response models into Chalice responses (the v1 envelopes are the models themselves)."""
from __future__ import annotations

from urllib.parse import urlencode

from chalice import Response
from chalice.app import Request
from pydantic import BaseModel

from chalicelib.http import JSON_HEADERS


def ok(body: BaseModel, status_code: int = 200) -> Response:
    """`body` as JSON (timestamps as ISO-8601 UTC with Z). A field that is None is left out, as the original
    left out its empty optional keys: the v1 wire has no nulls (api-v1-wire.md §3)."""
    # Serialised by pydantic-core in one pass; Chalice passes a str body through untouched.
    return Response(body=body.model_dump_json(exclude_none=True), status_code=status_code, headers=JSON_HEADERS)


def created(body: BaseModel) -> Response:
    return ok(body, status_code=201)


def paged(body: BaseModel, request: Request, *, page: int, page_size: int, total: int) -> Response:
    """`body` (one page of a list, in the original's envelope) with the paging in headers: X-Total-Count
    (items in all) and an RFC 8288 Link to the next and previous pages (relative to the route)."""
    response = ok(body)
    headers = {**response.headers, "X-Total-Count": str(total)}  # a copy: ok() shares JSON_HEADERS
    query = {k: v for k, v in (request.query_params or {}).items() if k not in ("page", "page_size")}
    links = []
    if page * page_size < total:
        links.append(f'<{request.path}?{urlencode({**query, "page": page + 1, "page_size": page_size})}>; rel="next"')
    if page > 1:
        links.append(f'<{request.path}?{urlencode({**query, "page": page - 1, "page_size": page_size})}>; rel="prev"')
    if links:
        headers["Link"] = ", ".join(links)
    response.headers = headers
    return response
