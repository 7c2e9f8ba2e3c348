"""The tracking script and the dashboard in real headless Chromium, against a real Starlette host app under
uvicorn that mounts mallard under ``/_m`` (no stand-in for mallard anywhere).

Chromium and Playwright are required when ``CI=true`` (the tests fail without them); elsewhere they skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from ..chromium import UA, chromium, close
from .conftest import Live, eventually, start, stop

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


pytestmark = pytest.mark.slow  # headless Chromium and a real server
SITE = "host.example"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    live = start("starlette", tmp_path_factory.mktemp("browser") / "data")
    try:
        yield live
    finally:
        stop(live)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(user_agent=UA)
    p = context.new_page()
    try:
        yield p
    finally:
        close(context)


def rows(live: Live, slug: str) -> list[dict[str, Any]]:
    r = httpx.get(live.base + f"/api/stats/breakdown/{slug}", params={"site_id": SITE, "period": "day",
                                                                        "limit": "100"}, timeout=30)
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()
    return data


def count(live: Live, slug: str, value: str, key: str = "events") -> int:
    return next((int(r[key]) for r in rows(live, slug) if r["value"] == value), 0)


def test_pageviews_spa_navigation_custom_events_and_unload(host: Live, page: Page) -> None:
    """Pageview on load, SPA pushState pageviews, a custom event with props and revenue, and an event fired
    just before navigating away all reach mallard's lake through the real endpoint under /_m."""
    page.goto(host.host + "/")
    eventually(lambda: count(host, "pages", "/", "pageviews") >= 1)
    page.evaluate("history.pushState({}, '', '/pricing')")
    page.evaluate("history.pushState({}, '', '/pricing')")  # same page: no second pageview
    page.evaluate("history.pushState({}, '', '/docs?page=2')")
    eventually(lambda: count(host, "pages", "/docs", "pageviews") == 1)
    assert count(host, "pages", "/pricing", "pageviews") == 1
    page.evaluate("mallard('Purchase', {props: {plan: 'pro'}, revenue: 19.5, currency: 'EUR'})")
    eventually(lambda: count(host, "events", "Purchase") == 1)
    r = httpx.post(host.base + "/api/v2/query", json={
        "site_id": SITE, "metrics": ["events", "total_revenue"], "date_range": "day",
        "dimensions": ["event:props:plan"], "filters": [["is", "event:name", ["Purchase"]]]}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["dimensions"] == ["pro"]
    page.evaluate("mallard('Signup'); location.href = '/elsewhere'")
    page.wait_for_url("**/elsewhere")
    eventually(lambda: count(host, "events", "Signup") == 1)


def test_dashboard_renders_real_figures(host: Live, page: Page) -> None:
    """The dashboard under /_m/ loads (no console errors, nothing blocked by its CSP) and shows the site's
    visitors from the real API."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    httpx.post(host.base + "/api/event", json={"d": SITE, "n": "pageview", "u": "https://host.example/x"},
               headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}, timeout=30)
    page.goto(host.base + f"/?site={SITE}&period=day")
    page.locator("#app").get_by_text("/x", exact=True).first.wait_for(timeout=15_000)
    text = page.inner_text("#app")
    assert SITE in page.content()
    assert "PAGEVIEWS" in text.upper() and "/x" in text  # a card; the pages table, from the real API
    assert not [e for e in errors if "favicon" not in e], errors


LAZY = ("api/stats/funnel", "api/stats/retention", "api/stats/flow")
# api/auth/status, api/sites, api/stats/view, api/stats/realtime, api/stats/info (server facts, no query)
MAX_FIRST_SCREEN_REQUESTS = 5


def test_dashboard_asks_little_and_loads_below_the_fold_when_shown(host: Live, page: Page) -> None:
    """Before any scrolling the dashboard makes at most a few API requests (the first screen comes in one
    api/stats/view answer), and none for the funnel, retention and flow panels; scrolled into view, those
    ask for their data; another breakdown tab asks for its own when clicked."""
    for path in ("/", "/pricing", "/docs"):
        httpx.post(host.base + "/api/event", json={"d": SITE, "n": "pageview", "u": f"https://{SITE}{path}"},
                   headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}, timeout=30)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/" in r.url else None)
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(host.base + f"/?site={SITE}&period=day")
    page.locator("#app").get_by_text("/pricing", exact=True).first.wait_for(timeout=15_000)
    page.wait_for_load_state("networkidle")
    before = list(asked)
    assert len(before) <= MAX_FIRST_SCREEN_REQUESTS, before
    assert sum("api/stats/view" in u for u in before) == 1, before
    assert not [u for u in before if any(p in u for p in LAZY)], before
    for title in ("Flow", "Funnel", "Retention"):
        panel = page.locator("section.panel", has=page.get_by_role("heading", name=title, exact=True))
        panel.scroll_into_view_if_needed()
    # Playwright delivers page events only while the test is inside a Playwright call: wait in one.
    page.wait_for_function("() => !document.querySelector('#app [aria-busy=\"true\"]')")
    assert all(any(p in u for u in asked) for p in LAZY), asked
    assert not [u for u in asked if "breakdown/entry-pages" in u]
    with page.expect_request(lambda r: "api/stats/breakdown/entry-pages" in r.url, timeout=20_000):
        page.get_by_role("tab", name="Entry pages").click()


def _scroll_depth(host: Live, path: str) -> Any:
    r = httpx.post(host.base + "/api/v2/query", json={
        "site_id": SITE, "metrics": ["scroll_depth", "time_on_page"], "date_range": "day",
        "filters": [["is", "event:page", [path]]]}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["results"][0]["metrics"]


def test_a_page_left_after_scrolling_stores_its_engagement(host: Live, page: Page) -> None:
    """mallard.js reports the page left (an SPA navigation, then closing the tab) with how deep it was
    scrolled and how long it was engaged; mallard stores the report as the page's engagement, not as an
    event."""
    page.goto(host.host + "/")
    eventually(lambda: count(host, "pages", "/", "pageviews") >= 1)
    page.evaluate("history.pushState({}, '', '/deep')")  # reports "/" (left), counts a view of /deep
    eventually(lambda: count(host, "pages", "/deep", "pageviews") == 1)
    expected = page.evaluate("""() => new Promise(done => {
        document.body.style.height = '5000px';
        addEventListener('scroll', () => done(Math.round((scrollY + innerHeight) * 100 /
            Math.max(document.body.scrollHeight, document.documentElement.scrollHeight))), {once: true});
        scrollTo(0, 2000);
    })""")
    assert 30 < expected < 70
    assert _scroll_depth(host, "/deep") == [None, None]  # nothing reported while the page is open
    # The tab is closed (pagehide, visibilitychange to hidden): the report must survive the unload.
    # (Navigating away in this headless Chromium delivers no beacon sent from pagehide, whoever sends it.)
    page.close(run_before_unload=True)
    eventually(lambda: _scroll_depth(host, "/deep")[0] is not None)
    depth, seconds = _scroll_depth(host, "/deep")
    assert depth == expected and isinstance(seconds, int) and seconds >= 0
    assert _scroll_depth(host, "/")[0] is not None
    assert count(host, "events", "engagement") == 0
