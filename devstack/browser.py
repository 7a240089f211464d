"""The one way this project starts a browser: Debian's headless Chromium (installed by ./dev), driven by
the pinned Python `playwright` package. No browser is ever downloaded. Used by the browser test tier
(tests/browser), `./dev screenshots` and the console bench."""
from __future__ import annotations

import os

CHROMIUM = os.environ.get("CG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


def launch(playwright):
    """A headless Chromium from `playwright` (a started `sync_playwright()`)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
