"""The behaviour views of the dashboard in real headless Chromium against a real ``mallard serve`` whose
lake holds five weeks of generated traffic (some visitors send a user id, some sign up): the funnel
builder (steps added, removed, reordered, kept in the URL, suggested from the data) draws the funnel
route's counts, drop-offs and median times to convert; the retention triangle leaves future weeks blank, fits
its colours to the visible cells, has an "identified users only" toggle and is readable in dark mode;
the sequences view shows the sequences route's answer; the flow is a path diagram of the flow route's
previous and next pages. Nothing overflows a 390 px phone; no console error happens.

Screenshots go to ``test-artifacts/dashboard/`` (git-ignored).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import mallard

from ..chromium import checked_page, chromium
from .conftest import ROOT, Live, served

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

pytestmark = pytest.mark.slow

SITE = "behaviour.example"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
PAGES = ["/", "/pricing", "/docs", "/blog/a-very-long-article-name-about-ducks-and-analytics", "/signup"]
STEPS = "page:/,page:/pricing,event:signup"
LONG_STEPS = "page:/blog/a-very-long-article-name-about-ducks-and-analytics,page:/pricing,event:signup"


def _fill(data_dir: Path, now: datetime) -> None:
    """Five weeks of seeded traffic: 120 people, a third with a user id, visits on several days."""
    gen = random.Random(5)
    with mallard.Mallard(data_dir=data_dir) as m:
        for p in range(120):
            user = f"user-{p}" if p % 3 == 0 else None
            v = 100 + p % 40
            ua = f"Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
            for back in sorted(gen.sample(range(35), gen.randint(1, 4)), reverse=True):
                at = now - timedelta(days=back, hours=gen.randint(1, 10))
                ip = f"10.{p // 200}.{p % 200}.{back}"
                path = gen.choice(PAGES[:4])
                for i in range(gen.randint(1, 5)):
                    m.track("pageview", site=SITE, url=f"https://{SITE}{path}", ip=ip, user_agent=ua,
                            user_id=user, timestamp=at + timedelta(minutes=3 * i))
                    if path == "/pricing" and gen.random() < 0.5:
                        m.track("signup", site=SITE, url=f"https://{SITE}/signup", ip=ip, user_agent=ua,
                                user_id=user, timestamp=at + timedelta(minutes=3 * i, seconds=40))
                        break
                    path = gen.choice(PAGES)
        m.flush()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("dashbehaviour") / "data"
    _fill(data_dir, datetime.now(UTC))
    yield from served(data_dir)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


def _shot(request: pytest.FixtureRequest) -> Path:
    return ARTIFACTS / f"behaviour-{request.node.name}.png"


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from checked_page(browser, _shot(request), viewport={"width": 1280, "height": 900})


@pytest.fixture
def phone(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from checked_page(browser, _shot(request), viewport={"width": 390, "height": 844})


@pytest.fixture
def dark(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from checked_page(browser, _shot(request), viewport={"width": 1280, "height": 900},
                            color_scheme="dark")


def api(live: Live, path: str, **params: str) -> Any:
    r = httpx.get(live.base + path, params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def show(page: Page, title: str) -> Locator:
    """The panel titled ``title``, scrolled into view (panels ask for data when shown), once loaded."""
    box = page.locator("section.panel", has=page.get_by_role("heading", name=title, exact=True))
    # Scrolled again at each poll: the first screen's answer can move the panel after a first scroll.
    page.wait_for_function("(t) => { const s = [...document.querySelectorAll('section.panel')].find((x) => "
                           "x.querySelector('h2')?.textContent === t); s?.scrollIntoView(); "
                           "return s?.getAttribute('aria-busy') === 'false'; }", arg=title, timeout=30_000)
    return box


def snap(box: Locator, name: str) -> None:
    """A screenshot of one panel (besides the full page's)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    box.screenshot(path=str(ARTIFACTS / f"behaviour-panel-{name}.png"))


def open_dashboard(page: Page, live: Live, query: str) -> None:
    page.goto(f"{live.base}/?{query}")
    page.locator("h2.section").wait_for(timeout=20_000)


def no_overflow(page: Page) -> None:
    wide = page.evaluate("() => document.documentElement.scrollWidth")
    assert wide <= 390, wide


def pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def funnel_shown(box: Locator) -> list[tuple[str, str, str]]:
    steps = box.locator("li.f-step")
    return [(steps.nth(i).locator(".f-label").inner_text(), steps.nth(i).locator(".f-visitors").inner_text(),
             steps.nth(i).locator(".f-rate").inner_text()) for i in range(steps.count())]


def funnel_expected(live: Live, steps: str, window: str = "1 day") -> list[tuple[str, str, str]]:
    rows = api(live, "/api/stats/funnel", site_id=SITE, period="30d", steps=steps, window=window)
    return [(r["label"], f"{r['visitors']:,}", pct(r["conversion_rate"])) for r in rows]


def test_funnel_draws_the_routes_counts_and_drop_offs(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=30d&steps={STEPS}")
    box = show(page, "Funnel")
    box.locator("li.f-step").first.wait_for(timeout=20_000)
    assert funnel_shown(box) == funnel_expected(server, STEPS)
    rows = api(server, "/api/stats/funnel", site_id=SITE, period="30d", steps=STEPS)
    assert rows[0]["visitors"] > rows[1]["visitors"] > rows[2]["visitors"] > 0
    for i in (1, 2):
        lost = rows[i - 1]["visitors"] - rows[i]["visitors"]
        shown = box.locator(f"li.f-step[data-step='{i + 1}'] .f-lost").inner_text()
        assert shown == f"↓ {lost:,} dropped off ({pct(lost / rows[i - 1]['visitors'])})"
        seconds = math.floor(rows[i]["median_seconds"] + 0.5)  # Math.round
        took = box.locator(f"li.f-step[data-step='{i + 1}'] .f-time").inner_text()
        assert took == f"median {seconds // 60}:{seconds % 60:02d} to convert"
    snap(box, "funnel")


def test_funnel_builder_adds_removes_and_reorders_steps_in_the_url(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=30d&steps=page:/,page:/pricing")
    box = show(page, "Funnel")
    box.get_by_role("button", name="+ Add step").click()
    box.get_by_label("Step 3 kind").select_option("event")
    box.get_by_label("Step 3 event name").fill("signup")
    box.get_by_role("button", name="Show").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('steps') === "
                           "'page:/,page:/pricing,event:signup'")
    box.get_by_role("button", name="Move step 2 up").click()
    box.get_by_role("button", name="Remove step 3").click()
    box.get_by_role("button", name="Show").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('steps') === "
                           "'page:/pricing,page:/'")
    show(page, "Funnel")
    page.wait_for_function("() => document.querySelector('li.f-step .f-label')?.textContent === "
                           "'page:/pricing'")
    assert funnel_shown(box) == funnel_expected(server, "page:/pricing,page:/")
    page.reload()  # the steps come back from the URL
    box = show(page, "Funnel")
    assert box.get_by_label("Step 1 page path").input_value() == "/pricing"
    assert box.locator(".step-row").count() == 2


def test_funnel_steps_are_suggested_from_the_data(server: Live, page: Page) -> None:
    """A step's suggestions are the v2 query's pages (or custom events) containing the typed text."""
    open_dashboard(page, server, f"site={SITE}&period=30d&steps={STEPS}")
    box = show(page, "Funnel")
    field = box.get_by_label("Step 2 page path")
    field.fill("/b")
    page.wait_for_function("() => document.querySelectorAll('#funnel-suggest-1 option').length > 0")
    options = box.locator("#funnel-suggest-1 option")
    shown = [options.nth(i).get_attribute("value") for i in range(options.count())]
    body = httpx.post(server.base + "/api/v2/query", json={
        "site_id": SITE, "metrics": ["visitors"], "dimensions": ["event:page"], "date_range": "30d",
        "filters": [["contains", "event:page", ["/b"]]], "order_by": [["visitors", "desc"]],
        "pagination": {"limit": 10}}, timeout=30).json()
    assert shown == [r["dimensions"][0] for r in body["results"]] and shown
    box.get_by_label("Step 3 event name").fill("sig")
    page.wait_for_function("() => [...document.querySelectorAll('#funnel-suggest-2 option')].some("
                           "(o) => o.value === 'signup')")


def test_funnel_fits_a_phone(server: Live, phone: Page) -> None:
    """The funnel with long step labels, its counts and the step editor stay inside a 390 px screen."""
    open_dashboard(phone, server, f"site={SITE}&period=30d&steps={LONG_STEPS}")
    box = show(phone, "Funnel")
    box.locator(".funnel li").first.wait_for(timeout=20_000)
    no_overflow(phone)
    snap(box, "funnel-phone")


def test_sequences_view_shows_the_routes_answer(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=30d&steps={STEPS}")
    box = show(page, "Sequences")
    want = api(server, "/api/stats/sequences", site_id=SITE, period="30d", steps=STEPS)
    assert want["converting_visitors"] > 0
    assert box.locator(".seq-converting").inner_text() == f"{want['converting_visitors']:,}"
    assert box.locator(".seq-total").inner_text() == f"{want['total_visitors']:,}"
    assert box.locator(".seq-rate").inner_text() == pct(want["conversion_rate"])
    assert box.locator(".seq-step1").inner_text() == f"{want['step1_visitors']:,}"
    assert box.locator(".seq-step1-rate").inner_text() == pct(want["step1_conversion_rate"])
    snap(box, "sequences")
    box.get_by_role("button", name="Remove step 3").click()
    box.get_by_role("button", name="Show").click()
    two = api(server, "/api/stats/sequences", site_id=SITE, period="30d", steps="page:/,page:/pricing")
    page.wait_for_function("(n) => document.querySelector('.seq-converting')?.textContent === n",
                           arg=f"{two['converting_visitors']:,}")


def retention_cells(box: Locator) -> list[list[str]]:
    rows = box.locator("table.retention tbody tr")
    return [[c.strip() for c in rows.nth(i).locator("td.cell").all_inner_texts()]
            for i in range(rows.count())]


def retention_expected(live: Live, **params: str) -> list[list[str]]:
    """What each cell should show: blank before the week begins, '*' while it runs."""
    body = api(live, "/api/stats/retention", site_id=SITE, period="30d", weeks="4", **params)
    out = []
    for c in body["cohorts"]:
        row = []
        for k, rate in enumerate(c["rates"]):
            if k > 0 and not c["complete"][k - 1]:
                row.append("")
            else:
                # Math.round: halves up
                row.append(f"{math.floor(rate * 100 + 0.5)}%" + ("" if c["complete"][k] else "*"))
        out.append(row)
    return out


def test_retention_triangle(server: Live, page: Page) -> None:
    """Cells equal the route's rates; weeks not begun are blank; the strongest colour is the highest
    visible rate after week 0; the toggle asks for identified users only."""
    open_dashboard(page, server, f"site={SITE}&period=30d")
    box = show(page, "Retention")
    box.locator("table.retention tbody tr").first.wait_for(timeout=30_000)  # the answer, not the idle panel
    want = retention_expected(server)
    assert retention_cells(box) == want
    assert any(cell == "" for row in want for cell in row)  # a future week exists in 30 days
    assert not any(cell.endswith("0%*") and cell == "" for row in want for cell in row)
    body = api(server, "/api/stats/retention", site_id=SITE, period="30d", weeks="4")
    later = [r for c in body["cohorts"] for k, r in enumerate(c["rates"])
             if k > 0 and c["complete"][k - 1]]
    later_cells = box.locator("td.cell[data-week]:not([data-week='0'])[data-shade]")
    shades = [float(x) for x in later_cells.evaluate_all("(cells) => cells.map((c) => c.dataset.shade)")]
    assert max(later) > 0 and max(shades) == 1.0 and len(shades) == len(later)
    snap(box, "retention")
    box.get_by_label("Identified users only").check()
    users = retention_expected(server, identity="user_id")
    box.get_by_text("Identity used: user_id").wait_for(timeout=20_000)
    assert retention_cells(box) == users


def test_retention_is_readable_in_dark_mode(server: Live, dark: Page) -> None:
    """The strongest cells use dark text on the light accent of the dark theme (contrast >= 4.5)."""
    open_dashboard(dark, server, f"site={SITE}&period=30d")
    box = show(dark, "Retention")
    ratio = box.locator("td.cell.strong").first.evaluate("""(td) => {
      const rgb = (s) => s.match(/[\\d.]+/g).map(Number);
      const [r, g, b, a = 1] = rgb(getComputedStyle(td).backgroundColor);
      const bg = rgb(getComputedStyle(td.closest('section')).backgroundColor);
      const mix = [r, g, b].map((v, i) => v * a + bg[i] * (1 - a));
      const lum = (c) => { const l = c.map((v) => {
          v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2]; };
      const fg = rgb(getComputedStyle(td).color);
      const [hi, lo] = [lum(mix), lum(fg)].sort((x, y) => y - x);
      return (hi + 0.05) / (lo + 0.05); }""")
    assert ratio >= 4.5, ratio
    snap(box, "retention-dark")


def test_flow_is_a_path_diagram_of_the_routes_pages(server: Live, page: Page) -> None:
    open_dashboard(page, server, f"site={SITE}&period=30d")
    box = show(page, "Flow")
    nxt = api(server, "/api/stats/flow", site_id=SITE, period="30d", page="/")
    prev = api(server, "/api/stats/flow", site_id=SITE, period="30d", page="/", direction="previous")
    after = [(r["next_page"], r["visitors"]) for r in nxt["next_pages"]] + [("(exit)", nxt["exits"])]
    before = [(r["previous_page"], r["visitors"]) for r in prev["previous_pages"]] + [
        ("(entrance)", prev["entrances"])]
    titles = box.locator("svg.flow-diagram path.flow-link title").all_text_contents()
    assert titles == [f"{p}: {n:,} visitors" for p, n in before + after if n]
    lists = box.locator(".flow-list")
    for i, side in enumerate((before, after)):
        items = lists.nth(i).locator("li")
        shown = [(items.nth(j).locator("button, span.muted").inner_text(),
                  items.nth(j).locator(".n").inner_text()) for j in range(items.count())]
        assert shown == [(p, f"{n:,}") for p, n in side if n]
    snap(box, "flow")
    target = nxt["next_pages"][0]["next_page"]
    lists.nth(1).get_by_role("button", name=target, exact=True).click()
    follow = api(server, "/api/stats/flow", site_id=SITE, period="30d", page=target)
    page.wait_for_function("(t) => document.querySelector('.flow-summary code')?.textContent === t",
                           arg=target)
    show(page, "Flow")
    centre = box.locator("svg.flow-diagram .flow-node.centre text").text_content() or ""
    assert centre.endswith(f"{follow['visitors_at_page']:,}")


def test_flow_and_retention_follow_an_entry_page_filter(server: Live, page: Page) -> None:
    """Under an entry-page filter (a 400 for both routes before) the panels show the routes' answers."""
    entry = "entry-pages==/pricing"
    open_dashboard(page, server, f"site={SITE}&period=30d&filters={entry}")
    flow_box = show(page, "Flow")
    want = api(server, "/api/stats/flow", site_id=SITE, period="30d", page="/", filters=entry)
    assert want["visitors_at_page"] > 0
    assert flow_box.locator(".flow-summary").inner_text().startswith(
        f"{want['visitors_at_page']:,} visitors reached /;")
    retention_box = show(page, "Retention")
    assert retention_cells(retention_box) == retention_expected(server, filters=entry)
    assert page.locator("section.panel .error").count() == 0


def test_behaviour_views_fit_a_phone(server: Live, phone: Page) -> None:
    open_dashboard(phone, server, f"site={SITE}&period=30d&steps={LONG_STEPS}")
    for title in ("Flow", "Funnel", "Sequences", "Retention"):
        show(phone, title)
    no_overflow(phone)
