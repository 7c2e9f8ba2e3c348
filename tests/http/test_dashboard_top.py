"""The top of the dashboard in real headless Chromium against a real ``mallard serve`` (time zone
Europe/Berlin) whose lake holds 16 days of generated traffic: the cards and their changes equal the JSON
API's, a card click puts its metric on the chart, the previous period is drawn behind the current one,
count axes have whole ticks, the realtime figure and view equal the realtime API, Plausible's keyboard
shortcuts change the period and the URL, the footer names the time zone, the first load is small once
compressed, nothing overflows a 390 px phone, and no console error happens anywhere.

Screenshots go to ``test-artifacts/dashboard/`` (git-ignored).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import mallard

from ..chromium import UA, chromium, close
from .conftest import Live, eventually, start, stop
from .dashpage import ARTIFACTS, api, open_dashboard, screened_page, v2

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

SITE = "top.example"
SMALL = "small.example"  # three visitors today: a chart whose peak is under 5
TZ = "Europe/Berlin"
FIRST_LOAD_BUDGET = 100 * 1024
PAGES = ["/", "/pricing", "/docs", "/blog/a", "/blog/b", "/signup"]
REFERRERS = ["", "", "https://www.google.com/", "https://news.ycombinator.com/", "https://duck.com/"]
CARDS = {"visitors": "unique_visitors", "pageviews": "total_pageviews", "visits": "total_sessions",
         "bounce_rate": "bounce_rate", "visit_duration": "avg_visit_duration_secs",
         "views_per_visit": "views_per_visit"}


def _fill(data_dir: Path, now: datetime) -> None:
    """16 days of seeded traffic (none in the last 10 minutes, so realtime is the test's own)."""
    gen = random.Random(11)
    m = mallard.Mallard(data_dir=data_dir, timezone=TZ)
    try:
        for back in range(16):
            for v in range(gen.randint(3, 14)):
                at = now - timedelta(days=back, minutes=gen.randint(10, 600))
                ua = f"Mozilla/5.0 (X11; Linux x86_64; rv:{100 + v}.0) Gecko/20100101 Firefox/{100 + v}.0"
                ip, ref = f"10.{back}.{v}.1", gen.choice(REFERRERS)
                for i in range(gen.choice([1, 1, 2, 3])):
                    m.track("pageview", site=SITE, url=f"https://{SITE}{gen.choice(PAGES)}", ip=ip,
                            user_agent=ua, referrer=ref or None, timestamp=at + timedelta(minutes=2 * i))
        for v in range(3):
            m.track("pageview", site=SMALL, url=f"https://{SMALL}/", ip=f"10.9.9.{v}",
                    user_agent=f"Mozilla/5.0 (X11; Linux x86_64) Firefox/{110 + v}.0",
                    timestamp=now - timedelta(minutes=30))
        m.flush()
    finally:
        m.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("dashtop") / "data"
    _fill(data_dir, datetime.now(UTC))
    live = start("serve", data_dir, env={"MALLARD_TIMEZONE": TZ})
    try:
        yield live
    finally:
        stop(live)
        assert "Traceback" not in live.logs(), live.logs()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page at 1280×800; every console error or page error fails the test; a screenshot is saved."""
    yield from screened_page(browser, request.node.name)


def open_chart(page: Page, live: Live, query: str) -> None:
    """Open the dashboard and wait for the chart's axis only (as any version of the page draws it)."""
    page.goto(f"{live.base}/?{query}")
    page.locator("svg.chart g.tick").first.wait_for(timeout=20_000)


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def change_text(change: float | None, points: bool) -> str:
    """What a card shows for a change (the dashboard's changeText)."""
    if change is None:
        return "—"
    size = f"{abs(change):.1f} pts" if points else f"{abs(change):g}%"
    return ("↑ " if change > 0 else "↓ " if change < 0 else "") + size


def test_cards_and_their_changes_equal_the_api(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=7d")
    main = api(server, "/api/stats/main", site_id=SITE, period="7d", compare="previous_period")
    cards = page.locator("section.cards button.card")
    assert cards.count() == len(CARDS)
    for metric, key in CARDS.items():
        card = page.locator(f"button.card[data-metric='{metric}']")
        shown = card.locator(".card-change").inner_text()
        assert shown == change_text(main["comparison"]["change"][key], key == "bounce_rate"), metric
    visitors = page.locator("button.card[data-metric='visitors'] .card-value").inner_text()
    assert visitors == f"{main['unique_visitors']:,}"
    pageviews = page.locator("button.card[data-metric='pageviews'] .card-value").inner_text()
    assert pageviews == f"{main['total_pageviews']:,}"
    # The same changes as the Stats API v2 reports for the same dates.
    view = api(server, "/api/stats/view", site_id=SITE, period="7d", breakdowns="pages")
    rng = [view["range"]["start_date"], view["range"]["end_date"]]
    body = v2(server, {"site_id": SITE, "metrics": ["visitors", "pageviews", "visits"], "date_range": rng,
                       "include": {"comparisons": {"mode": "previous_period"}}})
    assert body["results"][0]["comparison"]["change"] == [
        main["comparison"]["change"][CARDS[m]] for m in ("visitors", "pageviews", "visits")]


def _chart_rows(page: Page) -> list[str]:
    return page.locator("svg.chart rect.hit title").all_text_contents()


def test_the_chart_draws_the_previous_period_behind_the_current_one(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=7d")
    assert page.locator("svg.chart polyline.line.prev").count() == 1
    view = api(server, "/api/stats/view", site_id=SITE, period="7d", breakdowns="pages",
               compare="previous_period")
    cmp = view["main"]["comparison"]
    previous = api(server, "/api/stats/timeseries", site_id=SITE, start_date=cmp["start_date"],
                   end_date=cmp["end_date"])
    assert previous == view["previous_timeseries"]
    expected = [f"{cur['date']}: {cur['visitors']:,} unique visitors; {prev['date']}: {prev['visitors']:,} "
                "(previous period)" for cur, prev in zip(view["timeseries"], previous, strict=True)]
    assert _chart_rows(page) == expected


def test_a_card_click_puts_its_metric_on_the_chart(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=7d")
    with page.expect_request(lambda r: "api/v2/query" in r.url, timeout=20_000):
        page.locator("button.card[data-metric='visits']").click()
    # the URL follows in the app's effect, which may run after the chart's request went out
    page.wait_for_function("() => new URLSearchParams(location.search).get('metric') === 'visits'")
    assert query_of(page)["metric"] == ["visits"]
    assert page.locator("button.card[data-metric='visits']").get_attribute("aria-pressed") == "true"
    page.get_by_role("heading", name="Visits", exact=True).wait_for(timeout=20_000)
    page.wait_for_function("() => document.querySelector('svg.chart')?.getAttribute('aria-label')"
                           "?.startsWith('Visits per day, ')")
    view = api(server, "/api/stats/view", site_id=SITE, period="7d", breakdowns="pages")
    body = v2(server, {"site_id": SITE, "metrics": ["visits"], "dimensions": ["time:day"],
                       "date_range": [view["range"]["start_date"], view["range"]["end_date"]],
                       "include": {"comparisons": {"mode": "previous_period"}}})
    expected = [f"{r['dimensions'][0]}: {r['metrics'][0]:,} visits; {r['comparison']['dimensions'][0]}: "
                f"{r['comparison']['metrics'][0]:,} (previous period)" for r in body["results"]]
    page.wait_for_function("n => document.querySelectorAll('svg.chart rect.hit title').length === n",
                           arg=len(expected))
    assert _chart_rows(page) == expected
    page.reload()  # the metric is part of the URL
    page.get_by_role("heading", name="Visits", exact=True).wait_for(timeout=20_000)
    page.wait_for_function("n => document.querySelectorAll('svg.chart rect.hit title').length === n",
                           arg=len(expected))


def test_count_axes_have_whole_ticks(server: Live, page: Page) -> None:
    """Regression: with a peak of a few visitors the axis read 1.25, 2.5, 3.75."""
    open_chart(page, server, f"site={SMALL}&period=day")
    ticks = page.locator("svg.chart g.tick text").all_text_contents()
    assert len(ticks) >= 3 and all(t.replace(",", "").isdigit() for t in ticks), ticks
    assert ticks[0] == "0"


def test_the_footer_names_the_time_zone_the_api_answered_in(server: Live, page: Page) -> None:
    """Regression: the footer said "times are UTC" whatever the server's time zone."""
    open_chart(page, server, f"site={SITE}&period=7d")  # the footer comes with the view's answer
    footer = page.locator("footer").inner_text()
    assert TZ in footer and "UTC" not in footer, footer
    assert api(server, "/api/stats/view", site_id=SITE, period="7d", breakdowns="pages")["range"][
        "timezone"] == TZ


def _visit(live: Live, path: str, n: int) -> None:
    r = httpx.post(live.base + "/api/event", json={"d": SITE, "n": "pageview", "u": f"https://{SITE}{path}"},
                   headers={"User-Agent": f"Mozilla/5.0 (X11; Linux x86_64) Firefox/{140 + n}.0"}, timeout=30)
    assert r.status_code == 202, r.text


def test_realtime_figure_and_view_equal_the_api(server: Live, page: Page) -> None:
    for n, path in enumerate(["/live-a", "/live-a", "/live-b"]):
        _visit(server, path, n)
    eventually(lambda: api(server, "/api/stats/realtime", site_id=SITE)["visitors"] >= 3)
    open_dashboard(page, server, f"site={SITE}&period=7d")
    live = api(server, "/api/stats/realtime", site_id=SITE)
    figure = page.locator("button.live")
    assert figure.locator(".live-n").inner_text() == str(live["visitors"])
    figure.click()
    page.wait_for_url(lambda url: parse_qs(urlsplit(url).query).get("period") == ["realtime"], timeout=10_000)
    view = page.locator("section.realtime")
    view.locator(".rt-n").wait_for(timeout=20_000)
    assert view.locator(".rt-n").inner_text() == str(live["visitors"])
    pages = view.locator("section.panel", has=page.get_by_role("heading", name="Current pages"))
    shown = pages.locator("tbody tr").all_inner_texts()
    assert [" ".join(s.split()) for s in shown] == [f"{r['value']} {r['visitors']}" for r in live["pages"]]
    # Refreshed while open: a new visitor shows up without a reload (the view asks every 10 s).
    _visit(server, "/live-c", 9)
    page.locator("section.realtime").get_by_text("/live-c", exact=True).wait_for(timeout=40_000)
    # The header's figure comes from the same answer as the view's.
    assert figure.locator(".live-n").inner_text() == view.locator(".rt-n").inner_text()
    assert "(Europe/Berlin)" in view.inner_text()  # the site's time zone, as the view answer named it


def test_keyboard_shortcuts_change_the_period_and_the_url(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=30d&filters=pages==/pricing")
    for key, period in (("w", "7d"), ("d", "day"), ("m", "month"), ("y", "year"), ("l", "12mo"),
                        ("t", "30d"), ("n", "90d"), ("a", "all"), ("r", "realtime"), ("W", "7d")):
        page.keyboard.press(key)
        page.wait_for_function("p => new URLSearchParams(location.search).get('period') === p", arg=period)
        assert page.locator("select[aria-label='Period']").input_value() == period
    assert query_of(page)["filters"] == ["pages==/pricing"]
    page.keyboard.press("Escape")  # clears the filters, as Plausible's
    page.wait_for_function("() => !new URLSearchParams(location.search).has('filters')")
    page.keyboard.press("c")
    page.get_by_label("From (inclusive)").wait_for(timeout=10_000)
    # Ignored while typing in a field, and with a modifier.
    page.get_by_label("From (inclusive)").focus()
    page.keyboard.press("d")
    assert query_of(page)["period"] == ["7d"]
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("Alt+d")
    assert query_of(page)["period"] == ["7d"]


def test_the_first_screen_is_asked_once_with_its_panels(server: Live, page: Page) -> None:
    """On load the page asks the sign-in state once and the first view once, with the Goal conversions
    and Properties panels in it (boot.js asks them before the app renders; the app takes the answers):
    no separate goals or properties request. A card click (the same view) asks no view again; a period
    change asks a view without panels, and the panels ask for themselves; the reload button asks the
    view again."""
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.method + " " + r.url) if "/api/" in r.url else None)
    open_dashboard(page, server, f"site={SITE}&period=7d")
    page.wait_for_load_state("networkidle")
    views = [u for u in asked if "/api/stats/view?" in u]
    assert len(views) == 1 and parse_qs(urlsplit(views[0].split()[1]).query)["panels"] == ["goals,properties"]
    assert sum("/api/auth/status" in u for u in asked) == 1, asked
    assert not [u for u in asked if "/api/stats/properties" in u or u.startswith("POST ")], asked
    asked.clear()
    page.locator("button.card[data-metric='pageviews']").click()  # the same view: not asked again
    page.wait_for_function("() => new URLSearchParams(location.search).get('metric') === 'pageviews'")
    page.wait_for_timeout(1000)
    assert not [u for u in asked if "/api/stats/view?" in u], asked
    with page.expect_request(lambda r: "/api/stats/properties" in r.url and "period=30d" in r.url,
                             timeout=20_000), \
            page.expect_request(lambda r: "/api/stats/view?" in r.url and "period=30d" in r.url,
                                timeout=20_000) as view:
        page.keyboard.press("t")
    assert "panels" not in parse_qs(urlsplit(view.value.url).query), view.value.url
    # The reload button asks the view again too (it is outside the panels' Reload provider).
    with page.expect_request(lambda r: "/api/stats/view?" in r.url, timeout=20_000):
        page.get_by_role("button", name="Reload").click()


def test_first_load_is_under_100_kb_compressed(server: Live, page: Page) -> None:
    """Measured in Chromium: the encoded bytes of every file the page fetches (HTML, modules, CSS,
    vendor, icon), as they came over the wire."""
    done: list[Any] = []
    page.on("requestfinished", lambda r: done.append(r))
    open_dashboard(page, server, f"site={SITE}&period=7d")
    page.wait_for_load_state("networkidle")
    files = {r.url: r for r in done if "/api/" not in r.url}
    assert any(u.endswith("/ui/chart.js") for u in files) and any(u.endswith("style.css") for u in files)
    sizes = {u: r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"] for u, r in files.items()}
    encodings = {u: (r.response().headers.get("content-encoding") if r.response() else None)
                 for u, r in files.items()}
    assert all(encodings[u] in ("gzip", "br") for u in files if u.endswith((".js", ".css", "/"))), encodings
    total = sum(sizes.values())
    print(f"first load: {len(files)} files, {total} bytes on the wire, codings {set(encodings.values())}")
    assert total <= FIRST_LOAD_BUDGET, sizes


@pytest.mark.parametrize("period", ["7d", "realtime"])
def test_no_horizontal_overflow_on_a_phone(server: Live, browser: Browser, period: str) -> None:
    context = browser.new_context(user_agent=UA, viewport={"width": 390, "height": 844})
    p = context.new_page()
    errors: list[str] = []
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        p.goto(f"{server.base}/?site={SITE}&period={period}")
        p.locator(".card-change, section.realtime .rt-n").first.wait_for(timeout=20_000)
        wide = p.evaluate("() => document.documentElement.scrollWidth")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        p.screenshot(path=str(ARTIFACTS / f"phone-{period}.png"), full_page=True)
        assert wide <= 390, wide
        assert not errors, errors
    finally:
        close(context)
