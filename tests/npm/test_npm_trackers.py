"""Plausible's own npm trackers, ``@plausible-analytics/tracker`` 0.4 and ``plausible-tracker`` 0.3 (pinned in
tests/npm/package-lock.json, installed by scripts/test with ``npm ci``), in real headless Chromium, posting
to a real ``mallard serve`` on 127.0.0.1; what lands in the Parquet lake is read back with DuckDB, field
by field.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import httpx
import pytest

from tests.chromium import close
from tests.http.conftest import Live, start, stop
from tests.static.test_tracker_browser import browser

from . import pages
from .pages import GOOGLE, HN, MODULES, SITES, V3, V4, Site

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["browser"]  # the fixture, shared with the mallard.js browser tests

pytestmark = pytest.mark.slow
# Headless Chromium names itself HeadlessChrome, which the bot filter drops: present a desktop Chrome.
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
COLUMNS = ("event_name", "pathname", "hostname", "referrer", "referrer_source", "utm_source", "props",
           "revenue_amount", "revenue_currency", "screen_size", "browser", "device_type")


@pytest.fixture(scope="module")
def modules() -> None:
    missing = [name for name in (V4, V3) if not (MODULES / name).is_file()]
    if missing:
        message = f"run `npm ci --prefix tests/npm` (scripts/test does): {', '.join(missing)} missing"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (required when CI=true)")
        pytest.skip(message)


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory, modules: None) -> Iterator[Live]:
    server = start("serve", tmp_path_factory.mktemp("npm") / "data")
    try:
        yield server
    finally:
        stop(server)
        assert "Traceback" not in server.logs(), server.logs()


def rows(data_dir: Path, site: str) -> list[dict[str, Any]]:
    """The site's stored events, in time order."""
    files = sorted((data_dir / "events" / f"site_id={site}").rglob("*.parquet"))
    if not files:
        return []
    with duckdb.connect() as db:
        cursor = db.execute(f"SELECT {', '.join(COLUMNS)} FROM read_parquet(?) ORDER BY timestamp",
                            [[str(f) for f in files]])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def waiter(data_dir: Path, site: str) -> Any:
    """``arrived(name, n)``: poll the lake (flushed every 0.2 s) until ``n`` events ``name`` are stored."""

    def arrived(name: str, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while sum(r["event_name"] == name for r in rows(data_dir, site)) < n:
            assert time.monotonic() < deadline, (name, n, rows(data_dir, site))
            time.sleep(0.1)

    return arrived


def stored(data_dir: Path, site: str) -> list[dict[str, Any]]:
    """The stored events without Plausible's engagement reports (checked on their own: the 0.4 tracker
    sends one when the SPA leaves /v4/landing, and one when the tab is closed)."""
    return [r for r in rows(data_dir, site) if r["event_name"] != "engagement"]


def engagements(data_dir: Path, site: str) -> list[tuple[str, int | None, int | None]]:
    """(path, scroll_depth, engagement_ms) of the stored engagement reports."""
    files = sorted((data_dir / "events" / f"site_id={site}").rglob("*.parquet"))
    with duckdb.connect() as db:
        return db.execute("SELECT pathname, scroll_depth, engagement_ms FROM read_parquet(?, "
                          "union_by_name=true) WHERE event_name = 'engagement' ORDER BY timestamp",
                          [[str(f) for f in files]]).fetchall()


def run(browser: Browser, serve: Live, tracker: str, html: str,
        drive: Callable[[Page, Site, Callable[[str, int], None]], None]) -> tuple[Site, list[dict[str, Any]]]:
    """Drive one tracker's page in a fresh browser context; the site (stopped) and the stored events."""
    with Site({tracker: html}) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 700}, user_agent=UA)
        try:
            drive(context.new_page(), site, waiter(serve.data_dir, SITES[tracker]))
        finally:
            close(context)
    return site, stored(serve.data_dir, SITES[tracker])


def test_plausible_analytics_tracker_0_4(serve: Live, browser: Browser) -> None:
    """@plausible-analytics/tracker 0.4: pageviews (UTM, referrer), SPA navigation, props, revenue, file
    download, outbound link; the 0.4 tracker sends no width."""
    site, got = run(browser, serve, "v4", pages.v4_page(serve.base + "/api/event"), pages.drive_v4)
    base = {"hostname": "127.0.0.1", "referrer": GOOGLE, "referrer_source": "Google",
            "utm_source": "newsletter", "props": None, "revenue_amount": None,
            "revenue_currency": None, "screen_size": None, "device_type": "desktop"}
    expected = [
        {**base, "event_name": "pageview", "pathname": "/v4/landing"},
        {**base, "event_name": "pageview", "pathname": "/v4/pricing", "utm_source": None},
        {**base, "event_name": "Signup", "pathname": "/v4/pricing", "utm_source": None,
         "props": '{"plan":"pro"}'},
        {**base, "event_name": "Purchase", "pathname": "/v4/pricing", "utm_source": None,
         "props": '{"sku":"a1"}', "revenue_amount": Decimal("19.90"), "revenue_currency": "EUR"},
        {**base, "event_name": "File Download", "pathname": "/v4/pricing", "utm_source": None,
         "props": f'{{"url":"{site.url("/files/report.pdf")}"}}'},
        {**base, "event_name": "Outbound Link: Click", "pathname": "/v4/pricing", "utm_source": None,
         "props": f'{{"url":"{site.url("/partner", "localhost")}"}}'},
    ]
    assert [{k: v for k, v in r.items() if k != "browser"} for r in got] == expected
    assert {r["browser"] for r in got} == {"Chrome"}
    # Its engagement reports: the page left with its scroll depth and engaged time, not an event.
    reports = engagements(serve.data_dir, SITES["v4"])
    assert reports[0][0] == "/v4/landing" and all(
        0 <= sd <= 100 and 0 <= ms < 60_000 for _, sd, ms in reports), reports
    r = httpx.post(serve.base + "/api/v2/query", json={"site_id": SITES["v4"], "metrics": ["events"],
                                                       "date_range": "day"}, timeout=30)
    assert r.status_code == 200 and r.json()["results"][0]["metrics"] == [len(got)], r.text


def test_plausible_tracker_0_3(serve: Live, browser: Browser) -> None:
    """plausible-tracker 0.3: pageviews (referrer, width), SPA navigation, props, outbound link."""
    site, got = run(browser, serve, "v3", pages.v3_page(serve.base), pages.drive_v3)
    base = {"hostname": "127.0.0.1", "referrer": HN, "referrer_source": "Hacker News",
            "utm_source": None, "props": None, "revenue_amount": None, "revenue_currency": None,
            "screen_size": "1280", "device_type": "desktop"}
    expected = [
        {**base, "event_name": "pageview", "pathname": "/v3/home"},
        {**base, "event_name": "pageview", "pathname": "/v3/docs"},
        {**base, "event_name": "Signup", "pathname": "/v3/docs", "props": '{"plan":"team"}'},
        {**base, "event_name": "Outbound Link: Click", "pathname": "/v3/docs",
         "props": f'{{"url":"{site.url("/partner", "localhost")}"}}'},
    ]
    assert [{k: v for k, v in r.items() if k != "browser"} for r in got] == expected


def test_plausible_analytics_tracker_0_4_hash_routing(serve: Live, browser: Browser) -> None:
    """With hashBasedRouting the tracker sends h: 1; the stored paths keep the fragment."""
    _, got = run(browser, serve, "v4h", pages.v4_page(serve.base + "/api/event", hash_routing=True),
                 pages.drive_v4_hash)
    assert [(r["event_name"], r["pathname"]) for r in got] == [
        ("pageview", "/v4h/app#/start"), ("pageview", "/v4h/app#/settings")]
