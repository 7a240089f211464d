"""A page on another origin uses the API through API Gateway on LocalStack, in a real headless Chromium.

The browser, not this test, decides whether a response may be read: a missing or wrong
Access-Control-Allow-Origin, a failed preflight or an unexposed header all show up here as a
`TypeError: Failed to fetch` or a `null` header, exactly as the console would see them.
"""
from __future__ import annotations

import uuid

import pytest

pytestmark = [pytest.mark.localstack, pytest.mark.browser]

ALLOWED_ORIGIN = "http://localhost:5173"  # the console's Vite dev server: allowed by default
STRANGER_ORIGIN = "http://localhost:5999"  # same machine, same loopback address space, not allowed

# Runs in the page: one fetch, the outcome as plain data (status, JSON body, the headers a page can read).
FETCH = """async ([url, method, body, signed]) => {
  try {
    const init = {method, headers: signed && window.cgApiKey ? {'X-API-Key': window.cgApiKey} : {}};
    if (body !== null) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    const r = await fetch(url, init);
    const text = await r.text();
    return {status: r.status, body: text ? JSON.parse(text) : null,
            retryAfter: r.headers.get('Retry-After'), limit: r.headers.get('X-RateLimit-Limit'),
            requestId: r.headers.get('X-Request-Id'), challenge: r.headers.get('WWW-Authenticate')};
  } catch (e) { return {refused: String(e)}; }
}"""


def fetch(page, url: str, method: str = "GET", body=None, signed: bool = True) -> dict:  # noqa: ANN001
    """`signed`: send the page's API key (`window.cgApiKey`) as X-API-Key, as the console does."""
    return page.evaluate(FETCH, [url, method, body, signed])


def test_a_page_without_a_key_reads_the_401_and_its_challenge(page_on, api_url):
    page = page_on(ALLOWED_ORIGIN)
    refused = fetch(page, f"{api_url}/api/v1/clusters", signed=False)
    assert refused.get("status") == 401, refused  # readable: the 401 carries the CORS headers
    assert refused["body"] == {"error": "authentication required"}
    assert refused["challenge"].startswith("Bearer")
    wrong = fetch(page, f"{api_url}/api/v1/clusters", "POST", {"name": "x", "region": "nyc3"}, signed=False)
    assert wrong.get("status") == 401, wrong  # the preflight for a POST admits the request, the API refuses it


def test_a_page_on_an_allowed_origin_creates_reads_updates_and_deletes(page_on, api_url):
    page = page_on(ALLOWED_ORIGIN)
    assert page.evaluate("location.origin") == ALLOWED_ORIGIN
    created = fetch(page, f"{api_url}/api/v1/clusters", "POST", {"name": f"browser-{uuid.uuid4().hex[:6]}", "region": "nyc3"})
    assert created.get("status") == 201, created
    cluster_id = created["body"]["cluster"]["id"]
    assert created["requestId"]  # exposed to the page
    read = fetch(page, f"{api_url}/api/v1/clusters/{cluster_id}")
    assert read["status"] == 200 and read["body"]["cluster"]["id"] == cluster_id
    updated = fetch(page, f"{api_url}/api/v1/clusters/{cluster_id}", "PUT", {"status": "warning"})
    assert updated["status"] == 200 and updated["body"]["cluster"]["status"] == "warning"
    deleted = fetch(page, f"{api_url}/api/v1/clusters/{cluster_id}", "DELETE")
    assert deleted["status"] == 200, deleted
    gone = fetch(page, f"{api_url}/api/v1/clusters/{cluster_id}")
    assert gone["status"] == 404 and gone["body"]["error"]  # an error body the page can read


def test_a_page_reads_unknown_route_errors_and_the_retry_after_of_a_429(page_on, api_url):
    page = page_on(ALLOWED_ORIGIN)
    missing = fetch(page, f"{api_url}/api/v1/no-such-thing")
    assert missing["status"] == 404 and "no route" in missing["body"]["error"]
    wrong_method = fetch(page, f"{api_url}/api/v1/clusters", "DELETE")
    assert wrong_method["status"] == 405 and wrong_method["body"]["error"]
    # Diagnosis is limited per cluster named in the body (5 at once); the 6th answer is a 429.
    target = {"cluster_id": f"cluster-browser-{uuid.uuid4().hex}"}
    answers = [fetch(page, f"{api_url}/api/v1/diagnosis/diagnose", "POST", target) for _ in range(6)]
    assert [a.get("status") for a in answers][-1] == 429, answers
    assert answers[-1]["body"] == {"error": "rate limit exceeded"}
    assert int(answers[-1]["retryAfter"]) >= 1
    assert answers[0]["limit"] == "5"


def test_a_page_on_an_origin_not_allowed_is_refused_by_the_browser(page_on, api_url):
    page = page_on(STRANGER_ORIGIN)
    assert "refused" in fetch(page, f"{api_url}/api/v1/clusters")  # a simple request: no readable response
    assert "refused" in fetch(page, f"{api_url}/api/v1/clusters", "POST", {"name": "x", "region": "nyc3"})  # preflight
    allowed = page_on(ALLOWED_ORIGIN)
    assert fetch(allowed, f"{api_url}/api/v1/clusters")["status"] == 200  # the same call from the console works
