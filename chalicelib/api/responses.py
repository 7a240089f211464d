"""Turning response models into Chalice responses (the v1 envelopes are the models themselves)."""
from __future__ import annotations

from chalice import Response
from pydantic import BaseModel

from chalicelib.http import JSON_HEADERS


def ok(body: BaseModel, status_code: int = 200) -> Response:
    """`body` as JSON (timestamps as ISO-8601 UTC with Z). A field that is None is left out, as the original
    left out its empty optional keys: the v1 wire has no nulls (api-v1-wire.md §3)."""
    # Serialised by pydantic-core in one pass; Chalice passes a str body through untouched.
    return Response(body=body.model_dump_json(exclude_none=True), status_code=status_code, headers=JSON_HEADERS)


def created(body: BaseModel) -> Response:
    return ok(body, status_code=201)
