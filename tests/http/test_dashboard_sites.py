"""Saved funnels in the Funnel panel and Settings → Sites, in real headless Chromium against a real
``mallard serve`` with an admin password and two sites with a few days of traffic.

- An Admin saves the funnel shown under a name; after a reload the picker selects it again from the
  URL, picking it puts its steps and window in the URL and the panel draws the funnel route's answer
  for ``funnel=<id>``; a taken name is refused in the panel; the funnel is deleted after a confirmation.
- A shared link sees the saved funnels and picks one, without Save or Delete.
- Settings → Sites lists every site with its time zone and currency as the API answers them; the
  currency is set and cleared; another site is managed; its data is erased after its domain is typed,
  leaving the other site's.

Screenshots go to ``test-artifacts/dashboard/`` (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import mallard

from ..chromium import chromium, close, watched
from .conftest import ROOT, Live, eventually, serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

pytestmark = pytest.mark.slow

SITE = "funnels.example"
OTHER = "erase-me.example"
PASSWORD = "mallard-sites-test-pw-11"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
STEPS = "page:/,page:/pricing,event:signup"
NAME = "Pricing to signup"


def _fill(data_dir: Path, now: datetime) -> None:
    """SITE: 40 visitors over five days, most on /, some on to /pricing, some of those sign up;
    OTHER: a few pageviews."""
    with mallard.Mallard(data_dir=data_dir) as m:
        for v in range(40):
            ua = f"Mozilla/5.0 (X11; Linux x86_64; rv:{100 + v}.0) Gecko/20100101 Firefox/{100 + v}.0"
            at = now - timedelta(days=v % 5, hours=2, minutes=v)
            path = ["/", "/pricing"] if v % 3 else ["/"]
            for i, p in enumerate(path):
                m.track("pageview", site=SITE, url=f"https://{SITE}{p}", ip=f"10.0.{v}.1", user_agent=ua,
                        timestamp=at + timedelta(minutes=2 * i))
            if v % 3 and v % 2:
                m.track("signup", site=SITE, url=f"https://{SITE}/pricing", ip=f"10.0.{v}.1", user_agent=ua,
                        timestamp=at + timedelta(minutes=5))
            if v < 6:
                m.track("pageview", site=OTHER, url=f"https://{OTHER}/", ip=f"10.1.{v}.1", user_agent=ua,
                        timestamp=at)
        m.flush()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """``mallard serve`` with an admin password; both sites configured (OTHER stays known once erased)."""
    yield from serving("serve", tmp_path_factory, "dashsites",
                       env={"MALLARD_ADMIN_PASSWORD": PASSWORD, "MALLARD_SITE_IDS": f"{SITE},{OTHER}"},
                       fill=lambda data_dir: _fill(data_dir, datetime.now(UTC)))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="module")
def admin(server: Live) -> Iterator[httpx.Client]:
    with server.client(headers={"Origin": server.base}) as c:
        assert c.post("/api/auth/login", json={"password": PASSWORD}).status_code == 200
        yield c


@pytest.fixture
def pages(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``pages(login=None, width=1280)``: a fresh page (logged in to ``login`` when given). Afterwards each
    page's screenshot is saved and any console error not in ``request.node.allowed`` fails the test."""
    made: list[tuple[Any, Page, list[str]]] = []

    def make(login: Live | None = None, width: int = 1280) -> Page:
        context, page, errors = watched(browser, viewport={"width": width, "height": 900})
        if login is not None:
            r = context.request.post(login.base + "/api/auth/login", data={"password": PASSWORD})
            assert r.status == 200, r.text()
        made.append((context, page, errors))
        return page

    try:
        yield make
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for i, (_, page, errors) in enumerate(made):
            page.screenshot(path=str(ARTIFACTS / f"sites-{request.node.name}-{i}.png"), full_page=True)
            allowed = getattr(request.node, "allowed", ())
            left = [e for e in errors if not any(a in e for a in allowed)]
            assert not left, left
    finally:
        for context, _, _ in made:
            close(context)


def funnel_panel(page: Page) -> Locator:
    """The Funnel panel, scrolled into view (it asks for its data when shown), once loaded."""
    page.wait_for_function("() => { const s = [...document.querySelectorAll('section.panel')].find((x) => "
                           "x.querySelector('h2')?.textContent === 'Funnel'); s?.scrollIntoView(); "
                           "return s?.getAttribute('aria-busy') === 'false' && s.querySelector('li.f-step'); "
                           "}",
                           timeout=30_000)
    return page.locator("section.panel", has=page.get_by_role("heading", name="Funnel", exact=True))


def picked(box: Locator) -> str:
    """The text of the picker's selected option."""
    return str(box.get_by_label("Saved funnel").evaluate("(s) => s.selectedOptions[0].textContent"))


def drawn(box: Locator) -> list[tuple[str, str]]:
    steps = box.locator("li.f-step")
    return [(steps.nth(i).locator(".f-label").inner_text(), steps.nth(i).locator(".f-visitors").inner_text())
            for i in range(steps.count())]


def answer(admin: httpx.Client, path: str, **params: str) -> Any:
    """The JSON of a 200 answer to GET ``path`` (as the admin)."""
    r = admin.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def saved(admin: httpx.Client) -> list[dict[str, Any]]:
    return list(answer(admin, "/api/v1/sites/funnels", site_id=SITE)["funnels"])


def test_a_funnel_is_saved_picked_from_a_reload_and_deleted(server: Live, admin: httpx.Client, pages: Any,
                                                            request: pytest.FixtureRequest) -> None:
    page = pages(login=server)
    page.goto(f"{server.base}/?site={SITE}&period=30d&steps={STEPS}")
    box = funnel_panel(page)
    assert picked(box) == "None saved yet"
    box.get_by_label("Window").fill("2 days")
    box.get_by_role("button", name="Show").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('window') === '2 days'")
    box.get_by_role("button", name="Save as…").click()
    box.get_by_label("Funnel name").fill(NAME)
    box.get_by_role("button", name="Save", exact=True).click()
    eventually(lambda: picked(box) == NAME, 20)
    [funnel] = saved(admin)
    assert (funnel["name"], funnel["steps"], funnel["window"]) == (NAME, STEPS.split(","), "2 days")

    # A name taken is the API's 400, shown in the panel (Chromium logs the 400 itself: expected).
    request.node.allowed = ("the server responded with a status of 400",)
    box.get_by_role("button", name="Save as…").click()
    box.get_by_label("Funnel name").fill(NAME)
    box.get_by_role("button", name="Save", exact=True).click()
    assert "already has a funnel named" in box.get_by_role("alert").inner_text(timeout=20_000)
    assert len(saved(admin)) == 1

    # Another funnel in the URL: the picker says "Unsaved"; picking the saved one puts it in the URL
    # and the panel draws what the funnel route answers for funnel=<id>.
    page.goto(f"{server.base}/?site={SITE}&period=30d&steps=page:/pricing")
    box = funnel_panel(page)
    eventually(lambda: box.get_by_label("Saved funnel").locator("option").count() == 2, 20)
    assert picked(box) == "Unsaved funnel"
    box.get_by_label("Saved funnel").select_option(label=NAME)
    page.wait_for_function("(s) => { const q = new URLSearchParams(location.search); "
                           "return q.get('steps') === s && q.get('window') === '2 days'; }", arg=STEPS)
    assert box.get_by_label("Window").input_value() == "2 days"
    page.wait_for_function("() => document.querySelectorAll('section.panel li.f-step').length === 3 && "
                           "!document.querySelector('section.panel.is-loading li.f-step')", timeout=30_000)
    rows = answer(admin, "/api/stats/funnel", site_id=SITE, period="30d", funnel=funnel["id"])
    expected = [(row["label"], f"{row['visitors']:,}") for row in rows]
    assert drawn(box) == expected and int(expected[-1][1]) > 0, (drawn(box), expected)
    assert parse_qs(urlsplit(page.url).query)["steps"] == [STEPS]
    # After a reload the URL's funnel is the saved one: selected again.
    page.reload()
    box = funnel_panel(page)
    eventually(lambda: picked(box) == NAME, 20)
    box.screenshot(path=str(ARTIFACTS / "sites-funnel-picker.png"))

    box.get_by_role("button", name="Delete").click()
    box.get_by_text(f"Delete the saved funnel “{NAME}”?").wait_for(timeout=10_000)
    box.get_by_role("button", name="Yes, delete it").click()
    eventually(lambda: box.get_by_label("Saved funnel").locator("option").count() == 1, 20)
    assert saved(admin) == []
    assert box.get_by_role("button", name="Delete").count() == 0
    assert drawn(box) == expected  # the funnel shown stays: only its saved copy is gone


def test_a_shared_link_picks_saved_funnels_but_cannot_save_or_delete(
        server: Live, admin: httpx.Client, pages: Any) -> None:
    r = admin.post("/api/v1/sites/funnels", json={"site_id": SITE, "name": "Shared view",
                                                  "steps": ["page:/", "page:/pricing"]})
    assert r.status_code == 201, r.text
    funnel = r.json()
    link = admin.post("/api/v1/sites/shared-links", json={"site_id": SITE, "name": "Funnels"})
    assert link.status_code == 201, link.text
    try:
        page = pages()
        page.goto(f"{server.base}{link.json()['url']}&period=30d&steps=page:/pricing")
        box = funnel_panel(page)
        eventually(lambda: box.get_by_label("Saved funnel").locator("option").count() >= 2, 20)
        box.get_by_label("Saved funnel").select_option(label="Shared view")
        page.wait_for_function("() => new URLSearchParams(location.search).get('steps') === "
                               "'page:/,page:/pricing'")
        page.wait_for_function("() => document.querySelectorAll('section.panel li.f-step').length === 2 "
                               "&& !document.querySelector('section.panel.is-loading li.f-step')",
                               timeout=30_000)
        rows = answer(admin, "/api/stats/funnel", site_id=SITE, period="30d", funnel=funnel["id"])
        assert drawn(box) == [(row["label"], f"{row['visitors']:,}") for row in rows]
        assert picked(box) == "Shared view"
        for name in ("Save as…", "Delete", "Yes, delete it"):
            assert box.get_by_role("button", name=name).count() == 0, name
        assert box.get_by_label("Funnel name").count() == 0
    finally:
        admin.request("DELETE", f"/api/v1/sites/funnels/{funnel['id']}", json={"site_id": SITE})


def site_json(admin: httpx.Client, site: str) -> dict[str, Any]:
    return dict(answer(admin, f"/api/v1/sites/{site}"))


def all_time(admin: httpx.Client, site: str) -> dict[str, Any]:
    return dict(answer(admin, "/api/stats/main", site_id=site, period="all"))


def test_settings_sites_tab(server: Live, admin: httpx.Client, pages: Any) -> None:
    page = pages(login=server)
    page.goto(f"{server.base}/?site={SITE}&view=settings")
    page.get_by_role("tab", name="Sites").click()
    table = page.get_by_role("table", name="Sites")
    page.wait_for_function("() => { const t = document.querySelector('table[aria-label=Sites]'); "
                           "return t && ![...t.querySelectorAll('td')].some((c) => c.textContent === '…'); }",
                           timeout=20_000)
    sites = answer(admin, "/api/sites")["sites"]
    assert sites == sorted([SITE, OTHER])
    rows = [[c.strip() for c in r.split("\t")] for r in table.locator("tbody tr").all_inner_texts()]
    assert [r[:4] for r in rows] == [[s, "UTC", site_json(admin, s)["currency"] or "per goal",
                                      site_json(admin, s)["first_event_date"]] for s in sites], rows
    details = page.locator("section.site-details")
    totals = all_time(admin, SITE)
    details.locator(".site-totals").get_by_text(
        f"{totals['total_events']:,} events, {totals['unique_visitors']:,} visitors").wait_for(timeout=20_000)
    snippet = details.locator(".secret-value").first.input_value()
    assert snippet == f'<script defer data-domain="{SITE}" src="{server.base}/mallard.js"></script>'

    # The reporting currency: set (typed lower case), shown in the table, then cleared.
    form = page.get_by_role("form", name="Reporting currency")
    form.get_by_label("Reporting currency").fill("eur")
    form.get_by_role("button", name="Save currency").click()
    table.locator("tbody tr", has_text=SITE).get_by_text("EUR").wait_for(timeout=20_000)
    assert site_json(admin, SITE)["currency"] == "EUR"
    assert form.get_by_label("Reporting currency").input_value() == "EUR"
    form.get_by_role("button", name="Clear").click()
    table.locator("tbody tr", has_text=SITE).get_by_text("per goal").wait_for(timeout=20_000)
    assert site_json(admin, SITE)["currency"] is None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "settings-sites.png"), full_page=True)

    # Another site is managed: it becomes the page's site; its data is erased after its domain is typed.
    page.get_by_role("button", name=f"Manage {OTHER}").click()
    page.wait_for_function("(s) => new URLSearchParams(location.search).get('site') === s", arg=OTHER)
    details.get_by_role("heading", name=OTHER).wait_for(timeout=20_000)
    assert all_time(admin, OTHER)["total_events"] == 6
    erase = page.get_by_role("form", name="Erase this site's data")
    button = erase.get_by_role("button", name="Erase this site's data")
    assert button.is_disabled()
    erase.get_by_label("Site to erase").fill(SITE)  # not the site shown
    assert button.is_disabled()
    erase.get_by_label("Site to erase").fill(OTHER)
    button.click()
    erase.get_by_role("status").get_by_text(f"Erased every event of {OTHER}").wait_for(timeout=30_000)
    eventually(lambda: all_time(admin, OTHER)["total_events"] == 0, 20)
    assert site_json(admin, OTHER)["first_event_date"] is None
    assert all_time(admin, SITE)["total_events"] == totals["total_events"]  # the other site's data stays
    table.locator("tbody tr", has_text=OTHER).get_by_text("—").wait_for(timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "settings-sites-erased.png"), full_page=True)


def test_settings_sites_tab_fits_a_phone(server: Live, pages: Any) -> None:
    page = pages(login=server, width=390)
    page.goto(f"{server.base}/?site={SITE}&view=settings")
    page.get_by_role("tab", name="Sites").click()
    page.locator("section.site-details .secret-value").first.wait_for(timeout=20_000)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
