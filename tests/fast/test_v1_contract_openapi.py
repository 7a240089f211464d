"""Our OpenAPI document against the original's response shapes (tests/contract/original_v1.py).

For every v1 route the original had, our documented success status must be the original's, and our
documented response schema must promise every field of the original's shape, with a compatible JSON type,
as required wherever the original always sent it, and never as null where the original never sent null.
The same shapes are checked against live responses through API Gateway in tests/localstack/test_v1_contract.py.
"""
from __future__ import annotations

from typing import Any

import pytest

import app  # noqa: F401 - registers every blueprint's operations in the document
from chalicelib.api.openapi import openapi_document
from tests.contract.original_v1 import RESPONSES

# Routes whose response our OpenAPI documents as a free-form object (the rate limiter's and the worker pool's):
# the LocalStack contract test checks their live responses against the original's shapes instead.
FREE_FORM = {("GET", "/api/v1/observability/workerpool"), ("GET", "/api/v1/observability/ratelimit")}


def resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def types_of(schema: dict[str, Any], components: dict[str, Any]) -> set[str]:
    schema = resolve(schema, components)
    if "anyOf" in schema:
        return set().union(*(types_of(s, components) for s in schema["anyOf"]))
    if "const" in schema:
        value = schema["const"]
        return {"boolean" if isinstance(value, bool) else "string" if isinstance(value, str) else "number"}
    if "type" in schema:
        return {schema["type"]}
    if "properties" in schema:
        return {"object"}
    return {"any"}


def compare(ours: dict[str, Any], theirs: dict[str, Any], components: dict[str, Any], where: str) -> list[str]:
    """Problems with `ours` as a promise of `theirs` (empty: compatible)."""
    ours = resolve(ours, components)
    problems = []
    want, have = types_of(theirs, components), types_of(ours, components)
    if "any" not in have:
        wanted = {"integer", "number"} if want & {"number"} else want  # an integer is a number
        if not have - {"null"} <= wanted:
            problems.append(f"{where}: type {sorted(have)} where the original sent {sorted(want)}")
        if "null" in have and "null" not in want:
            problems.append(f"{where}: may be null where the original never sent null")
    if "enum" in ours and "enum" in theirs and not set(ours["enum"]) <= set(theirs["enum"]):
        problems.append(f"{where}: values {sorted(set(ours['enum']) - set(theirs['enum']))} the original never sent")
    if theirs.get("type") == "object":
        properties = ours.get("properties", {})
        for name, sub in theirs["properties"].items():
            if name not in properties:
                problems.append(f"{where}.{name}: missing")
                continue
            if name in theirs.get("required", []) and name not in ours.get("required", []):
                problems.append(f"{where}.{name}: optional where the original always sent it")
            problems.extend(compare(properties[name], sub, components, f"{where}.{name}"))
    if theirs.get("type") == "array" and "items" in theirs and "items" in ours:
        problems.extend(compare(ours["items"], theirs["items"], components, f"{where}[]"))
    return problems


def test_every_original_route_exists_with_its_success_status():
    paths = openapi_document()["paths"]
    for (method, path), (status, _) in RESPONSES.items():
        assert method.lower() in paths.get(path, {}), f"{method} {path} is not served"
        assert str(status) in paths[path][method.lower()]["responses"], f"{method} {path} does not answer {status}"


@pytest.mark.parametrize(("method", "path"), sorted(set(RESPONSES) - FREE_FORM))
def test_our_response_schema_promises_the_originals_shape(method, path):
    document = openapi_document()
    components = document["components"]["schemas"]
    status, theirs = RESPONSES[(method, path)]
    ours = document["paths"][path][method.lower()]["responses"][str(status)]["content"]["application/json"]["schema"]
    assert compare(ours, theirs, components, f"{method} {path}") == []


def test_the_checker_finds_drift():
    # The checker itself: a bare array, a retyped field, a null and a missing field are all reported.
    components = {"M": {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "integer"}, "parameters": {"anyOf": [{"type": "object"}, {"type": "null"}]}}}}
    theirs = {"type": "object", "required": ["id", "name"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "parameters": {"type": "string"}}}
    problems = compare({"$ref": "#/components/schemas/M"}, theirs, components, "X")
    assert any("X.id: type" in p for p in problems) and any("X.name: missing" in p for p in problems)
    assert any("X.parameters: may be null" in p for p in problems)
    assert compare({"type": "array", "items": {}}, {"type": "object", "properties": {}}, {}, "Y")
