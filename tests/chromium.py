"""Real headless Chromium (Debian's, driven by Playwright) for the browser tests.

Chromium and Playwright are required when ``CI=true`` (the tests fail without them); elsewhere they skip.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = "/usr/bin/chromium"
# --disable-features: Chromium's new headless mode is the whole browser, and each new context is a new
# window whose omnibox popup (a WebUI page of ~200 script modules, in a renderer of its own) is
# preloaded: 0.4-0.9 CPU-seconds in the second after the first navigation, on a two-core machine taken
# from the server under test. A user's browser does that once, when a window opens, not per page view.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup"]
# Headless Chromium says "HeadlessChrome" in its User-Agent, which mallard drops as a bot (rightly).
UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
      "Safari/537.36")


def chromium() -> Iterator[Browser]:
    """A launched browser for a fixture to yield from, closed afterwards; skips (fails under CI=true)
    when Chromium or Playwright is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        playwright_missing = True
    else:
        playwright_missing = False
    if playwright_missing or not Path(CHROMIUM).exists():
        message = "Chromium (/usr/bin/chromium) and playwright are needed for the browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (required when CI=true)")
        pytest.skip(message)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def close(context: BrowserContext) -> None:
    """Close ``context`` after taking each of its pages to about:blank, so no close races a navigation
    commit: Chromium can acknowledge the close of a page mid-commit and never close it, and Playwright
    then waits forever (microsoft/playwright#42366). A page that will not settle is closed anyway."""
    from playwright.sync_api import Error

    for p in context.pages:
        with contextlib.suppress(Error):
            p.goto("about:blank", timeout=10_000)
    context.close()


def watch(page: Page, *, responses: bool = True) -> list[str]:
    """The console errors and page errors of ``page`` from now on, and with ``responses`` its 4xx/5xx
    answers too (a test asserts the list is empty)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    if responses:
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return errors


def watched(browser: Browser, **options: object) -> tuple[BrowserContext, Page, list[str]]:
    """A new context (``options``: viewport, color_scheme, …) and page; console errors and page errors
    are collected in the list."""
    context = browser.new_context(user_agent=UA, **options)  # type: ignore[arg-type]
    p = context.new_page()
    return context, p, watch(p, responses=False)


def checked_page(browser: Browser, shot: Path, **options: object) -> Iterator[Page]:
    """A page of a new context (``options``: viewport, color_scheme, …) for a fixture to yield from:
    every console or page error fails the test, and a full-page screenshot goes to ``shot``."""
    context, p, errors = watched(browser, **options)
    try:
        yield p
        shot.parent.mkdir(parents=True, exist_ok=True)
        p.screenshot(path=str(shot), full_page=True)
        assert not errors, errors
    finally:
        close(context)
