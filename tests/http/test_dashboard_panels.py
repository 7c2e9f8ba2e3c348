"""The dashboard's breakdown panels, goal conversions, custom properties, the chart's interval switcher
and the year-over-year comparison, in real headless Chromium against a real ``mallard serve`` whose
lake holds three weeks of generated traffic (with GeoIP from a small test database, UTM tags, custom
properties and revenue in two currencies) plus the same weeks a year earlier. Every number shown is
checked against the JSON API asked for the same range; no console error happens anywhere; nothing
overflows a 390 px phone.

Screenshots go to ``test-artifacts/dashboard/panels-*.png`` (git-ignored).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

import mallard
from tests.mmdb import write_city_db

from ..chromium import UA, chromium, close
from .conftest import Live, serving
from .dashpage import ARTIFACTS, api, open_dashboard, screened_page, v2, watched_page

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

pytestmark = pytest.mark.slow

SITE = "panels.example"
PAGES = ["/", "/pricing", "/docs", "/blog/a", "/signup"]
# network: (ISO code, country name, region, city); 10.9.x.x is in no network: an unknown place.
PLACES = {"10.1.0.0/16": ("DE", "Germany", "Bavaria", "Munich"),
          "10.2.0.0/16": ("FR", "France", "Île-de-France", "Paris"),
          "10.3.0.0/16": ("US", "United States", "California", "San Francisco")}
UTMS = ["utm_source=news&utm_medium=email&utm_campaign=spring&utm_content=hero&utm_term=ducks",
        "utm_source=google&utm_medium=cpc&utm_campaign=brand&utm_content=ad2&utm_term=analytics",
        "", "", ""]
REFERRERS = [None, "https://www.google.com/", "https://news.ycombinator.com/"]
SCREENS = [390, 820, 1440]
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/{v}.0.0.0 Safari/537.36")


def _visits(m: mallard.Mallard, gen: random.Random, now: datetime, days: int) -> None:
    for back in range(days):
        for v in range(gen.randint(4, 10)):
            net = gen.choice([1, 1, 2, 3, 9])
            ip = f"10.{net}.{back}.{v}"
            ua = gen.choice([FIREFOX, CHROME]).format(v=gen.choice([118, 119, 120]))
            at = now - timedelta(days=back, minutes=gen.randint(30, 600))
            query = gen.choice(UTMS)
            w = gen.choice(SCREENS)
            for i in range(gen.choice([1, 2, 3])):
                url = f"https://{SITE}{gen.choice(PAGES)}" + (f"?{query}" if query and i == 0 else "")
                m.track("pageview", site=SITE, url=url, ip=ip, user_agent=ua, screen_width=w,
                        referrer=gen.choice(REFERRERS) if i == 0 else None,
                        timestamp=at + timedelta(minutes=i),
                        props={"plan": gen.choice(["free", "pro"])} if i == 1 else None)
            if gen.random() < 0.3:
                m.track("Purchase", site=SITE, url=f"https://{SITE}/buy", ip=ip, user_agent=ua,
                        revenue=str(gen.choice([9, 19, 49])), currency="EUR",
                        timestamp=at + timedelta(minutes=5),
                        props={"plan": "pro", "color": gen.choice(["red", "blue"])})
            if gen.random() < 0.15:
                m.track("Donate", site=SITE, url=f"https://{SITE}/give", ip=ip, user_agent=ua,
                        revenue="5", currency="USD", timestamp=at + timedelta(minutes=6))


def _fill(data_dir: Path, now: datetime) -> None:
    geo = write_city_db(data_dir.parent / "panels-city.mmdb", {
        net: {"country": {"iso_code": code, "names": {"en": name}},
              "subdivisions": [{"names": {"en": region}}], "city": {"names": {"en": city}}}
        for net, (code, name, region, city) in PLACES.items()})
    m = mallard.Mallard(data_dir=data_dir, geoip_db_path=geo)
    try:
        m.goals.add(SITE, event_name="Purchase", currency="EUR")
        m.goals.add(SITE, event_name="Donate", currency="USD")
        m.goals.add(SITE, page_path="/signup")
        m.goals.add(SITE, event_name="Tip")  # paid in two currencies: no single revenue figure
        for n, currency in enumerate(("EUR", "USD")):
            m.track("Tip", site=SITE, url=f"https://{SITE}/tip", ip=f"10.1.99.{n}", user_agent=UA,
                    revenue="2", currency=currency, timestamp=now - timedelta(hours=2))
        gen = random.Random(7)
        _visits(m, gen, now, 21)
        _visits(m, gen, now - timedelta(days=365), 21)  # a year before: the year-over-year baseline
        m.flush()
    finally:
        m.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    now = datetime.now(UTC) - timedelta(minutes=1)
    yield from serving("serve", tmp_path_factory, "dashpanels", fill=lambda d: _fill(d, now))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page at 1280×900; every console error or page error fails the test; a screenshot is saved."""
    yield from screened_page(browser, f"panels-{request.node.name}", height=900)


def panel(page: Page, title: str) -> Locator:
    return page.locator("section.panel", has=page.get_by_role("heading", name=title, exact=True))


def rows_of(section: Locator) -> list[str]:
    """The table rows of a panel once it has stopped loading, whitespace collapsed."""
    section.locator("table tbody tr").first.wait_for(timeout=20_000)
    section.page.wait_for_function("el => el.getAttribute('aria-busy') === 'false'",
                                   arg=section.element_handle())
    return [" ".join(t.split()) for t in section.locator("table tbody tr").all_inner_texts()]


def loaded(section: Locator, action: Callable[[], None], fragment: str) -> None:
    """Do ``action`` and wait until the answer of the request whose URL holds ``fragment`` is shown."""
    with section.page.expect_response(lambda r: fragment in unquote(r.url), timeout=20_000):
        action()
    section.page.wait_for_function("el => el.getAttribute('aria-busy') === 'false'",
                                   arg=section.element_handle())


def pick_tab(section: Locator, name: str, dim: str) -> None:
    loaded(section, section.get_by_role("tab", name=name, exact=True).click, f"breakdown/{dim}?")


def expected(rows: list[dict[str, Any]], text: Any = str, second: str = "pageviews") -> list[str]:
    return [f"{text(r['value'])} {r['visitors']:,} {r[second]:,}" for r in rows]


def chart_of_view(live: Live, compared: str, **params: str) -> list[str]:
    """The chart's point titles for visitors as the view answers ``params``: the compared series is
    matched by position, as the chart draws it."""
    view = api(live, "/api/stats/view", **PERIOD, breakdowns="pages", **params)
    pairs = zip(view["timeseries"], view["previous_timeseries"], strict=False)
    return [f"{c['date']}: {c['visitors']:,} unique visitors; {p['date']}: {p['visitors']:,} ({compared})"
            for c, p in pairs]


def flag(code: str) -> str:
    return "".join(chr(0x1F1E6 + ord(c) - ord("A")) for c in code)


PERIOD = {"site_id": SITE, "period": "30d"}


def test_pages_and_sources_tabs_equal_the_api(server: Live, page: Page) -> None:
    """Entry and exit pages, the channel and all five UTM fields, each tab as its breakdown answers."""
    open_dashboard(page, server, f"site={SITE}&period=30d")
    for title, tabs in (("Pages", {"Entry pages": "entry-pages", "Exit pages": "exit-pages"}),
                        ("Sources", {"Channels": "channels", "UTM source": "utm-sources",
                                     "UTM medium": "utm-mediums", "UTM campaign": "utm-campaigns",
                                     "UTM content": "utm-contents", "UTM term": "utm-terms"})):
        section = panel(page, title)
        for label, dim in tabs.items():
            pick_tab(section, label, dim)
            want = expected(api(server, f"/api/stats/breakdown/{dim}", **PERIOD, limit="10"))
            assert rows_of(section) == want, (label, want)
    terms = {r["value"] for r in api(server, "/api/stats/breakdown/utm-terms", **PERIOD)}
    assert {"ducks", "analytics"} <= terms


def test_tabs_move_with_the_arrow_keys(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=30d")
    section = panel(page, "Locations")
    section.get_by_role("tab", name="Countries").focus()
    page.keyboard.press("ArrowRight")
    assert section.get_by_role("tab", name="Regions").get_attribute("aria-selected") == "true"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # wraps to the last tab
    assert section.get_by_role("tab", name="Cities").get_attribute("aria-selected") == "true"
    assert page.evaluate("() => document.activeElement.textContent") == "Cities"


def test_locations_show_flags_names_and_unknown_places(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=30d")
    section = panel(page, "Locations")
    names = {code: name for code, name, _, _ in PLACES.values()}
    countries = api(server, "/api/stats/breakdown/countries", **PERIOD, limit="10")
    assert {r["value"] for r in countries} == {*names, "(unknown)"}
    assert rows_of(section) == expected(
        countries, lambda v: "(unknown)" if v == "(unknown)" else f"{flag(v)} {names[v]}")
    assert section.locator("tbody .unknown").count() == 1  # one muted row, not a wall of them
    for label, dim in (("Regions", "regions"), ("Cities", "cities")):
        pick_tab(section, label, dim)
        assert rows_of(section) == expected(api(server, f"/api/stats/breakdown/{dim}", **PERIOD, limit="10"))
    # Only visitors from unknown places: one line instead of a table of "(unknown)".
    page.goto(f"{server.base}/?site={SITE}&period=30d&filters=country==(unknown)")
    section = panel(page, "Locations")
    line = section.locator(".unknown-only")
    line.wait_for(timeout=20_000)
    only = api(server, "/api/stats/breakdown/countries", **PERIOD, filters="country==(unknown)")
    assert [r["value"] for r in only] == ["(unknown)"]
    assert f"({only[0]['visitors']:,})" in line.inner_text()


def test_devices_drill_down_to_versions_and_screen_sizes(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=30d")
    section = panel(page, "Devices")
    browsers = api(server, "/api/stats/breakdown/browsers", **PERIOD, limit="10")
    assert rows_of(section) == expected(browsers)
    drill = section.get_by_role("button", name="Firefox versions")
    loaded(section, drill.click, "breakdown/browser-versions?")
    section.get_by_text("Firefox versions", exact=True).wait_for(timeout=10_000)
    versions = api(server, "/api/stats/breakdown/browser-versions", **PERIOD, limit="10",
                   filters="browser==Firefox")
    assert {r["value"] for r in versions} == {"118.0", "119.0", "120.0"}
    assert rows_of(section) == expected(versions)
    page.screenshot(path=str(ARTIFACTS / "panels-browser-versions.png"), full_page=True)
    section.get_by_role("button", name="← Browsers").click()
    assert rows_of(section) == expected(browsers)
    pick_tab(section, "OS", "os")
    section.get_by_role("button", name="Linux versions").wait_for(timeout=10_000)
    pick_tab(section, "Screen sizes", "screen-sizes")
    sizes = api(server, "/api/stats/breakdown/screen-sizes", **PERIOD, limit="10")
    assert rows_of(section) == expected(sizes, lambda v: v if v == "(unknown)" else f"{v} px")


def test_goal_conversions_equal_the_v2_answer(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=30d")
    view = api(server, "/api/stats/view", **PERIOD, breakdowns="pages")
    rng = [view["range"]["start_date"], view["range"]["end_date"]]
    metrics = ["visitors", "events", "conversion_rate", "total_revenue", "average_revenue"]
    body = v2(server, {"site_id": SITE, "date_range": rng, "dimensions": ["event:goal"], "metrics": metrics})
    section = panel(page, "Goal conversions")
    section.scroll_into_view_if_needed()
    shown = rows_of(section)

    def money(total: dict[str, Any] | None, average: dict[str, Any]) -> str:
        return "—" if total is None else f"{total['short']} avg {average['short']}"
    want = [f"{r['dimensions'][0]} {r['metrics'][0]:,} {r['metrics'][1]:,} {r['metrics'][2]:.1f}% "
            f"{money(r['metrics'][3], r['metrics'][4])}" for r in body["results"]]
    assert shown == want
    goals = {r["dimensions"][0]: r for r in body["results"]}
    assert set(goals) == {"Purchase", "Donate", "Visit /signup", "Tip"}
    # Each goal's revenue in its own currency, never added up.
    assert goals["Purchase"]["metrics"][3]["currency"] == "EUR"
    assert goals["Donate"]["metrics"][3]["currency"] == "USD"
    assert goals["Visit /signup"]["metrics"][3] is None
    assert "€" in shown[[r["dimensions"][0] for r in body["results"]].index("Purchase")]
    assert section.evaluate("e => e.scrollWidth <= e.clientWidth")  # six columns fit a third of the page
    assert goals["Tip"]["metrics"][3] is None  # EUR and USD: no sum
    warning = body["meta"]["metric_warnings"]["total_revenue"]["warning"]
    assert warning in section.locator(".revenue-note").inner_text()


def test_properties_panel_lists_keys_and_their_values(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=30d")
    keys = api(server, "/api/stats/properties", **PERIOD)["properties"]
    assert [k["key"] for k in keys] == ["plan", "color"]
    section = panel(page, "Properties")
    section.scroll_into_view_if_needed()
    picker = section.get_by_label("Property")
    picker.wait_for(timeout=20_000)
    assert picker.locator("option").all_inner_texts() == ["plan", "color"]
    for key in ("plan", "color"):
        if key != "plan":
            loaded(section, lambda k=key: picker.select_option(k), f"event:props:{key}?")
        values = api(server, f"/api/stats/breakdown/event:props:{key}", **PERIOD, limit="10",
                     filters=f"event:props:{key}!=(unknown)")
        assert rows_of(section) == expected(values, second="events"), key
        assert sum(r["visitors"] for r in values) >= next(k["visitors"] for k in keys if k["key"] == key)
    # A value's click filters every panel by it (the filter is in the URL).
    section.get_by_role("button", name="red", exact=True).click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('filters') === "
                           "'prop:color==red'")
    main = api(server, "/api/stats/main", **PERIOD, filters="event:props:color==red")
    page.wait_for_function("n => document.querySelector(\"button.card[data-metric='visitors'] .card-value\")"
                           "?.textContent === n", arg=f"{main['unique_visitors']:,}")


def _chart_titles(page: Page) -> list[str]:
    return page.locator("svg.chart rect.hit title").all_text_contents()


def _wait_chart(page: Page, n: int) -> None:
    page.wait_for_function("n => document.querySelectorAll('svg.chart rect.hit title').length === n && "
                           "!document.querySelector('section[aria-label=Chart].is-loading')", arg=n)


def test_the_interval_switcher_rebuckets_the_chart_and_stays_in_the_url(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=30d")
    chart = page.locator("section[aria-label=Chart]")
    assert chart.get_by_role("tab").all_inner_texts() == ["Days", "Weeks"]
    chart.get_by_role("tab", name="Weeks").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('interval') === 'week'")
    want = chart_of_view(server, "previous period", interval="week", compare="previous_period")
    view = api(server, "/api/stats/view", **PERIOD, breakdowns="pages")
    _wait_chart(page, len(want))
    assert _chart_titles(page) == want
    # Another metric is asked of the v2 API with the same buckets.
    page.locator("button.card[data-metric='visits']").click()
    body = v2(server, {"site_id": SITE, "metrics": ["visits"], "dimensions": ["time:week"],
                       "date_range": [view["range"]["start_date"], view["range"]["end_date"]],
                       "include": {"comparisons": {"mode": "previous_period"}}})
    want = [f"{r['dimensions'][0]}: {r['metrics'][0]:,} visits; {r['comparison']['dimensions'][0]}: "
            f"{r['comparison']['metrics'][0]:,} (previous period)" for r in body["results"]]
    page.wait_for_function("() => document.querySelector('svg.chart')?.getAttribute('aria-label')"
                           "?.startsWith('Visits per week, ')")
    _wait_chart(page, len(want))
    assert _chart_titles(page) == want
    page.reload()
    _wait_chart(page, len(want))
    assert chart.get_by_role("tab", name="Weeks").get_attribute("aria-selected") == "true"
    # A range that does not allow the URL's interval falls back to its default; 12 months offer months.
    page.goto(f"{server.base}/?site={SITE}&period=day&interval=week")
    page.locator("svg.chart").wait_for(timeout=20_000)
    assert chart.get_by_role("tab").count() == 0
    assert len(_chart_titles(page)) == 24 or ":00" in _chart_titles(page)[0]
    page.goto(f"{server.base}/?site={SITE}&period=12mo")
    chart.get_by_role("tab", name="Months").click()
    months = api(server, "/api/stats/timeseries", site_id=SITE, period="12mo", interval="month")
    _wait_chart(page, len(months))
    assert [t.split(":")[0] for t in _chart_titles(page)] == [r["date"] for r in months]


def test_year_over_year_compares_cards_and_chart_with_a_year_before(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=30d")
    page.get_by_role("button", name="Year over year").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('comparison') === "
                           "'year_over_year'")
    main = api(server, "/api/stats/main", **PERIOD, compare="year_over_year")
    cmp = main["comparison"]
    assert cmp["mode"] == "year_over_year" and cmp["unique_visitors"] > 0
    note = page.locator(".cards-note")
    page.wait_for_function("d => document.querySelector('.cards-note')?.textContent.includes(d)",
                           arg=cmp["start_date"])
    assert cmp["end_date"] in note.inner_text()
    shown = page.locator("button.card[data-metric='visitors'] .card-change").inner_text()
    c = cmp["change"]["unique_visitors"]
    assert shown == ("↑ " if c > 0 else "↓ " if c < 0 else "") + f"{abs(c):g}%"
    assert page.get_by_role("button", name="Year over year").get_attribute("aria-pressed") == "true"
    want = chart_of_view(server, "a year before", compare="year_over_year", interval="day")
    _wait_chart(page, len(want))
    assert _chart_titles(page) == want
    assert "A year before" in page.locator("section[aria-label=Chart] .legend").inner_text()
    page.get_by_role("button", name="Previous period").click()
    page.wait_for_function("() => !new URLSearchParams(location.search).has('comparison')")
    assert parse_qs(urlsplit(page.url).query)["period"] == ["30d"]


def test_no_horizontal_overflow_on_a_phone(server: Live, browser: Browser) -> None:
    context, p, errors = watched_page(browser, 390, 844)
    try:
        p.goto(f"{server.base}/?site={SITE}&period=30d")
        p.locator(".card-change").first.wait_for(timeout=20_000)
        for title in ("Goal conversions", "Properties"):  # panels load when scrolled into view
            panel(p, title).scroll_into_view_if_needed()
            panel(p, title).locator("tbody tr").first.wait_for(timeout=20_000)
        sources = panel(p, "Sources")
        sources.get_by_role("tab", name="UTM content").click()
        panel(p, "Devices").get_by_role("button", name="Firefox versions").click()
        panel(p, "Devices").locator(".drill").wait_for(timeout=10_000)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        p.screenshot(path=str(ARTIFACTS / "panels-phone.png"), full_page=True)
        # What this file's features add: none is wider than the phone or scrolls sideways inside.
        # (The page as a whole is not checked here: the funnel panel's own width is not this file's.)
        mine = [panel(p, t) for t in ("Sources", "Locations", "Devices", "Goal conversions", "Properties")]
        mine += [p.locator("section[aria-label=Chart]"), p.locator(".compare"), p.locator("section.cards")]
        for box in mine:
            right, inner, outer = box.evaluate("e => [e.getBoundingClientRect().right, e.scrollWidth, "
                                               "e.clientWidth]")
            assert right <= 390 and inner <= outer, (box, right, inner, outer)
        assert not errors, errors
    finally:
        close(context)
