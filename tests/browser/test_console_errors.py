"""The API's errors reach the person as messages (its own words), never as a blank page; and the API's
CORS lets the console's origin in while the browser refuses another origin's page."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.localstack, pytest.mark.browser]


def no_crash(page) -> None:
    """The page itself never broke: no uncaught exception, no failed (network/CORS) request."""
    assert not [e for e in page.watch.console_errors if e.startswith("uncaught")], page.watch.console_errors
    assert not page.watch.failed_requests, page.watch.failed_requests


def test_bad_input_shows_the_apis_400_message_next_to_the_form(page, console_url, cluster):
    page.goto(console_url + f"#/autoscaling?cluster={cluster['id']}")
    page.get_by_text("No policies for this cluster.").wait_for()
    page.get_by_text("New policy").click()
    page.get_by_label("Policy name").fill("upside-down")
    page.get_by_label("Policy type").select_option("time_of_day")  # waits for the allowed values
    page.get_by_label("Min replicas").fill("5")
    page.get_by_label("Max replicas").fill("2")
    page.get_by_role("button", name="Create policy").click()
    alert = page.locator("form [role=alert]")
    alert.wait_for()
    assert "min_replicas: must not exceed max_replicas" in alert.inner_text()
    assert "(HTTP 400)" in alert.inner_text()
    assert page.get_by_label("Policy name").input_value() == "upside-down"  # the person's input is kept
    assert [r.split(" ")[:2] for r in page.watch.error_responses] == [["400", "POST"]], page.watch.error_responses
    no_crash(page)


@pytest.mark.parametrize("path,message", [
    ("#/jobs/job-does-not-exist", "Job not found (HTTP 404)"),
    ("#/clusters/cluster-does-not-exist", "Cluster not found (HTTP 404)"),
])
def test_a_missing_resource_shows_the_apis_404_message(page, console_url, path, message):
    page.goto(console_url + path)
    page.get_by_role("alert").filter(has_text=message).first.wait_for()
    page.get_by_role("navigation", name="Main").wait_for()  # the console around it is still there
    assert all(r.startswith("404 ") for r in page.watch.error_responses), page.watch.error_responses
    no_crash(page)


def test_a_rate_limited_action_shows_the_429_message(page, console_url, cluster):
    # Diagnosis is limited per cluster (5 at once, then 0.2/s): the sixth quick click is refused.
    page.goto(console_url + f"#/clusters/{cluster['id']}")
    button = page.get_by_role("button", name="Run diagnosis")
    for _ in range(6):
        button.click()
        page.wait_for_function("b => !b.disabled", arg=button.element_handle())
    alert = page.locator("section[aria-labelledby=h-health] [role=alert]")
    alert.wait_for()
    assert alert.inner_text() == "rate limit exceeded (HTTP 429)"
    page.get_by_test_id("diagnosis").wait_for()  # the five admitted diagnoses were shown
    assert [r.split(" ")[0] for r in page.watch.error_responses] == ["429"], page.watch.error_responses
    no_crash(page)


def test_the_api_admits_the_consoles_origin_and_the_browser_refuses_another_origin(browser, page, console_url, api_url):
    page.goto(console_url)
    page.get_by_test_id("api-health").wait_for()
    assert page.evaluate("location.origin") == console_url.rstrip("/")
    page.watch.assert_clean()  # the console's own calls (GET, and POST preflights elsewhere) went through
    answer = page.evaluate("""async url => {
        const key = sessionStorage.getItem('clustergenie.apiKey');  // the signed-in key, as the console sends it
        const r = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json', 'X-API-Key': key}, body: '{}'});
        return [r.status, r.headers.get('Access-Control-Allow-Origin')]; }""", f"{api_url}/api/v1/autoscaling/evaluate")
    assert answer[0] == 400  # a preflighted POST from the console's origin reaches the API and its answer is readable

    # Another website bucket on the same LocalStack: a different origin the API does not allow.
    stranger = browser.new_page()
    bucket = console_url.split("//", 1)[1].split(".", 1)[0]
    stranger.goto(console_url.replace(f"//{bucket}.", "//someone-else.", 1))
    assert stranger.evaluate("location.origin") != page.evaluate("location.origin")
    refused = stranger.evaluate("""async url => { try { await fetch(url); return 'read'; }
                                   catch (e) { return 'refused: ' + e; } }""", f"{api_url}/api/v1/clusters")
    assert refused.startswith("refused"), refused
    stranger.close()
