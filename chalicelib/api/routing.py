"""Routes are declared in app.py's route table and implemented in `chalicelib/api/<resource>.py`, whose module
is imported on the route's first call (issue 16: a cold start pays only for what it serves).

Chalice needs every route when app.py is imported; `deferred_view` gives it a stand-in view per route that
imports the implementing module once and then calls the real view (one attribute read and one call per warm
request). A view reads its request with `current_request()`. Nothing here imports more than the standard
library, so app.py stays cheap to import for every function.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalice import Chalice
    from chalice.app import Request

PACKAGE = "chalicelib.api"
_app: "Chalice | None" = None
# Every resource module a route was declared for, in declaration order (the OpenAPI document loads them all).
RESOURCES: dict[str, None] = {}


def bind(app: "Chalice") -> None:
    """The app whose current request the views read (app.py calls it once)."""
    global _app
    _app = app


def current_request() -> "Request":
    """The request being served."""
    return _app.current_request  # type: ignore[union-attr]


def deferred_view(resource: str, view: str) -> Callable[..., Any]:
    """A view function for Chalice that imports `chalicelib.api.<resource>` on its first call and delegates
    to its function `view` (same name and module, so route listings, metrics and tests see the real one)."""
    module_name = f"{PACKAGE}.{resource}"
    RESOURCES[module_name] = None
    target: list[Callable[..., Any]] = []

    def call(**params: str) -> Any:
        if not target:
            target.append(getattr(importlib.import_module(module_name), view))
        return target[0](**params)

    call.__name__ = call.__qualname__ = view
    call.__module__ = module_name
    return call


def load_all_resources() -> None:
    """Import every declared resource module (the OpenAPI document reads what they `document(...)`)."""
    if not RESOURCES:  # asked before app.py was imported (a test, a script): its route table declares them
        importlib.import_module("app")
    for module_name in RESOURCES:
        importlib.import_module(module_name)
