"""Accessibility of the dashboard, in real headless Chromium against a real ``mallard serve`` whose lake
holds three weeks of generated traffic (goals, custom properties, revenue, user ids, signups, a few visitors
of the last minutes): axe-core finds no "serious" or "critical" violation of WCAG 2.0/2.1 A and AA in any
view, in the light and in the dark colour scheme, and the chart's points are reachable by keyboard, each
read out with the figures of the JSON API.

axe-core is the npm package pinned in tests/npm/package-lock.json (``npm ci --prefix tests/npm``, which
scripts/test runs); its ``axe.min.js`` is read from disk, nothing is downloaded here. Without it the tests
skip, and fail under ``CI=true``. The dashboard's CSP forbids inline scripts, so the contexts that inject axe
bypass the CSP (Chromium's ``bypass_csp``); the CSP itself is checked by the other dashboard tests.

Screenshots go to ``test-artifacts/dashboard/a11y-<view>-<scheme>.png`` (git-ignored).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import mallard

from ..chromium import UA, checked_page, chromium, close, watch
from .conftest import ROOT, Live, serving
from .dashpage import ARTIFACTS, log_in, login_cookies

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

SITE = "a11y.example"
FIRST = "first.example"  # configured on the empty server, no event yet
PASSWORD = "mallard-a11y-test-password"
AXE = ROOT / "tests" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SCHEMES = ["light", "dark"]
PAGES = ["/", "/pricing", "/docs", "/blog/a", "/signup"]
STEPS = "page:/,page:/pricing,event:Signup"
UTMS = ["utm_source=news&utm_medium=email&utm_campaign=spring", "", ""]
REFERRERS = [None, "https://www.google.com/", "https://news.ycombinator.com/"]
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"


def _fill(data_dir: Path, now: datetime) -> None:
    """Three weeks of seeded visits (a third identified), signups with a plan, purchases with revenue, and
    three visitors of the last minutes (the realtime view)."""
    gen = random.Random(11)
    m = mallard.Mallard(data_dir=data_dir)
    try:
        m.goals.add(SITE, event_name="Purchase", currency="EUR")
        m.goals.add(SITE, event_name="Signup")
        m.goals.add(SITE, page_path="/pricing")
        for back in range(21):
            for v in range(gen.randint(4, 9)):
                ip = f"10.{back}.{v}.1"
                ua = FIREFOX.format(v=gen.choice([118, 119, 120]))
                user = f"user-{v}" if v % 3 == 0 else None
                at = now - timedelta(days=back, minutes=gen.randint(30, 600))
                query = gen.choice(UTMS)
                path = gen.choice(PAGES[:3])
                for i in range(gen.randint(1, 4)):
                    url = f"https://{SITE}{path}" + (f"?{query}" if query and i == 0 else "")
                    m.track("pageview", site=SITE, url=url, ip=ip, user_agent=ua, user_id=user,
                            screen_width=gen.choice([390, 1440]), timestamp=at + timedelta(minutes=i),
                            referrer=gen.choice(REFERRERS) if i == 0 else None)
                    path = gen.choice(PAGES)
                if gen.random() < 0.4:
                    m.track("Signup", site=SITE, url=f"https://{SITE}/signup", ip=ip, user_agent=ua,
                            user_id=user, props={"plan": gen.choice(["free", "pro"])},
                            timestamp=at + timedelta(minutes=5))
                if gen.random() < 0.2:
                    m.track("Purchase", site=SITE, url=f"https://{SITE}/buy", ip=ip, user_agent=ua,
                            revenue=str(gen.choice([9, 49])), currency="EUR", user_id=user,
                            props={"plan": "pro"}, timestamp=at + timedelta(minutes=6))
        for v in range(3):
            m.track("pageview", site=SITE, url=f"https://{SITE}{PAGES[v]}", ip=f"10.99.0.{v}",
                    user_agent=FIREFOX.format(v=121), timestamp=now - timedelta(minutes=1))
        m.flush()
    finally:
        m.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """``mallard serve`` with an admin password over SITE's traffic."""
    yield from serving("serve", tmp_path_factory, "dasha11y", env={"MALLARD_ADMIN_PASSWORD": PASSWORD},
                       fill=lambda data_dir: _fill(data_dir, datetime.now(UTC)))


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """``mallard serve`` with no event and no password (open mode), FIRST configured: the first-run page."""
    yield from serving("serve", tmp_path_factory, "dasha11yempty", env={"MALLARD_SITE_IDS": FIRST})


@pytest.fixture(scope="module")
def axe_source() -> Path:
    if not AXE.exists():
        message = f"axe-core is not installed ({AXE} missing): run `npm ci --prefix tests/npm`"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (required when CI=true)")
        pytest.skip(message)
    return AXE


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="module")
def cookies(server: Live) -> dict[str, str]:
    return login_cookies(server, PASSWORD)


@pytest.fixture(params=SCHEMES)
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Audit:
    """A page of a fresh context in ``scheme``, its console errors collected; ``check(name)`` runs axe
    over the page as it is, saves a screenshot and fails on a serious or critical violation."""

    def __init__(self, browser: Browser, scheme: str, login: Live | None, cookies: dict[str, str]) -> None:
        self.scheme = scheme
        self.context = browser.new_context(user_agent=UA, viewport={"width": 1280, "height": 900},
                                           color_scheme=scheme,  # type: ignore[arg-type]
                                           bypass_csp=True)  # for axe's script tag only
        if login is not None:
            log_in(self.context, login, cookies)
        self.page = self.context.new_page()
        self.errors = watch(self.page, responses=False)

    def check(self, name: str) -> None:
        page = self.page
        if not page.evaluate("() => !!window.axe"):
            page.add_script_tag(path=str(AXE))  # read from disk: nothing is downloaded
        results = page.evaluate("""(tags) => axe.run(document, {
          runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })""", TAGS)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"a11y-{name}-{self.scheme}.png"), full_page=True)
        found = []
        for v in results["violations"]:
            if v["impact"] in ("serious", "critical"):
                nodes = v["nodes"]
                targets = ", ".join(" ".join(map(str, n["target"])) for n in nodes[:4])
                more = f" (+{len(nodes) - 4} more)" if len(nodes) > 4 else ""
                found.append(f"{v['id']} ({v['impact']}, {len(nodes)} nodes): {targets}{more}")
        assert not found, f"axe-core, {name} ({self.scheme}):\n" + "\n".join(found)


@pytest.fixture
def audit(axe_source: Path, browser: Browser, cookies: dict[str, str],
          scheme: str) -> Iterator[Callable[..., Audit]]:
    """``audit(login=None)``: a fresh :class:`Audit` (logged in to ``login`` when given); a console
    error on any of them fails the test."""
    made: list[Audit] = []

    def make(login: Live | None = None) -> Audit:
        a = Audit(browser, scheme, login, cookies)
        made.append(a)
        return a

    try:
        yield make
        for a in made:
            assert not a.errors, a.errors
    finally:
        for a in made:
            close(a.context)


# Polled: scrolls the first panel still loading (or not yet asked: lazy panels ask when shown) into view;
# true once every panel and the chart have their answer and no transition runs (the loading fade would
# change colours under axe).
SETTLED = """() => {
  const busy = [...document.querySelectorAll('main section.panel')].filter(
    (s) => s.getAttribute('aria-busy') === 'true' || s.classList.contains('is-loading'));
  if (busy.length) { busy[0].scrollIntoView(); return false; }
  return !!document.querySelector('main section.panel') && !document.querySelector('.is-loading')
    && document.getAnimations().length === 0;
}"""
BUSY = """() => [...document.querySelectorAll('main section.panel')].filter(
  (s) => s.getAttribute('aria-busy') === 'true' || s.classList.contains('is-loading'))
  .map((s) => s.querySelector('h2')?.textContent || s.getAttribute('aria-label'))"""


def settled(page: Page) -> None:
    """Wait (bounded) until every panel of the page has loaded; the ones that did not are named."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(SETTLED, timeout=45_000, polling=200)
    except PlaywrightTimeout:
        raise AssertionError(f"panels still loading: {page.evaluate(BUSY)}") from None
    page.evaluate("() => window.scrollTo(0, 0)")


def open_dashboard(page: Page, live: Live, query: str) -> None:
    page.goto(f"{live.base}/?{query}")
    page.locator(".card-change").first.wait_for(timeout=20_000)
    settled(page)


def test_the_dashboard_with_every_panel(server: Live, audit: Callable[..., Audit]) -> None:
    a = audit(login=server)
    open_dashboard(a.page, server, f"site={SITE}&period=30d&steps={STEPS}")
    for title in ("Goal conversions", "Properties", "Funnel", "Retention", "Sequences", "Flow"):
        a.page.get_by_role("heading", name=title, exact=True).wait_for(timeout=10_000)
    assert a.page.locator("section.panel table").count() >= 6  # breakdowns, goals and props drew tables
    a.check("dashboard")


def test_a_filter_and_the_filter_menu(server: Live, audit: Callable[..., Audit]) -> None:
    a = audit(login=server)
    page = a.page
    open_dashboard(page, server, f"site={SITE}&period=30d&filters=pages==/pricing")
    assert page.locator(".filter-chip").count() == 1
    page.get_by_role("button", name="+ Filter").click()
    menu = page.get_by_role("dialog", name="Add a filter")
    menu.get_by_label("Value", exact=True).fill("/")
    menu.locator("button.suggestion").first.wait_for(timeout=20_000)
    page.wait_for_function("() => document.getAnimations().length === 0", timeout=10_000)
    a.check("filter-menu")


def test_the_behaviour_panels(server: Live, audit: Callable[..., Audit]) -> None:
    a = audit(login=server)
    page = a.page
    open_dashboard(page, server, f"site={SITE}&period=30d&steps={STEPS}")
    for selector in ("li.f-step", "table.retention", ".seq-path, section.panel:has(h2:text-is('Sequences')) "
                     "table", "svg.flow-diagram"):
        page.locator(selector).first.wait_for(timeout=20_000)
    page.get_by_role("heading", name="Behaviour").scroll_into_view_if_needed()
    a.check("behaviour")


def test_the_settings_view(server: Live, audit: Callable[..., Audit]) -> None:
    a = audit(login=server)
    page = a.page
    page.goto(f"{server.base}/?site={SITE}&view=settings")
    tabs = page.get_by_role("tablist", name="Settings sections").get_by_role("tab")
    tabs.first.wait_for(timeout=20_000)
    names = tabs.all_inner_texts()
    assert {"Goals", "API keys", "Shared links"} <= set(names), names
    for name in names:
        page.get_by_role("tab", name=name, exact=True).click()
        ready = "section.panel:not(.is-loading) table.admin, section.panel:not(.is-loading) p.muted"
        page.get_by_role("tabpanel").locator(ready).first.wait_for(timeout=20_000)
        # every panel of the tab (Sites has a second one, the chosen site's details) has its answer
        page.wait_for_function("() => !document.querySelector('[role=tabpanel] .is-loading') && "
                               "document.getAnimations().length === 0", timeout=20_000)
        a.check(f"settings-{name.lower().replace(' ', '-')}")


def test_the_login_page(server: Live, audit: Callable[..., Audit]) -> None:
    a = audit()
    a.page.goto(f"{server.base}/?site={SITE}")
    a.page.get_by_role("button", name="Sign in").wait_for(timeout=20_000)
    a.check("login")


def test_the_first_run_page(empty: Live, audit: Callable[..., Audit]) -> None:
    a = audit()
    a.page.goto(f"{empty.base}/?site={FIRST}")
    a.page.get_by_text("Waiting for the first event…").wait_for(timeout=20_000)
    a.check("first-run")


def test_a_shared_link(server: Live, cookies: dict[str, str], audit: Callable[..., Audit],
                       scheme: str) -> None:
    r = httpx.post(server.base + "/api/v1/sites/shared-links",
                   json={"site_id": SITE, "name": f"a11y {scheme}"}, headers={"Origin": server.base},
                   cookies=cookies, timeout=30)
    assert r.status_code == 201, r.text
    a = audit()
    open_dashboard(a.page, server, r.json()["url"].split("?", 1)[1] + "&period=30d")
    assert a.page.get_by_role("button", name="Settings").count() == 0  # read-only
    a.check("shared-link")


def test_the_realtime_view(server: Live, audit: Callable[..., Audit]) -> None:
    a = audit(login=server)
    a.page.goto(f"{server.base}/?site={SITE}&period=realtime")
    view = a.page.locator("section.realtime")
    view.locator(".rt-n").wait_for(timeout=20_000)
    view.locator("table.bars").first.wait_for(timeout=20_000)
    a.check("realtime")


def _said(r: dict[str, Any], prev: dict[str, Any]) -> str:
    return (f"{r['date']}: {r['visitors']:,} unique visitors; {prev['date']}: {prev['visitors']:,} "
            "(previous period)")


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page (the light scheme); every console error fails the test; a screenshot is saved."""
    yield from checked_page(browser, ARTIFACTS / f"a11y-{request.node.name}.png",
                            viewport={"width": 1280, "height": 900})


def test_the_charts_points_are_reachable_by_keyboard(server: Live, cookies: dict[str, str],
                                                      page: Page) -> None:
    """Tab reaches the chart; ArrowRight, ArrowLeft, Home and End move the tooltip between its points, and
    the announced text is the point's figures as the JSON API gives them."""
    from playwright.sync_api import expect

    log_in(page.context, server, cookies)
    open_dashboard(page, server, f"site={SITE}&period=7d")
    r = httpx.get(server.base + "/api/stats/view", cookies=cookies, timeout=30, params={
        "site_id": SITE, "period": "7d", "breakdowns": "pages", "compare": "previous_period"})
    assert r.status_code == 200, r.text
    view = r.json()
    cur, prev = view["timeseries"], view["previous_timeseries"]
    chart = page.locator("svg.chart")
    label = chart.get_attribute("aria-label") or ""
    assert label.startswith("Unique visitors per day"), label
    assert cur[0]["date"] in label and cur[-1]["date"] in label, label
    peak = max(r["visitors"] for r in cur)
    assert f"highest {peak:,}" in label, label
    # Reached with Tab like any control: from the interval picker, the chart is next.
    page.locator("section[aria-label=Chart] .panel-head a").last.focus()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.matches('svg.chart')")
    live = page.locator("section[aria-label=Chart] .chart-said")
    assert live.get_attribute("aria-live") == "polite"

    def shown(i: int) -> None:
        expect(live).to_have_text(_said(cur[i], prev[i]), timeout=5_000)
        tip = chart.locator("g.hover text").all_text_contents()
        assert tip[:2] == [cur[i]["date"], f"Unique visitors {cur[i]['visitors']:,}"], tip
        assert tip[2] == f"{prev[i]['date']}: {prev[i]['visitors']:,}", tip

    page.keyboard.press("ArrowRight")  # the first point
    shown(0)
    page.keyboard.press("ArrowRight")
    shown(1)
    page.keyboard.press("ArrowLeft")
    shown(0)
    page.keyboard.press("ArrowLeft")  # stays on the first
    shown(0)
    page.keyboard.press("End")
    shown(len(cur) - 1)
    page.keyboard.press("Home")
    shown(0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("section[aria-label=Chart]").screenshot(path=str(ARTIFACTS / "a11y-chart-keyboard.png"))
    page.keyboard.press("Tab")  # leaving the chart hides the tooltip
    page.wait_for_function("() => !document.querySelector('svg.chart g.hover')", timeout=5_000)
    # The mouse shows the same tooltip, and it stays (it vanished at the next render before).
    chart.locator("rect.hit").nth(2).hover()
    expect(chart.locator("g.hover text").first).to_have_text(cur[2]["date"], timeout=5_000)
    page.wait_for_timeout(500)  # a few renders later (the realtime figure, the resize observer)
    assert chart.locator("g.hover text").first.text_content() == cur[2]["date"]


def test_a_breakdowns_tabs_control_the_panel_they_name(server: Live, cookies: dict[str, str],
                                                        page: Page) -> None:
    """The WAI-ARIA tabs pattern: each tab controls the panel, which is named after the selected tab; the
    arrow keys move the selection and the focus."""
    log_in(page.context, server, cookies)
    page.goto(f"{server.base}/?site={SITE}&period=30d")
    box = page.locator("section.panel", has=page.get_by_role("heading", name="Sources", exact=True))
    box.locator("table.bars").wait_for(timeout=20_000)
    panel = box.get_by_role("tabpanel")
    assert panel.get_by_role("columnheader", name="Source", exact=True).count() == 1

    def selected() -> str:
        tab = box.get_by_role("tab", selected=True)
        assert tab.get_attribute("aria-controls") == panel.get_attribute("id")
        assert panel.get_attribute("aria-labelledby") == tab.get_attribute("id")
        return tab.inner_text()

    assert selected() == "Sources"
    box.get_by_role("tab", name="Sources").focus()
    page.keyboard.press("ArrowRight")
    assert selected() == "Channels"
    assert page.evaluate("() => document.activeElement.textContent") == "Channels"
    panel.get_by_role("columnheader", name="Channel", exact=True).wait_for(timeout=20_000)
    page.keyboard.press("End")
    assert selected() == "UTM term"
