"""Every page of the console, opened from its S3 website on LocalStack in headless Chromium against the
deployed API: it loads with no console error and no failed request, its controls are labelled, and its
URL (filters included) can be bookmarked, shared and walked back with the back button."""
from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.localstack, pytest.mark.browser]

# Each page, and a text that shows only once its data arrived from the API (not the loading state).
PAGES = [
    ("#/", "Overview", "[data-testid=api-health]"),
    ("#/clusters", "Clusters", "table >> text={name}"),
    ("#/clusters/{id}", "Cluster {name}", "text=Per month"),
    ("#/droplets?cluster={id}", "Droplets", "text=No droplets yet."),
    ("#/jobs", "Jobs", "main p.empty, main nav.pager"),
    ("#/metrics?cluster={id}&range=1h", "Metrics", "text=No samples in this time range."),
    ("#/autoscaling?cluster={id}", "Autoscaling", "text=No policies for this cluster."),
    ("#/deployments?cluster={id}", "Deployments", "text=No deployments for this cluster."),
    ("#/scheduling", "Providers & scheduling", "table >> text=simulated"),
    ("#/operations", "Rate limiting & operations", "[data-testid=bucket]"),
]

# Every form control must have a name a screen reader can announce (a <label> around it or aria-label).
UNLABELLED = """() => [...document.querySelectorAll('main input, main select, main button')]
  .filter(el => !(el.closest('label') || el.getAttribute('aria-label') || (el.tagName === 'BUTTON' && el.textContent.trim())))
  .map(el => el.outerHTML.slice(0, 120))"""


@pytest.mark.parametrize("path,title,ready", PAGES, ids=[p[1] for p in PAGES])
def test_each_page_loads_its_data_with_no_console_error_and_no_failed_request(page, console_url, cluster, path, title, ready):
    fill = {"id": cluster["id"], "name": cluster["name"]}
    page.goto(console_url + path.format(**fill))
    page.get_by_role("heading", level=1, name=title.format(**fill)).wait_for()
    page.locator(ready.format(**fill)).first.wait_for()
    page.wait_for_load_state("networkidle")
    assert page.locator("main .loading").count() == 0
    assert page.evaluate(UNLABELLED) == []
    page.watch.assert_clean()


def test_filters_live_in_the_url_so_a_bookmark_reopens_them_and_back_walks_them(page, console_url, api, cluster):
    page.goto(console_url + "#/clusters")
    page.get_by_role("link", name=cluster["name"]).wait_for()
    # Edit the cluster's status in place (the same row, a form, Save).
    page.locator("tbody tr", has_text=cluster["name"]).get_by_role("button", name="Edit").click()
    edit = page.get_by_role("form", name=f"Edit {cluster['name']}")
    edit.get_by_label("Status").select_option("warning")
    edit.get_by_role("button", name="Save").click()
    page.locator("tbody tr", has_text=cluster["name"]).locator(".badge", has_text="warning").wait_for()
    assert api("GET", f"/clusters/{cluster['id']}")[1]["cluster"]["status"] == "warning"
    page.get_by_label("Status").select_option("critical")
    assert "status=critical" in page.url
    page.get_by_text("No cluster matches these filters.").wait_for()
    page.get_by_label("Status").select_option("warning")
    page.get_by_role("link", name=cluster["name"]).wait_for()

    bookmark = page.url
    shared = page.context.new_page()  # the same URL opened afresh, as from a bookmark or a shared link
    shared.goto(bookmark)
    shared.get_by_role("link", name=cluster["name"]).wait_for()
    expect(shared.get_by_label("Status")).to_have_value("warning")
    shared.close()

    page.go_back()
    page.wait_for_url("**status=critical")
    page.get_by_text("No cluster matches these filters.").wait_for()
    page.go_back()
    page.wait_for_url("**#/clusters")
    page.get_by_role("link", name=cluster["name"]).wait_for()
    page.watch.assert_clean()


def test_keyboard_focus_is_visible_and_times_are_local_with_relative_times(page, console_url, cluster):
    page.goto(console_url + f"#/clusters/{cluster['id']}")
    page.get_by_text("Per month").wait_for()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), outline
    # The page's timezone is Europe/Berlin (the fixture's): the health check's time is shown there, with a
    # relative time next to it.
    shown = page.locator("section[aria-labelledby=h-health] time").first
    assert "ago" in shown.inner_text() or "now" in shown.inner_text(), shown.inner_text()
    iso = shown.get_attribute("datetime")
    local = page.evaluate("iso => new Intl.DateTimeFormat(undefined, {timeStyle: 'medium', timeZone: 'Europe/Berlin'}).format(new Date(iso))", iso)
    assert local in shown.inner_text()


def test_on_a_phone_screen_the_navigation_and_page_fit_without_sideways_scrolling(browser, console_url, console_key):
    import json

    from devstack.apikeys import CONSOLE_KEY_SLOT

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    context.add_init_script(f"sessionStorage.setItem({json.dumps(CONSOLE_KEY_SLOT)}, {json.dumps(console_key)})")
    phone = context.new_page()
    phone.goto(console_url + "#/jobs")
    phone.get_by_role("heading", level=1, name="Jobs").wait_for()
    phone.locator("main p.empty, main nav.pager").first.wait_for()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    phone.get_by_role("link", name="Clusters").click()
    phone.get_by_role("heading", level=1, name="Clusters").wait_for()
    context.close()


def _every(api, path: str, key: str) -> list[dict]:
    """All of the tenant's `key` items from a list the API pages (500 at most per page)."""
    items, number = [], 1
    while True:
        status, body = api("GET", f"{path}?page={number}&page_size=500")
        assert status == 200, body
        items += body[key]
        if len(body[key]) < 500:
            return items
        number += 1


def _pages_of(page, list_path: str, size: int) -> list[str]:
    """Makes the API page `list_path` in pages of `size` for this page's console, as a tenant with more than one
    page of them sees it (by default a page holds 100 and the list is oldest first, so the newest, the one a
    person just made, is on the last page), without making hundreds of them. The console's first request of the
    list gets `page_size` added on its way; the API's real paging and its Link headers do the rest, which the
    console must follow. Returns the `page` numbers the console asked for, in order."""
    asked: list[str] = []

    def shrink(route):  # noqa: ANN001
        url = urlsplit(route.request.url)
        query = parse_qs(url.query)
        if route.request.method != "GET":
            return route.continue_()
        asked.append(query.get("page", ["1"])[0])
        if "page" in query:
            return route.continue_()
        query["page_size"] = [str(size)]
        route.continue_(url=urlunsplit(url._replace(query=urlencode(query, doseq=True))))

    page.route(re.compile(rf".*/api/v1{re.escape(list_path)}(\?.*)?$"), shrink)
    return asked


def test_the_clusters_list_shows_every_page_of_the_api_and_drops_a_deleted_cluster(page, console_url, api):
    made = []
    try:
        for n in range(3):
            status, body = api("POST", "/clusters", {"name": f"ui-paged-{uuid.uuid4().hex[:6]}-{n}", "region": "fra1"})
            assert status == 201, body
            made.append(body["cluster"])
        every = _every(api, "/clusters", "clusters")
        size = min(500, len(every) // 3)  # three pages or more (n // (n // 3) >= 3 for n >= 3); the newest is on the last
        asked = _pages_of(page, "/clusters", size)
        page.goto(console_url + "#/clusters")
        for cluster in made:
            page.get_by_role("link", name=cluster["name"]).wait_for()
        expect(page.locator("main tbody tr")).to_have_count(len(every))
        assert asked[:3] == ["1", "2", "3"], asked  # the pages were followed, in order

        newest = made[-1]  # no machines: the API deletes it at once, and the list shows it gone
        page.locator("tbody tr", has_text=newest["name"]).get_by_role("button", name="Delete").click()
        expect(page.get_by_role("link", name=newest["name"])).to_have_count(0)
        expect(page.locator("main tbody tr")).to_have_count(len(every) - 1)
        assert api("GET", f"/clusters/{newest['id']}")[0] == 404
    finally:
        for cluster in made:
            api("DELETE", f"/clusters/{cluster['id']}")
    page.watch.assert_clean()


def test_the_droplets_list_shows_every_page_of_the_api(page, console_url, api, cluster):
    names = [f"ui-paged-{uuid.uuid4().hex[:6]}-{n}" for n in range(3)]
    for name in names:
        status, body = api("POST", "/droplets", {"name": name, "cluster_id": cluster["id"], "region": "fra1",
                                                 "size": "s-1vcpu-1gb", "image": "ubuntu-22-04-x64", "provider": "simulated"})
        assert status == 201, body
    every = _every(api, "/droplets", "droplets")
    asked = _pages_of(page, "/droplets", min(500, len(every) // 3))  # three pages or more
    page.goto(console_url + "#/droplets")
    for name in names:
        page.locator("main tbody tr", has_text=name).wait_for()
    expect(page.locator("main tbody tr")).to_have_count(len(every))
    assert asked[:3] == ["1", "2", "3"], asked
    # Each droplet names its cluster (the cluster list behind the names is complete too).
    expect(page.locator("main tbody tr", has_text=names[-1]).get_by_role("link", name=cluster["name"])).to_be_visible()
    page.watch.assert_clean()
