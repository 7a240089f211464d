"""The console with authentication on (issue 13): signing in and out, a wrong key, what a viewer is shown,
creating and revoking keys, and the audit log page."""
from __future__ import annotations

import re
import uuid

import pytest

pytestmark = [pytest.mark.localstack, pytest.mark.browser]


def sign_in(page, console_url: str, key: str) -> None:  # noqa: ANN001
    page.goto(console_url)
    page.get_by_role("heading", level=1, name="Sign in").wait_for()
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def test_signing_in_shows_who_and_the_role_and_signing_out_forgets_the_key(new_page, console_url, console_key):
    page = new_page(None)
    sign_in(page, console_url, console_key)
    page.get_by_test_id("api-health").wait_for()  # the overview, loaded with the key
    who = " ".join(page.get_by_test_id("who").inner_text().split())
    assert "tenant default" in who and "admin" in who, who
    nav = page.get_by_role("navigation", name="Main")
    for label in ("API keys", "Audit log", "Rate limiting & operations"):
        nav.get_by_role("link", name=label).wait_for()
    page.watch.assert_clean()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", level=1, name="Sign in").wait_for()
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    page.get_by_role("heading", level=1, name="Sign in").wait_for()  # the key is gone, not just hidden


def test_a_wrong_key_is_refused_with_the_apis_message(new_page, console_url):
    page = new_page(None)
    sign_in(page, console_url, "cgk_wrongwrongwr_" + "x" * 43)
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "invalid credentials" in alert.inner_text()
    page.get_by_role("heading", level=1, name="Sign in").wait_for()
    assert page.get_by_role("navigation", name="Main").count() == 0
    assert [r.split(" ")[0] for r in page.watch.error_responses] == ["401"]


def test_an_admin_creates_a_viewer_key_the_viewer_sees_no_changes_and_revocation_signs_it_out(new_page, page, console_url):
    name = f"viewer-{uuid.uuid4().hex[:6]}"
    page.goto(console_url + "#/keys")
    page.get_by_role("heading", level=1, name="API keys").wait_for()
    form = page.get_by_role("form", name="Create key")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Role").select_option("viewer")
    form.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("new-secret").locator("code").inner_text()
    assert re.fullmatch(r"cgk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}", secret), secret
    row = page.locator("tr", has_text=name)
    row.wait_for()
    assert secret not in page.locator("table").inner_text()  # listed by prefix only

    viewer = new_page(secret)
    viewer.goto(console_url + "#/clusters")
    viewer.get_by_role("heading", level=1, name="Clusters").wait_for()
    viewer.locator("main p.empty, main table").first.wait_for()
    assert "viewer" in viewer.get_by_test_id("who").inner_text()
    assert viewer.get_by_role("form", name="Create cluster").count() == 0  # no card it cannot use
    nav = viewer.get_by_role("navigation", name="Main")
    for label in ("API keys", "Audit log", "Rate limiting & operations"):
        assert nav.get_by_role("link", name=label).count() == 0, label
    viewer.goto(console_url + "#/")
    viewer.get_by_test_id("api-health").wait_for()
    assert viewer.locator("#h-queue").count() == 0
    viewer.watch.assert_clean()  # nothing it was shown failed

    row.get_by_role("button", name="Revoke").click()
    page.locator("tr", has_text=name).get_by_text("revoked").wait_for()
    # Within the API's cache time (5 s) the viewer's next request is refused and the console asks to sign in.
    for _ in range(15):
        viewer.wait_for_timeout(1000)
        viewer.reload()
        viewer.locator("main h1").first.wait_for()
        if viewer.get_by_role("heading", level=1, name="Sign in").count():
            break
    viewer.get_by_role("heading", level=1, name="Sign in").wait_for(timeout=1000)
    assert viewer.evaluate("sessionStorage.length") == 0  # the refused key is forgotten


def test_the_audit_log_page_shows_a_mutation_with_who_and_outcome(page, console_url, cluster):
    page.goto(console_url + f"#/audit?resource_id={cluster['id']}")
    page.get_by_role("heading", level=1, name="Audit log").wait_for()
    table = page.get_by_test_id("audit")
    table.wait_for()
    text = table.inner_text()
    assert "POST /api/v1/clusters" in text and cluster["id"] in text and "201" in text
    page.watch.assert_clean()
