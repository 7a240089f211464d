"""`./dev screenshots`: a screenshot of each console page, from the deployed stack, into docs/console/.

Demo data is made through the API first (a cluster `demo-web` with droplets, a provision job, a few
monitor jobs for the charts, a policy, a deployment), then each page is opened from the console's S3
website in headless Chromium. The demo cluster is left in place so the pages can be looked at by hand;
running the command again reuses it.
"""
from __future__ import annotations

import json
import pathlib
import time
import urllib.error
import urllib.request
from typing import Any

from devstack.browser import launch
from devstack.config import ROOT

OUT_DIR = ROOT / "docs" / "console"
CALLER = "console-screenshots"  # its own jobs_create bucket, so other callers' limits are not touched
DEMO = "demo-web"


class Api:
    def __init__(self, api_url: str, key: str | None) -> None:
        self.base = api_url.rstrip("/") + "/api/v1"
        self.key = key  # the stack's first admin key (issue 13); None with authentication off

    def __call__(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", "X-User-ID": CALLER,
                                                  **({"X-API-Key": self.key} if self.key else {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:300]!r}") from None


def _wait_job(api: Api, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api("GET", f"/jobs/{job_id}")["job"]
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.5)
    raise RuntimeError(f"job {job_id} did not finish in {timeout:.0f}s")


def _items(answer: Any) -> list:
    """A list answer, bare or in the v1 `{"items": [...]}` envelope."""
    return answer if isinstance(answer, list) else answer.get("items", [])


def seed(api: Api) -> dict:
    """The demo cluster, with enough history that every page has something to show."""
    clusters = api("GET", "/clusters")["clusters"]
    cluster = next((c for c in clusters if c["name"] == DEMO), None)
    if cluster is None:
        cluster = api("POST", "/clusters", {"name": DEMO, "region": "fra1"})["cluster"]
        api("POST", "/droplets", {"name": "demo-web-1", "region": "fra1", "size": "s-2vcpu-4gb", "cluster_id": cluster["id"]})
    # A generous bucket for this caller while seeding, removed again at the end (an admin's limiter override).
    api("POST", "/observability/ratelimit/config", {"name": "jobs_create", "scope_type": "user", "scope_id": CALLER,
                                                     "refill_rate": 5, "capacity": 20})
    try:
        job = api("POST", "/jobs", {"type": "provision", "parameters": {"cluster_id": cluster["id"]}})["job"]
        _wait_job(api, job["id"])
        for _ in range(6):  # a few metric snapshots, so the charts have lines
            _wait_job(api, api("POST", "/jobs", {"type": "monitor", "parameters": {"cluster_id": cluster["id"]}})["job"]["id"])
            time.sleep(1.0)
    finally:
        api("DELETE", "/observability/ratelimit/config", {"name": "jobs_create", "scope_type": "user", "scope_id": CALLER})
    if not _items(api("GET", f"/autoscaling/policies?cluster_id={cluster['id']}")):
        api("POST", "/autoscaling/policies", {"cluster_id": cluster["id"], "name": "cpu-guard", "type": "metrics",
                                              "min_replicas": 1, "max_replicas": 4, "metric_type": "cpu", "metric_trigger": 75})
    if not _items(api("GET", f"/deployments?cluster_id={cluster['id']}")):
        api("POST", "/deployments/start", {"cluster_id": cluster["id"], "version": "v2.4.0", "strategy": "canary", "target_percent": 50})
    return {"cluster": cluster, "job": job}


def pages(demo: dict) -> list[tuple[str, str, str]]:
    cid, jid = demo["cluster"]["id"], demo["job"]["id"]
    return [
        ("overview", "#/", "[data-testid=api-health]"),
        ("clusters", "#/clusters", "table"),
        ("cluster-detail", f"#/clusters/{cid}", "text=Per month"),
        ("droplets", f"#/droplets?cluster={cid}", "table"),
        ("jobs", "#/jobs", "nav.pager"),
        ("job-detail", f"#/jobs/{jid}", "text=Finished; no longer updating."),
        ("metrics", f"#/metrics?cluster={cid}&range=1h", ".uplot"),
        ("autoscaling", f"#/autoscaling?cluster={cid}", "table"),
        ("deployments", f"#/deployments?cluster={cid}", "[data-testid=deployment]"),
        ("scheduling", "#/scheduling", "table"),
        ("operations", "#/operations", "[data-testid=bucket]"),
    ]


def take(console_url: str, api_url: str, out_dir: pathlib.Path = OUT_DIR, key: str | None = None) -> list[pathlib.Path]:
    """`key`: the API key the demo data is made with and the console is signed in with."""
    from playwright.sync_api import sync_playwright

    api = Api(api_url, key)
    # The console's tab holds its key in sessionStorage (console/src/api.ts), as after a sign-in.
    from devstack.apikeys import CONSOLE_KEY_SLOT

    signed_in = f"sessionStorage.setItem({json.dumps(CONSOLE_KEY_SLOT)}, {json.dumps(key)})" if key else ""
    demo = seed(api)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="UTC", locale="en-GB")
        if signed_in:
            context.add_init_script(signed_in)
        page = context.new_page()
        for name, path, ready in pages(demo):
            page.goto(console_url + path)
            page.locator(ready).first.wait_for(timeout=60_000)
            page.wait_for_load_state("networkidle")
            page.wait_for_function("() => !document.querySelector('main .loading')", timeout=60_000)
            if name == "scheduling":
                page.get_by_role("button", name="Simulate placement").click()
                page.get_by_test_id("placement").wait_for()
            if name == "autoscaling":
                page.get_by_role("button", name="Evaluate policies now").click()
                page.get_by_test_id("evaluation").wait_for()
            target = out_dir / f"{name}.png"
            page.screenshot(path=str(target), full_page=True)
            written.append(target)
        phone_context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, timezone_id="UTC")
        if signed_in:
            phone_context.add_init_script(signed_in)
        phone = phone_context.new_page()
        phone.goto(console_url + f"#/jobs/{demo['job']['id']}")
        phone.get_by_text("Finished; no longer updating.").wait_for(timeout=60_000)
        phone.screenshot(path=str(out_dir / "phone-job-detail.png"))
        written.append(out_dir / "phone-job-detail.png")
        browser.close()
    return written
