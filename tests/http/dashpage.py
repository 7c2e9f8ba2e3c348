"""What the dashboard's browser tests share: a Chromium page that fails on any console error and leaves
a screenshot, the JSON API asked directly (to check what the page shows), and opening the dashboard.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx

from ..chromium import checked_page, watched
from .conftest import ROOT, Live

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

ARTIFACTS = ROOT / "test-artifacts" / "dashboard"


def watched_page(browser: Browser, width: int, height: int) -> tuple[BrowserContext, Page, list[str]]:
    """A new context and page at ``width``×``height``; console errors and page errors are collected."""
    return watched(browser, viewport={"width": width, "height": height})


def screened_page(browser: Browser, name: str, width: int = 1280, height: int = 800) -> Iterator[Page]:
    """For a fixture to yield from: a watched page; afterwards its full-page screenshot is saved as
    ``test-artifacts/dashboard/<name>.png`` and any console error fails the test."""
    yield from checked_page(browser, ARTIFACTS / f"{name}.png", viewport={"width": width, "height": height})


def api(live: Live, path: str, **params: str) -> Any:
    r = httpx.get(live.base + path, params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def v2(live: Live, body: dict[str, Any]) -> Any:
    r = httpx.post(live.base + "/api/v2/query", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def login_cookies(live: Live, password: str) -> dict[str, str]:
    """The session cookies of the admin logged in with ``password`` (for browser contexts to carry)."""
    r = httpx.post(live.base + "/api/auth/login", json={"password": password},
                   headers={"Origin": live.base}, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.cookies)


def log_in(context: BrowserContext, live: Live, cookies: dict[str, str]) -> None:
    """Give ``context`` the session ``cookies`` of :func:`login_cookies`."""
    context.add_cookies([{"name": k, "value": v, "url": live.base} for k, v in cookies.items()])


def open_dashboard(page: Page, live: Live, query: str) -> None:
    """Open the dashboard at ``?query`` and wait until the cards (with their changes) and the chart are in."""
    page.goto(f"{live.base}/?{query}")
    page.locator(".card-change").first.wait_for(timeout=20_000)
    page.wait_for_function("() => document.querySelector('svg.chart') && !document.querySelector("
                           "'section.cards.is-loading, section[aria-label=Chart].is-loading')")
