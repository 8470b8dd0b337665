"""Drive a page in headless Chromium through Playwright (the web demo's browser test and screenshots).

Needs the `playwright` package and a Chromium binary (Debian: `apt-get install chromium`);
Playwright's own browser download is not used. Imported only by the tools that need it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)


def find_chromium() -> Path | None:
    """The Chromium binary on PATH (chromium or chromium-browser), or None."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return Path(found) if found else None


def missing_browser_tools() -> str | None:
    """Why a headless-Chromium run cannot happen here, or None when it can."""
    if find_chromium() is None:
        return "no chromium binary on PATH (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    return None


@contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator:
    """A Playwright page in a fresh headless Chromium, closed on exit."""
    reason = missing_browser_tools()
    if reason:
        raise RuntimeError(f"cannot start headless Chromium: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(find_chromium()), args=list(CHROMIUM_ARGS))
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
