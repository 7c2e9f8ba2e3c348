"""The dashboard's filter bar, filter menu and segments in real headless Chromium against a real
``mallard serve`` (admin password set, so the Sites API's segments are usable once logged in) whose
lake holds 12 days of generated traffic with sources, UTM tags, Signup events carrying a ``plan``
property, and a Signup goal.

Checked: an event or goal filter means "the visitors who did X" (the cards, the chart's series and the
panels count those visits, their pageviews too: on main the Pageviews card said 0 next to 3 views per
visit); the menu adds each kind of filter, and the cards and the Pages panel then equal the JSON API's
under it; the URL holds the exact filters (a bookmark restores them, the back button works); a segment
is saved from the current filters, applied (in the URL) and deleted through the Sites API; the bar
stays in view on scroll; nothing overflows a 390 px phone with the menu open; no console error anywhere.

Screenshots go to ``test-artifacts/dashboard/`` (git-ignored).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import mallard

from ..chromium import UA, chromium, close, watch
from .conftest import ROOT, Live, serving
from .dashpage import log_in, login_cookies

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

SITE = "filters.example"
PASSWORD = "a long enough dashboard password"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
PAGES = ["/", "/pricing", "/docs", "/blog/a", "/blog/b"]
REFERRERS = ["", "https://www.google.com/", "https://news.ycombinator.com/", "https://duck.com/"]
DID_SIGNUP = [["has_done", ["is", "event:name", ["Signup"]]]]


def _fill(data_dir: Path, now: datetime) -> None:
    gen = random.Random(7)
    m = mallard.Mallard(data_dir=data_dir)
    try:
        for back in range(12):
            for v in range(gen.randint(4, 10)):
                at = now - timedelta(days=back, hours=1, minutes=gen.randint(0, 300))
                ua = f"Mozilla/5.0 (X11; Linux x86_64; rv:{100 + v}.0) Gecko/20100101 Firefox/{100 + v}.0"
                ip, ref = f"10.{back}.{v}.1", gen.choice(REFERRERS)
                utm = gen.choice(["", "?utm_source=newsletter", "?utm_source=mastodon"])
                for i in range(gen.choice([1, 2, 3, 4])):
                    path = gen.choice(PAGES) + (utm if i == 0 else "")
                    m.track("pageview", site=SITE, url=f"https://{SITE}{path}",
                            ip=ip, user_agent=ua, referrer=ref or None, timestamp=at + timedelta(minutes=i))
                if v % 3 == 0:
                    m.track("Signup", site=SITE, url=f"https://{SITE}/signup", ip=ip, user_agent=ua,
                            props={"plan": gen.choice(["pro", "free"])}, timestamp=at + timedelta(minutes=5))
        m.flush()
        m.queries.goals.add(SITE, event_name="Signup")
    finally:
        m.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from serving("serve", tmp_path_factory, "dashfilters", env={"MALLARD_ADMIN_PASSWORD": PASSWORD},
                       fill=lambda data_dir: _fill(data_dir, datetime.now(UTC)))


@pytest.fixture(scope="module")
def cookies(server: Live) -> dict[str, str]:
    return login_cookies(server, PASSWORD)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


def _context(browser: Browser, server: Live, cookies: dict[str, str], width: int) -> Any:
    context = browser.new_context(user_agent=UA, viewport={"width": width, "height": 800})
    log_in(context, server, cookies)
    return context


@pytest.fixture
def page(browser: Browser, server: Live, cookies: dict[str, str],
         request: pytest.FixtureRequest) -> Iterator[Page]:
    """A logged-in page at 1280×800; every console error or page error fails the test."""
    context = _context(browser, server, cookies, 1280)
    p = context.new_page()
    errors = watch(p)
    try:
        yield p
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        p.screenshot(path=str(ARTIFACTS / f"filters-{request.node.name}.png"), full_page=True)
        assert not errors, errors
    finally:
        close(context)


def api(server: Live, cookies: dict[str, str], path: str, filters: object = None, **params: str) -> Any:
    if filters is not None:
        params["filters"] = json.dumps(filters)
    r = httpx.get(server.base + path, params={"site_id": SITE, "period": "30d", **params},
                  cookies=cookies, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


SETTLED = """() => {
  const cards = document.querySelector('section.cards');
  const pages = [...document.querySelectorAll('section.panel')].find(
    (s) => s.querySelector('h2') && s.querySelector('h2').textContent === 'Pages');
  return !!cards && !cards.classList.contains('is-loading') && !!pages
    && !pages.classList.contains('is-loading') && !!pages.querySelector('table, p.muted')
    && !document.querySelector('section[aria-label=Chart].is-loading');
}"""


def settled(page: Page) -> None:
    """Wait until the cards and every top panel have their answer."""
    page.wait_for_function(SETTLED, timeout=20_000)


def url_filters(page: Page) -> tuple[list[str], list[str]]:
    q = parse_qs(urlsplit(page.url).query)
    return q.get("filters", []), q.get("segment", [])


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def expect_url(page: Page, filters: list[str], segment: list[str]) -> None:
    """Wait until the page's URL holds ``filters`` and ``segment`` (it is written after a render)."""
    page.wait_for_function("""([f, s]) => { const q = new URLSearchParams(location.search);
      return JSON.stringify(q.getAll('filters')) === JSON.stringify(f)
        && JSON.stringify(q.getAll('segment')) === JSON.stringify(s); }""", arg=[filters, segment])


def card(page: Page, metric: str) -> str:
    return page.locator(f"button.card[data-metric='{metric}'] .card-value").inner_text()


def pages_panel(page: Page) -> dict[str, tuple[str, str]]:
    rows = page.locator("section.panel:has(h2:text-is('Pages')) tbody tr")
    out = {}
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td")
        out[cells.nth(0).inner_text().strip()] = (cells.nth(1).inner_text(), cells.nth(2).inner_text())
    return out


def assert_matches_api(page: Page, server: Live, cookies: dict[str, str], filters: object) -> None:
    main = api(server, cookies, "/api/stats/main", filters)
    assert card(page, "visitors") == f"{main['unique_visitors']:,}"
    assert card(page, "pageviews") == f"{main['total_pageviews']:,}"
    assert card(page, "visits") == f"{main['total_sessions']:,}"
    assert card(page, "views_per_visit") == f"{main['views_per_visit']:.2f}"
    rows = api(server, cookies, "/api/stats/breakdown/pages", filters, limit="10")
    assert pages_panel(page) == {r["value"]: (f"{r['visitors']:,}", f"{r['pageviews']:,}") for r in rows}


def test_an_event_filter_counts_the_visits_that_did_it(server: Live, cookies: dict[str, str],
                                                       page: Page) -> None:
    page.goto(f"{server.base}/?site={SITE}&period=30d&filters=event==Signup")  # an old bookmark's form
    settled(page)
    main = api(server, cookies, "/api/stats/main", DID_SIGNUP)
    assert main["total_pageviews"] > 0
    assert main["total_pageviews"] == pytest.approx(main["views_per_visit"] * main["total_sessions"])
    assert_matches_api(page, server, cookies, DID_SIGNUP)
    assert page.locator(".filter-chip").inner_text().replace("\n", " ").startswith("Event is Signup")
    # the chart's series are those visits' too
    series = api(server, cookies, "/api/stats/timeseries", DID_SIGNUP)
    assert sum(r["pageviews"] for r in series) == main["total_pageviews"]


def _add(page: Page, dim: str, op: str, values: list[str], *, suggested: bool, key: str = "") -> None:
    page.get_by_role("button", name="+ Filter").click()
    menu = page.get_by_role("dialog", name="Add a filter")
    menu.get_by_label("Dimension").select_option(dim)
    if key:
        menu.get_by_label("Property key").fill(key)
    menu.get_by_label("Operator").select_option(op)
    for value in values:
        if suggested:  # typed in part, then picked from the data's suggestions
            menu.get_by_label("Value", exact=True).fill(value[:3])
            menu.locator("button.suggestion").filter(
                has=page.locator(".row-text", has_text=re.compile(f"^{re.escape(value)}$"))).click()
        else:
            menu.get_by_label("Value", exact=True).fill(value)
            menu.get_by_label("Value", exact=True).press("Enter")
    menu.locator("button[type=submit]").click()
    page.get_by_role("dialog", name="Add a filter").wait_for(state="detached")


# (menu dimension, operator, values, picked from suggestions, property key, URL form, v2 filters)
KINDS = [
    ("pages", "==", ["/pricing", "/docs"], True, "", "pages==/pricing|/docs",
     [["is", "event:page", ["/pricing", "/docs"]]]),
    ("sources", "!=", ["Google"], True, "", "sources!=Google", [["is_not", "visit:source", ["Google"]]]),
    ("utm-sources", "~=", ["news"], False, "", "utm-sources~=news",
     [["contains", "visit:utm_source", ["news"]]]),
    ("entry-pages", "==", ["/blog/a"], True, "", "entry-pages==/blog/a",
     [["is", "visit:entry_page", ["/blog/a"]]]),
    ("browsers", "==", ["Firefox"], True, "", "browsers==Firefox", [["is", "visit:browser", ["Firefox"]]]),
    ("goals", "==", ["Signup"], True, "", "goals==Signup", [["has_done", ["is", "event:goal", ["Signup"]]]]),
    ("events", "!=", ["Signup"], False, "", "events!=Signup",
     [["has_not_done", ["is", "event:name", ["Signup"]]]]),
    ("prop", "==", ["pro"], True, "plan", "prop:plan==pro", [["is", "event:props:plan", ["pro"]]]),
]


def test_the_menu_adds_each_kind_of_filter(server: Live, cookies: dict[str, str], page: Page) -> None:
    """Each kind in turn on one page: added through the menu, checked against the API, removed."""
    page.goto(f"{server.base}/?site={SITE}&period=30d&filters=browsers==Firefox")
    settled(page)
    page.get_by_role("button", name="+ Filter").click()
    menu = page.get_by_role("dialog", name="Add a filter")
    # focus moves to the Dimension select once the menu has rendered (polled: the click returns first)
    page.wait_for_function("() => document.activeElement?.getAttribute('aria-label') === 'Dimension'",
                           timeout=10_000)
    menu.get_by_label("Value", exact=True).fill("/")
    menu.locator("button.suggestion").first.wait_for()
    shot(page, "filters-menu-open")
    menu.get_by_label("Value", exact=True).press("Escape")  # closes the menu, keeps the filters
    menu.wait_for(state="detached")
    assert page.locator(".filter-chip").count() == 1
    page.locator(".filter-chip .chip-x").click()
    expect_url(page, [], [])
    settled(page)
    for dim, op, values, suggested, key, form, v2 in KINDS:
        _add(page, dim, op, values, suggested=suggested, key=key)
        expect_url(page, [form], [])
        settled(page)
        assert_matches_api(page, server, cookies, v2)
        page.locator(".filter-chip .chip-x").click()
        expect_url(page, [], [])
        settled(page)


def test_a_value_picked_then_applied_at_once_is_the_one_saved(server: Live, page: Page) -> None:
    """A suggestion clicked, then Apply and Enter in the same task (before the menu renders again; a
    loaded machine left that much time between the test's own two clicks): the picked value is saved,
    not the text typed before it (the handlers read the menu's state as of the last event)."""
    page.goto(f"{server.base}/?site={SITE}&period=30d")
    settled(page)
    for how in ("click", "enter"):
        page.get_by_role("button", name="+ Filter").click()
        menu = page.get_by_role("dialog", name="Add a filter")
        menu.get_by_label("Dimension").select_option("browsers")
        menu.get_by_label("Value", exact=True).fill("Fir")
        menu.locator("button.suggestion").filter(has=page.locator(".row-text", has_text="Firefox")).wait_for()
        page.evaluate("""(how) => {
          const menu = document.querySelector('form.filter-menu');
          [...menu.querySelectorAll('button.suggestion')]
            .find((b) => b.querySelector('.row-text').textContent === 'Firefox').click();
          if (how === 'click') menu.querySelector('button[type=submit]').click();
          else menu.querySelector('input[aria-label=Value]').dispatchEvent(
            new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
          if (how === 'enter') menu.requestSubmit();
        }""", how)
        page.get_by_role("dialog", name="Add a filter").wait_for(state="detached")
        expect_url(page, ["browsers==Firefox"], [])
        settled(page)
        page.locator(".filter-chip .chip-x").click()
        expect_url(page, [], [])
        settled(page)


def test_the_url_restores_the_filters_and_back_undoes_them(server: Live, cookies: dict[str, str],
                                                           page: Page) -> None:
    form = "pages==/a%7Cb|/docs;sources!=Google;prop:plan~=pr"
    page.goto(f"{server.base}/?site={SITE}&period=30d&filters={form.replace('%', '%25')}")
    settled(page)
    chips = page.locator(".filter-chip .chip-main").all_inner_texts()
    assert [c.replace("\n", " ") for c in chips] == [
        "Page is /a|b or /docs", "Source is not Google", "Property plan contains pr"]
    expect_url(page, [form], [])
    _add(page, "countries", "==", ["DE"], suggested=False)
    expect_url(page, [form + ";countries==DE"], [])
    page.go_back()
    page.wait_for_function("() => document.querySelectorAll('.filter-chip').length === 3")
    expect_url(page, [form], [])
    # the bar stays in view when the page scrolls (a row of the sticky header)
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function("() => window.scrollY > 200")
    box = page.locator(".filterbar").bounding_box()
    assert box is not None and 0 <= box["y"] < 120, box
    page.get_by_role("button", name="Remove filter: Source is not Google").click()
    expect_url(page, ["pages==/a%7Cb|/docs;prop:plan~=pr"], [])
    page.go_back()
    page.wait_for_function("() => document.querySelectorAll('.filter-chip').length === 3")


def test_a_segment_is_saved_applied_and_deleted(server: Live, cookies: dict[str, str], page: Page) -> None:
    page.goto(f"{server.base}/?site={SITE}&period=30d&filters=events==Signup;sources==Google")
    settled(page)
    page.get_by_role("button", name="Segments").click()
    menu = page.get_by_role("dialog", name="Segments")
    menu.get_by_text("No saved segment yet.").wait_for()
    menu.get_by_label("Segment name").fill("Googlers who signed up")
    menu.get_by_role("button", name="Save filters as segment").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('segment')")
    listed = api(server, cookies, "/api/v1/sites/segments")["segments"]
    assert [(s["name"], s["segment_data"]["filters"]) for s in listed] == [(
        "Googlers who signed up", [*DID_SIGNUP, ["is", "visit:source", ["Google"]]])]
    seg = str(listed[0]["id"])
    assert url_filters(page)[1] == [seg]
    # only the segment: the filters removed, the numbers are the segment's
    page.get_by_role("button", name="Remove filter: Event is Signup").click()
    page.wait_for_function("() => document.querySelectorAll('.filter-chip').length === 1")
    page.get_by_role("button", name="Remove filter: Source is Google").click()
    page.wait_for_function("() => !new URLSearchParams(location.search).has('filters')")
    expect_url(page, [], [seg])
    settled(page)
    chip = page.locator(".segment-chip").inner_text().replace("\n", " ")
    assert chip.startswith("Segment Googlers who signed up"), chip
    assert_matches_api(page, server, cookies, [["is", "segment", [int(seg)]]])
    page.reload()  # a bookmark restores the segment
    settled(page)
    assert_matches_api(page, server, cookies, [["is", "segment", [int(seg)]]])
    page.get_by_role("button", name="Segments").click()
    shot(page, "filters-segments-menu")
    page.get_by_role("button", name="Delete segment Googlers who signed up").click()
    page.get_by_role("dialog", name="Segments").get_by_text("No saved segment yet.").wait_for()
    assert api(server, cookies, "/api/v1/sites/segments")["segments"] == []
    expect_url(page, [], [])


def test_no_horizontal_overflow_on_a_phone_with_the_menu_open(server: Live, cookies: dict[str, str],
                                                              browser: Browser) -> None:
    context = _context(browser, server, cookies, 390)
    p = context.new_page()
    errors = watch(p)
    try:
        p.goto(f"{server.base}/?site={SITE}&period=30d&filters=pages==/pricing|/docs|/blog/a;sources!=Google")
        settled(p)
        p.get_by_role("button", name="+ Filter").click()
        p.get_by_role("dialog", name="Add a filter").get_by_label("Value", exact=True).fill("/")
        p.locator("button.suggestion").first.wait_for(timeout=20_000)
        wide = p.evaluate("() => document.documentElement.scrollWidth")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        p.screenshot(path=str(ARTIFACTS / "filters-phone-menu.png"), full_page=True)
        assert wide <= 390, wide
        assert not errors, errors
    finally:
        close(context)
