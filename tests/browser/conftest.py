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

from devstack.browser import CHROMIUM, launch  # noqa: E402 - one way to start the browser

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
        instance = launch(playwright)
        yield instance
        instance.close()


@pytest.fixture
def page_on(browser, console_key) -> Iterator[Callable[[str], Any]]:  # noqa: ANN001
    """`page_on("http://localhost:5173")` -> a Playwright page whose document comes from that origin. The
    page holds an API key in `window.cgApiKey` for its scripts to send (issue 13), as the console does."""
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
        page.evaluate("key => { window.cgApiKey = key; }", console_key)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def paused_job_worker() -> Iterator[Callable[[bool], None]]:
    """`paused(True)` disables the job worker's SQS mapping (jobs wait in the queue), `paused(False)` enables it
    again; always enabled again after the test. A job runs in milliseconds once taken, so a page that must be
    seen while a job is live pauses the worker first instead of racing it."""
    import time

    import boto3

    stack = json.loads((STATE_DIR / "stack.json").read_text())
    awslambda = boto3.client("lambda", region_name=stack.get("region", "us-east-1"), endpoint_url=stack["endpoint_url"],
                             aws_access_key_id="test", aws_secret_access_key="test")  # LocalStack's dummy keys
    [mapping] = awslambda.list_event_source_mappings(FunctionName=stack["functions"]["job_worker"])["EventSourceMappings"]

    def paused(pause: bool) -> None:
        awslambda.update_event_source_mapping(UUID=mapping["UUID"], Enabled=not pause)
        want, deadline = ("Disabled" if pause else "Enabled"), time.monotonic() + 60
        while awslambda.get_event_source_mapping(UUID=mapping["UUID"])["State"] != want:
            assert time.monotonic() < deadline, f"the job worker's mapping did not become {want}"
            time.sleep(0.2)
        if pause:
            # `Disabled` stops the next poll, not one in flight: LocalStack's poller waits up to the mapping's
            # batching window (1 s) for messages, and what that receive takes is still run. Once it is over, a
            # job submitted now stays queued.
            time.sleep(3.0)

    try:
        yield paused
    finally:
        paused(False)


# --- the console (issue 14) ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def console_url() -> str:
    """The console's S3 website on LocalStack (published by `./dev up`, recorded in stack.json)."""
    stack_file = STATE_DIR / "stack.json"
    if not stack_file.exists():
        _missing(f"{stack_file} is missing: deploy first with `./dev up`")
    url = json.loads(stack_file.read_text()).get("console_url")
    if not url:
        _missing("stack.json names no console_url: `./dev up` publishes the console")
    return url.rstrip("/") + "/"


class PageWatch:
    """What went wrong in a page, as a person would notice it in the browser's devtools: console errors,
    uncaught exceptions, requests that failed (network or CORS) and HTTP responses >= 400."""

    def __init__(self, page: Any) -> None:
        self.console_errors: list[str] = []
        self.failed_requests: list[str] = []
        self.error_responses: list[str] = []
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: self.failed_requests.append(f"{r.method} {r.url}: {r.failure}"))
        page.on("response", lambda r: self.error_responses.append(f"{r.status} {r.request.method} {r.url}")
                if r.status >= 400 else None)

    def assert_clean(self) -> None:
        assert not self.console_errors, self.console_errors
        assert not self.failed_requests, self.failed_requests
        assert not self.error_responses, self.error_responses


from devstack.apikeys import CONSOLE_KEY_SLOT as KEY_SLOT  # noqa: E402 - where the console keeps a tab's key


@pytest.fixture
def new_page(browser) -> Iterator[Callable[[str | None], Any]]:  # noqa: ANN001
    """`new_page(key)` -> a fresh page (laptop-sized, the person's timezone set) whose problems are collected on
    `page.watch`, signed in to the console with `key` (None: signed out). Confirmation dialogs (delete, roll
    back) are accepted, as a person clicking OK would."""
    contexts = []

    def open_page(key: str | None) -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Berlin", locale="en-GB")
        contexts.append(context)
        if key:  # as if the person had pasted it on the sign-in page of this tab
            context.add_init_script(f"sessionStorage.getItem({json.dumps(KEY_SLOT)}) === null && "
                                    f"sessionStorage.setItem({json.dumps(KEY_SLOT)}, {json.dumps(key)})")
        page = context.new_page()
        page.watch = PageWatch(page)
        page.on("dialog", lambda dialog: dialog.accept())
        page.set_default_timeout(20_000)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page, console_key) -> Any:  # noqa: ANN001
    """A page signed in as the browser tests' admin (a platform admin: every page and card)."""
    return new_page(console_key)


@pytest.fixture(scope="session")
def console_key(api) -> str:
    """An admin key created for this run through the API (as the stack's first admin, tests/conftest.py)."""
    status, body = api("POST", "/auth/keys", {"role": "admin", "name": "browser tests"})
    assert status == 201, body
    return body["secret"]


@pytest.fixture(scope="session")
def api(api_url) -> Callable[..., tuple[int, Any]]:
    """`api("POST", "/clusters", body)` -> (status, JSON): set-up and clean-up behind the test's back."""
    import urllib.error
    import urllib.request

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{api_url}/api/v1{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    return call


@pytest.fixture
def cluster(api) -> Iterator[dict[str, Any]]:
    """A cluster made for one test through the API, deleted afterwards if the test did not."""
    import uuid

    status, body = api("POST", "/clusters", {"name": f"ui-{uuid.uuid4().hex[:8]}", "region": "nyc3"})
    assert status == 201, body
    yield body["cluster"]
    api("DELETE", f"/clusters/{body['cluster']['id']}")
