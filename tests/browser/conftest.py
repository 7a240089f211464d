"""Fixtures of the browser tier: a real headless Chromium (Debian's `chromium`, installed by ./dev) driven
by the Python `playwright` package. No browser is downloaded: Playwright launches /usr/bin/chromium.

`page_on(origin)` opens a page whose origin is `origin`: Playwright answers the navigation to that origin
with a small HTML page, so the page's origin is exactly the one under test (an allowed console origin or a
stranger) without binding a port that another checkout on this machine may hold. Everything the page then
fetches goes over the network to the real API on LocalStack.
"""
from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("CG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update"]
STATE_DIR = pathlib.Path(os.environ.get("CG_STATE_DIR", pathlib.Path(__file__).resolve().parents[2] / ".local"))
BLANK_PAGE = "<!doctype html><html><head><meta charset='utf-8'><title>cross-origin page</title></head><body></body></html>"


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def api_url() -> str:
    """The API base URL on LocalStack (from the stack.json that `./dev up` writes)."""
    stack_file = STATE_DIR / "stack.json"
    if not stack_file.exists():
        _missing(f"{stack_file} is missing: deploy first with `./dev up`")
    return json.loads(stack_file.read_text())["api_url"].rstrip("/")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        _missing(f"{CHROMIUM} is missing: `./dev up` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def page_on(browser) -> Iterator[Callable[[str], Any]]:  # noqa: ANN001
    """`page_on("http://localhost:5173")` -> a Playwright page whose document comes from that origin."""
    contexts = []

    def open_page(origin: str) -> Any:
        context = browser.new_context()
        # A document Playwright supplies has no server address, so Chromium counts it as public, and its
        # Local Network Access check would ask the user before it reaches the API on 127.0.0.1. Granting
        # that permission (as a user of the console at a public URL would) leaves CORS as the only gate.
        context.grant_permissions(["local-network-access"])
        contexts.append(context)
        page = context.new_page()
        page.route(f"{origin}/", lambda route: route.fulfill(status=200, content_type="text/html", body=BLANK_PAGE))
        page.goto(f"{origin}/")
        return page

    yield open_page
    for context in contexts:
        context.close()
