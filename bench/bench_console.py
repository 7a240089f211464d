"""The console's first meaningful paint on the local stack, and the size of what it ships.

    .venv/bin/python bench/bench_console.py [--runs 7]

For the overview and the jobs page it opens the console from its S3 website on LocalStack in headless
Chromium, each run in a fresh browser context (cold cache, as a first visit) and then reloaded in the same
context (warm cache), and records in the page itself, with performance.now():
  - first contentful paint (FCP): the first paint of anything (the static "Loading the console…" shell);
  - first meaningful paint (FMP): the moment the page's data from the API is in the DOM (a
    MutationObserver on the page's ready element), which is what a person waits for.
The baseline, measured in the same run, is the API call the page waits on, timed from Python
(`GET /clusters` for the overview, `GET /jobs` for the jobs page): FMP/baseline says how much the
console adds on top of the API. It also prints each built asset's size raw and gzipped (level 9, as a
CDN would serve it) and the JavaScript the first page loads. Nothing is created on the stack.
"""
from __future__ import annotations

import argparse
import gzip
import json
import pathlib
import statistics
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = [("overview", "#/", "[data-testid=api-health]", "/clusters"),
         ("jobs", "#/jobs", "main p.empty, main nav.pager", "/jobs?page=1&page_size=20")]

# Installed before any page script: records when the ready element first appears.
OBSERVE = """selector => {
  window.__fmp = null;
  const check = () => { if (window.__fmp === null && document.querySelector(selector)) window.__fmp = performance.now(); };
  new MutationObserver(check).observe(document, {subtree: true, childList: true});
}"""
PAINTS = """() => new Promise(resolve => {
  const wait = () => { if (window.__fmp !== null) {
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      resolve({fcp: fcp ? fcp.startTime : null, fmp: window.__fmp}); } else setTimeout(wait, 5); };
  wait(); })"""


def api_ms(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def signed_in() -> str:
    """A page script that puts the stack's admin key where the console keeps a tab's key."""
    from devstack.apikeys import CONSOLE_KEY_SLOT, read_admin_key
    from devstack.config import StackConfig

    key = read_admin_key(StackConfig.from_env()) or ""
    return f"sessionStorage.setItem({json.dumps(CONSOLE_KEY_SLOT)}, {json.dumps(key)})"


def measure(browser, console_url: str, api_url: str, runs: int) -> list[dict]:
    rows = []
    for name, path, ready, api_path in PAGES:
        cold, warm, base = [], [], []
        for _ in range(runs):
            context = browser.new_context()
            page = context.new_page()
            page.add_init_script(f"({OBSERVE})({json.dumps(ready)})")
            page.add_init_script(signed_in())  # as after a sign-in (issue 13)
            page.goto(console_url + path)
            cold.append(page.evaluate(PAINTS))
            page.reload()
            warm.append(page.evaluate(PAINTS))
            context.close()
            base.append(api_ms(f"{api_url}/api/v1{api_path}"))
        med = statistics.median
        row = {"page": name, "fcp_cold": med(r["fcp"] for r in cold), "fmp_cold": med(r["fmp"] for r in cold),
               "fcp_warm": med(r["fcp"] for r in warm), "fmp_warm": med(r["fmp"] for r in warm), "api": med(base)}
        rows.append(row)
    return rows


def asset_sizes(dist: pathlib.Path) -> list[tuple[str, int, int]]:
    return [(p.relative_to(dist).as_posix(), len(p.read_bytes()), len(gzip.compress(p.read_bytes(), 9)))
            for p in sorted(dist.rglob("*")) if p.is_file() and p.name != "config.json"]


def main() -> int:
    from devstack.apikeys import install_stack_credentials, read_admin_key
    from devstack.config import StackConfig

    install_stack_credentials(read_admin_key(StackConfig.from_env()))  # authentication is on (issue 13)
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from devstack.browser import launch
    from devstack.config import StackConfig
    from devstack.console import DIST_DIR

    stack = json.loads((StackConfig.from_env().state_dir / "stack.json").read_text())
    console_url, api_url = stack["console_url"], stack["api_url"].rstrip("/")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        rows = measure(browser, console_url, api_url, args.runs)
        browser.close()
    print(f"first meaningful paint, median of {args.runs} runs (ms from navigation start)")
    print(f"{'page':<10}{'FCP cold':>10}{'FMP cold':>10}{'FCP warm':>10}{'FMP warm':>10}{'API call':>10}{'FMP/API warm':>14}")
    for r in rows:
        print(f"{r['page']:<10}{r['fcp_cold']:>10.0f}{r['fmp_cold']:>10.0f}{r['fcp_warm']:>10.0f}{r['fmp_warm']:>10.0f}"
              f"{r['api']:>10.0f}{r['fmp_warm'] / r['api']:>13.1f}x")
    print("\nbuilt assets (bytes)")
    sizes = asset_sizes(DIST_DIR)
    for name, raw, gz in sizes:
        print(f"  {name:<36}{raw:>9}{gz:>9} gzip")
    js = sum(gz for name, _, gz in sizes if name.endswith(".js"))
    print(f"JavaScript for the first page: {js / 1024:.1f} KiB gzipped (goal: under 250 KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
