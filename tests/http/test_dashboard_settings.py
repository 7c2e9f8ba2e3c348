"""Settings pages, shared links, the first-run page and the server-fact hints of the dashboard, in real
headless Chromium against real servers: ``mallard serve`` with an admin password and a few days of
traffic, and a Starlette host mounting mallard under ``/_m`` in open mode with a configured site that
has no event yet.

- Goals, API keys and shared links are added and removed through the Settings page, and the Sites API,
  the keys route and the shared link itself say the same.
- A shared link opens its site's dashboard read-only in a fresh browser (no admin control in the DOM,
  the secret sent as a header on every API call, numbers equal to the API); once revoked, the page says so.
- The first-run page shows the exact snippet (origin and mount prefix) and opens the dashboard when the
  first event arrives.
- The Locations tabs the GeoIP setup cannot fill say "GeoIP not configured"; a custom range longer than
  ``max_range_days`` is refused in the page, with no 400 in the network log.

Screenshots go to ``test-artifacts/dashboard/`` (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import mallard

from ..chromium import UA, chromium, close
from .conftest import ROOT, Live, eventually, serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.slow

SITE = "settings.example"
FIRST = "first.example"  # configured, no event yet
PASSWORD = "mallard-settings-test-pw-7"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
RESOURCE_401 = "Failed to load resource: the server responded with a status of 401"


def _fill(data_dir: Path, now: datetime) -> None:
    m = mallard.Mallard(data_dir=data_dir)
    try:
        for back in range(5):
            for v in range(3 + back):
                ua = f"Mozilla/5.0 (X11; Linux x86_64; rv:{100 + v}.0) Gecko/20100101 Firefox/{100 + v}.0"
                for i, path in enumerate(["/", "/pricing", "/docs"][: 1 + v % 3]):
                    m.track("pageview", site=SITE, url=f"https://{SITE}{path}", ip=f"10.{back}.{v}.1",
                            user_agent=ua, timestamp=now - timedelta(days=back, hours=1, minutes=-2 * i))
        m.flush()
    finally:
        m.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """``mallard serve`` with an admin password and five days of traffic of SITE."""
    yield from serving("serve", tmp_path_factory, "dashsettings", env={"MALLARD_ADMIN_PASSWORD": PASSWORD},
                       fill=lambda data_dir: _fill(data_dir, datetime.now(UTC)))


@pytest.fixture(scope="module")
def mounted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A Starlette host mounting mallard under /_m, no password (open mode), FIRST configured."""
    yield from serving("starlette", tmp_path_factory, "dashfirst",
                       env={"MALLARD_SITE_IDS": f"{FIRST},host.example"})


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="module")
def admin(server: Live) -> Iterator[httpx.Client]:
    """An httpx client logged in as the admin (reads the admin routes as the page does)."""
    with server.client() as c:
        assert c.post("/api/auth/login", json={"password": PASSWORD}).status_code == 200
        yield c


class Watched:
    """A browser context and page whose console errors, requests and responses are recorded."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.page = context.new_page()
        self.errors: list[str] = []
        self.requests: list[Any] = []
        self.statuses: list[tuple[int, str]] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r))
        self.page.on("response", lambda r: self.statuses.append((r.status, r.url)))

    def finish(self, name: str, allowed: tuple[str, ...] = ()) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        errors = [e for e in self.errors if not any(a in e for a in allowed)]
        assert not errors, errors


@pytest.fixture
def watched(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``watched(width=1280, login=None)``: a fresh context (logged in to ``login`` when given)."""
    made: list[Watched] = []

    def make(width: int = 1280, login: Live | None = None) -> Watched:
        context = browser.new_context(user_agent=UA, viewport={"width": width, "height": 900})
        if login is not None:
            r = context.request.post(login.base + "/api/auth/login", data={"password": PASSWORD})
            assert r.status == 200, r.text()
        w = Watched(context)
        made.append(w)
        return w

    try:
        yield make
    finally:
        for i, w in enumerate(made):
            try:
                w.finish(f"{request.node.name}-{i}" if i else request.node.name,
                         allowed=getattr(request.node, "allowed_console", ()))
            finally:
                close(w.context)


def open_settings(page: Page, live: Live, tab: str) -> None:
    page.goto(f"{live.base}/?site={SITE}&view=settings")
    page.get_by_role("tab", name=tab).click()
    ready = "section.panel:not(.is-loading) table.admin, section.panel:not(.is-loading) p.muted"
    page.get_by_role("tabpanel").locator(ready).first.wait_for(timeout=20_000)


def goals_of(admin: httpx.Client) -> list[dict[str, Any]]:
    r = admin.get("/api/v1/sites/goals", params={"site_id": SITE})
    assert r.status_code == 200, r.text
    return list(r.json()["goals"])


def test_goals_are_added_and_deleted_through_the_page(server: Live, admin: httpx.Client, watched: Any,
                                                     request: pytest.FixtureRequest) -> None:
    page = watched(login=server).page
    open_settings(page, server, "Goals")
    form = page.get_by_role("form", name="Add a goal")
    form.get_by_label("Event name").fill("Signup")
    form.get_by_label("Currency (optional)").fill("eur")
    form.get_by_role("button", name="Add goal").click()
    page.get_by_role("cell", name="Event Signup").wait_for(timeout=20_000)
    form.get_by_label("Kind").select_option("page")
    form.get_by_label("Page path (* matches anything)").fill("/blog/*")
    form.get_by_label("Display name (optional)").fill("Blog reader")
    form.get_by_role("button", name="Add goal").click()
    page.get_by_role("cell", name="Pageview of /blog/*").wait_for(timeout=20_000)
    goals = {g["display_name"]: g for g in goals_of(admin)}
    assert goals["Signup"]["goal_type"] == "event" and goals["Signup"]["currency"] == "EUR"
    assert goals["Blog reader"]["goal_type"] == "page" and goals["Blog reader"]["page_path"] == "/blog/*"
    rows = page.locator("table.admin tbody tr").all_inner_texts()
    assert len(rows) == 2 and any("Blog reader" in r for r in rows), rows

    page.get_by_role("button", name="Delete goal Signup").click()
    page.get_by_role("cell", name="Event Signup").wait_for(state="detached", timeout=20_000)
    assert [g["display_name"] for g in goals_of(admin)] == ["Blog reader"]
    # An error of the API is shown in the form, not thrown: an empty name never reaches it (required),
    # a bad currency does (its 400 is a console line of Chromium's, expected here).
    request.node.allowed_console = ("the server responded with a status of 400",)
    form.get_by_label("Kind").select_option("event")
    form.get_by_label("Event name").fill("Purchase")
    form.get_by_label("Currency (optional)").fill("E1")
    form.get_by_role("button", name="Add goal").click()
    assert "currency" in form.get_by_role("alert").inner_text(timeout=20_000).lower()
    assert [g["display_name"] for g in goals_of(admin)] == ["Blog reader"]


def test_an_api_key_is_shown_once_works_and_is_revoked(server: Live, watched: Any) -> None:
    w = watched(login=server)
    page = w.page
    open_settings(page, server, "Goals")
    # The tabs are a tablist: the arrow keys move between them.
    page.get_by_role("tab", name="Goals").focus()
    page.keyboard.press("ArrowRight")
    keys_tab = page.get_by_role("tab", name="API keys")
    assert keys_tab.get_attribute("aria-selected") == "true"
    assert page.evaluate("() => document.activeElement.textContent") == "API keys"
    form = page.get_by_role("form", name="Create an API key")
    form.get_by_label("Name").fill("grafana-ci")
    form.get_by_label("Scope").select_option("ReadOnly")
    form.get_by_role("button", name="Create key").click()
    shown = page.locator(".secret-value")
    shown.wait_for(timeout=20_000)
    key = shown.input_value()
    assert key.startswith("mm_") and len(key) == 67, key
    with httpx.Client(base_url=server.base, timeout=30) as c:
        assert c.get("/api/sites", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert c.get("/api/keys", headers={"Authorization": f"Bearer {key}"}).status_code in (401, 403)
    row = page.locator("table.admin tbody tr", has_text="grafana-ci")
    assert "ReadOnly" in row.inner_text()
    # Shown once: after a reload the key is nowhere in the page.
    page.reload()
    page.get_by_role("tab", name="API keys").click()
    row.wait_for(timeout=20_000)
    assert key not in page.content()
    page.get_by_role("button", name="Revoke key grafana-ci").click()
    row.get_by_text("Revoked").wait_for(timeout=20_000)
    with httpx.Client(base_url=server.base, timeout=30) as c:
        assert c.get("/api/sites", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def _card(page: Page, metric: str) -> str:
    return page.locator(f"button.card[data-metric='{metric}'] .card-value").inner_text()


def test_a_shared_link_opens_read_only_and_says_so_once_revoked(
        server: Live, admin: httpx.Client, watched: Any, request: pytest.FixtureRequest) -> None:
    owner = watched(login=server).page
    open_settings(owner, server, "Shared links")
    form = owner.get_by_role("form", name="Create a shared link")
    form.get_by_label("Name").fill("Team wiki")
    form.get_by_role("button", name="Create link").click()
    owner.locator(".secret-value").wait_for(timeout=20_000)
    url = owner.locator(".secret-value").input_value()
    assert url.startswith(f"{server.base}/?site={SITE}&auth=sl_"), url
    secret = url.split("auth=")[1]
    links = admin.get("/api/v1/sites/shared-links", params={"site_id": SITE}).json()["shared_links"]
    assert [(x["name"], x["revoked"]) for x in links] == [("Team wiki", False)]

    # A fresh browser (no login) opens the link: the site's dashboard, read-only.
    guest = watched()
    page = guest.page
    page.goto(url + "&period=7d")
    page.locator(".card-change").first.wait_for(timeout=20_000)
    page.locator("section.panel:not(.is-loading) table.bars").first.wait_for(timeout=20_000)
    main = admin.get("/api/stats/main", params={"site_id": SITE, "period": "7d"}).json()
    assert _card(page, "visitors") == f"{main['unique_visitors']:,}"
    assert _card(page, "pageviews") == f"{main['total_pageviews']:,}"
    top = admin.get("/api/stats/breakdown/pages",
                    params={"site_id": SITE, "period": "7d", "limit": 10}).json()
    pages = page.locator("section.panel", has=page.get_by_role("heading", name="Pages"))
    shown = [" ".join(t.split()) for t in pages.locator("tbody tr").all_inner_texts()]
    assert shown == [f"{r['value']} {r['visitors']:,} {r['pageviews']:,}" for r in top], shown
    assert SITE in page.locator(".shared-site").inner_text()
    for name in ("Settings", "Sign out", "Revoke", "Delete", "Create key", "Create link", "Add goal"):
        assert page.get_by_role("button", name=name).count() == 0, name
    assert page.locator("select.site, form.site").count() == 0  # no picker of other sites
    api_calls = [r for r in guest.requests if "/api/" in r.url]
    assert api_calls and all(r.headers.get("x-mallard-share") == secret for r in api_calls), [
        (r.url, r.headers.get("x-mallard-share")) for r in api_calls]
    export = page.get_by_role("link", name="CSV").get_attribute("href") or ""
    assert f"site_id={SITE}" in export and f"auth={secret}" in export, export
    assert httpx.get(export, timeout=30).status_code == 200
    # The URL keeps the secret, so a reload still works.
    assert f"auth={secret}" in page.url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "shared-link-view.png"), full_page=True)

    # The owner revokes it: a panel asked again gets 401, and the page says the link no longer works.
    owner.get_by_role("button", name="Revoke link Team wiki").click()
    row = owner.locator("table.admin tbody tr", has_text="Team wiki")
    row.get_by_text("Revoked").wait_for(timeout=20_000)
    request.node.allowed_console = (RESOURCE_401,)  # Chromium logs that 401: expected here
    page.get_by_role("button", name="Reload").click()
    page.get_by_text("This shared link no longer works.").wait_for(timeout=20_000)
    page.reload()
    page.get_by_text("This shared link no longer works.").wait_for(timeout=20_000)
    assert page.locator("button.card, svg.chart").count() == 0
    assert [s for s, u in guest.statuses if "/api/" in u and s >= 500] == []


def test_the_first_run_page_shows_the_snippet_and_opens_on_the_first_event(
        mounted: Live, watched: Any) -> None:
    page = watched().page
    page.goto(f"{mounted.base}/?site={FIRST}")
    page.get_by_text("Waiting for the first event…").wait_for(timeout=20_000)
    assert mounted.base.endswith("/_m")
    values = page.locator(".first-run .secret-value")
    assert values.nth(0).input_value() == (
        f'<script defer data-domain="{FIRST}" src="{mounted.base}/mallard.js"></script>')
    assert values.nth(1).input_value() == (
        f'<script defer data-domain="{FIRST}" src="{mounted.base}/js/script.js"></script>')
    for name in ("mallard.js", "js/script.js"):  # the snippet's addresses are the script
        r = httpx.get(f"{mounted.base}/{name}", timeout=30)
        assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "first-run-waiting.png"), full_page=True)
    r = httpx.post(f"{mounted.base}/api/event", json={"d": FIRST, "n": "pageview", "u": f"https://{FIRST}/"},
                   headers={"User-Agent": UA}, timeout=30)
    assert r.status_code == 202, r.text
    page.locator(".card-value").first.wait_for(timeout=40_000)
    assert page.locator(".first-run").count() == 0


def test_locations_tabs_without_geoip_say_so(server: Live, admin: httpx.Client, watched: Any) -> None:
    info = admin.get("/api/stats/info", params={"site_id": SITE}).json()
    assert info["geoip"]["levels"] == ["country"], info  # built-in countries only, no database
    w = watched(login=server)
    page = w.page
    page.goto(f"{server.base}/?site={SITE}&period=7d")
    page.locator(".card-change").first.wait_for(timeout=20_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    panel = page.locator("section.panel", has=page.get_by_role("heading", name="Locations"))
    for tab in ("Regions", "Cities"):
        panel.get_by_role("tab", name=tab).click()
        hint = panel.locator(".geo-hint")
        hint.wait_for(timeout=10_000)
        assert "GeoIP not configured" in hint.inner_text()
        assert "docs/concepts.md#location" in hint.inner_text() and hint.get_by_role("link").count() == 0
        assert panel.get_by_text("(unknown)").count() == 0
        panel.screenshot(path=str(ARTIFACTS / f"geoip-hint-{tab.lower()}.png"))
    panel.get_by_role("tab", name="Countries").click()
    # the countries' answer (these visitors' private addresses have no country: one "not known" line)
    panel.locator("table.bars, .unknown-only").first.wait_for(timeout=10_000)
    assert panel.locator(".geo-hint").count() == 0


def test_a_custom_range_longer_than_the_server_allows_is_refused(
        server: Live, admin: httpx.Client, watched: Any) -> None:
    longest = admin.get("/api/stats/info", params={"site_id": SITE}).json()["max_range_days"]
    w = watched(login=server)
    page = w.page
    page.goto(f"{server.base}/?site={SITE}&period=7d")
    page.locator(".card-change").first.wait_for(timeout=20_000)
    page.keyboard.press("c")
    start_day = datetime(2024, 1, 1, tzinfo=UTC)
    page.get_by_label("From (inclusive)").fill(start_day.date().isoformat())
    page.get_by_label("To (inclusive)").fill((start_day + timedelta(days=longest + 1)).date().isoformat())
    page.get_by_role("button", name="Apply").click()
    alert = page.locator(".period .error")
    alert.wait_for(timeout=10_000)
    assert f"at most {longest} days" in alert.inner_text()
    page.locator("header.top").screenshot(path=str(ARTIFACTS / "range-too-long.png"))
    assert "period=7d" in page.url
    # The longest allowed range is taken.
    page.get_by_label("To (inclusive)").fill((start_day + timedelta(days=longest)).date().isoformat())
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('period') === 'custom'")
    page.locator("section.cards:not(.is-loading) .card-value").first.wait_for(timeout=30_000)
    assert [(s, u) for s, u in w.statuses if s == 400] == []


@pytest.mark.parametrize("tab", ["Goals", "API keys", "Shared links"])
def test_settings_fit_a_phone(server: Live, watched: Any, tab: str) -> None:
    page = watched(width=390, login=server).page
    open_settings(page, server, tab)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390


def test_a_shared_link_fits_a_phone(server: Live, admin: httpx.Client, watched: Any) -> None:
    r = admin.post("/api/v1/sites/shared-links", json={"site_id": SITE, "name": "Phone"},
                   headers={"Origin": server.base})
    assert r.status_code == 201, r.text
    page = watched(width=390).page
    page.goto(server.base + r.json()["url"] + "&period=7d")
    page.locator(".card-change").first.wait_for(timeout=20_000)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390


def test_first_run_fits_a_phone(mounted: Live, watched: Any) -> None:
    page = watched(width=390).page
    page.goto(f"{mounted.base}/?site=never.example")
    page.get_by_text("Waiting for the first event…").wait_for(timeout=20_000)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390


def test_settings_are_hidden_without_admin_access(mounted: Live, watched: Any) -> None:
    """Open mode (no password yet) reads the stats but cannot use the admin routes: no Settings."""
    page = watched().page
    page.goto(f"{mounted.base}/?site=host.example&view=settings")
    page.get_by_role("button", name="Reload").wait_for(timeout=20_000)
    eventually(lambda: page.evaluate("() => !document.querySelector('[aria-busy=true]')"))
    assert page.get_by_role("button", name="Settings").count() == 0
    assert page.locator("section.settings").count() == 0
