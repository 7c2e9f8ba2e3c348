"""The browser tracker in real headless Chromium, posting to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from mallard._payload import RawEvent, parse_body

from ..chromium import chromium, close
from .quiet import QuietHandler

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


pytestmark = pytest.mark.slow  # headless Chromium
SCRIPT = Path(__file__).resolve().parents[2] / "mallard" / "static" / "mallard.js"
STUB = ("<script>window.mallard=window.mallard||function(){(window.mallard.q=window.mallard.q||[])"
        ".push(arguments)};mallard('Queued',{props:{n:1}});mallard('Queued 2')</script>")
PLAUSIBLE_STUB = ("<script>window.plausible=window.plausible||function(){(window.plausible.q="
                  "window.plausible.q||[]).push(arguments)};plausible('Early',{props:{from:'stub'}})</script>")
TAGGED = ('<button id="tagged" class="big plausible-event-name=Add+to+cart plausible-event-plan=pro '
          'plausible-revenue-amount=9.5 plausible-revenue-currency=USD"><span id="inner">Add</span></button>'
          '<form id="signup" class="plausible-event-name=Signup" onsubmit="return false">'
          '<button id="send" class="plausible-event-name=Inner">Send</button></form>')


@dataclass(frozen=True)
class Hit:
    """One request the server received."""

    method: str
    path: str
    content_type: str | None
    body: bytes


class Server:
    """A test site: pages, the script under /_m/, and an event endpoint that records bodies, answers 202."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.changed = threading.Condition()
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/_m/mallard.js" or (path.startswith("/_m/js/") and path.endswith(".js")):
                    self.send(200, SCRIPT.read_bytes(), "text/javascript")
                elif path == "/favicon.ico":
                    self.send(404)
                else:
                    self.send(200, server.page(path).encode())

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.record(Hit("POST", self.path, self.headers.get("Content-Type"), body))
                self.send(202 if self.path == "/_m/api/event" else 404)

            def do_OPTIONS(self) -> None:
                server.record(Hit("OPTIONS", self.path, None, b""))
                self.send(204)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def page(self, path: str) -> str:
        if path.startswith("/plausible"):  # Plausible's snippet and a variant name
            return ("<!doctype html><title>shop</title>" + PLAUSIBLE_STUB +
                    f'<script defer data-domain="shop.example" src="http://127.0.0.1:{self.port}/_m/js/'
                    f'script.hash.local.tagged-events.js"></script>' + TAGGED)
        script = "js/script.js" if path.startswith("/alias") else "mallard.js"
        return ("<!doctype html><title>shop</title>" + (STUB if path.startswith("/queued") else "") +
                f'<script defer data-domain="shop.example" data-include-local data-outbound '
                f'src="http://127.0.0.1:{self.port}/_m/{script}"></script>'
                f'<a id="out" href="http://localhost:{self.port}/partner">partner</a>')

    def record(self, hit: Hit) -> None:
        with self.changed:
            self.hits.append(hit)
            self.changed.notify_all()

    def events(self) -> list[RawEvent]:
        with self.changed:
            bodies = [hit.body for hit in self.hits if hit.method == "POST"]
        return [raw for body in bodies for raw in parse_body(body)]

    def wait_for(self, done: Callable[[list[RawEvent]], bool], timeout: float = 10) -> list[RawEvent]:
        """Wait until the received events satisfy ``done``; return them."""
        deadline = time.monotonic() + timeout
        while not done(events := self.events()):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out; received {[(e.name, e.url) for e in events]}"
            with self.changed:
                self.changed.wait(min(remaining, 0.2))
        return events

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def _named(name: str) -> Callable[[list[RawEvent]], bool]:
    return lambda events: any(e.name == name for e in events)


def landed(server: Server, page: Page, url: str) -> None:
    """Wait until the navigation the test started has landed on ``url`` and its page has sent its
    pageview, so the test does not end, and close its page, while Chromium commits that navigation (a
    close that races a commit can wait forever, see tests/chromium.close)."""
    page.wait_for_url(url)
    server.wait_for(lambda events: any(e.name == "pageview" and e.url == url for e in events))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture
def server() -> Generator[Server]:
    site = Server()
    site.thread.start()
    yield site
    site.httpd.shutdown()
    site.httpd.server_close()
    site.thread.join(5)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1024, "height": 700})
    try:
        yield context.new_page()
    finally:
        close(context)


def test_pageview_on_load(server: Server, page: Page) -> None:
    """Loading a page sends one pageview with the site, url and viewport width."""
    page.goto(server.url("/pricing?plan=pro"))
    (event,) = server.wait_for(_named("pageview"))
    assert event == RawEvent(site="shop.example", name="pageview", url=server.url("/pricing?plan=pro"),
                             screen_width=1024)


def test_cross_origin_beacon_needs_no_preflight(server: Server, page: Page) -> None:
    """A page on another origin (localhost) posts to the script's origin with no CORS preflight."""
    page.goto(server.url("/alias", host="localhost"))
    (event,) = server.wait_for(_named("pageview"))
    assert event.url == server.url("/alias", host="localhost")
    assert [(hit.method, hit.path, hit.content_type) for hit in server.hits] == [
        ("POST", "/_m/api/event", "text/plain")]


def test_spa_navigation(server: Server, page: Page) -> None:
    """pushState to a new path and back sends pageviews, each after the engagement report of the page
    left; pushState to the same path sends none."""
    page.goto(server.url("/app"))
    server.wait_for(_named("pageview"))
    page.evaluate("history.pushState({}, '', '/app/settings')")
    server.wait_for(lambda events: sum(e.name == "pageview" for e in events) == 2)
    page.evaluate("history.pushState({step: 2}, '', '/app/settings'); history.replaceState({}, '', '#x')")
    page.evaluate("history.back()")
    page.wait_for_function("location.pathname === '/app/settings' && location.hash === ''")
    page.evaluate("history.back()")
    page.wait_for_function("location.pathname === '/app'")
    page.evaluate("mallard('Marker')")
    # Beacons travel on separate connections: compare what arrived, not the order it arrived in.
    events = server.wait_for(lambda events: len(events) >= 6 and any(e.name == "Marker" for e in events))
    assert sorted((e.name, e.url, e.referrer or "") for e in events) == sorted([
        ("pageview", server.url("/app"), ""),
        ("engagement", server.url("/app"), ""),
        ("engagement", server.url("/app/settings"), ""),
        ("pageview", server.url("/app/settings"), ""),
        ("pageview", server.url("/app"), ""),
        ("Marker", server.url("/app"), ""),
    ])


def test_custom_event_with_props_and_revenue(server: Server, page: Page) -> None:
    """mallard(name, {props, revenue, currency}) arrives with p as a JSON string, ra and rc."""
    page.goto(server.url("/checkout"))
    page.wait_for_function("typeof mallard === 'function' && !mallard.q")
    page.evaluate("mallard('Purchase', {props: {plan: 'pro'}, revenue: 19.9, currency: 'EUR'})")
    event = server.wait_for(_named("Purchase"))[-1]
    assert isinstance(event.props, str)
    assert orjson.loads(event.props) == {"plan": "pro"}
    assert (event.revenue, event.currency) == (19.9, "EUR")


def test_callback_gets_the_status(server: Server, page: Page) -> None:
    """A callback receives {status: 202} from the server."""
    page.goto(server.url("/signup"))
    page.wait_for_function("typeof mallard === 'function' && !mallard.q")
    status = page.evaluate("new Promise((done) => mallard('Signup', {callback: done}))")
    assert status == {"status": 202}


def test_queued_calls_are_replayed(server: Server, page: Page) -> None:
    """Calls made to the stub before the script loaded all arrive, with the pageview. (Beacons travel on
    separate connections, so their arrival order is not theirs to keep; the order in which the script
    sends them is checked in test_tracker_script.py.)"""
    page.goto(server.url("/queued"))
    events = server.wait_for(lambda events: len(events) == 3)
    assert sorted((e.name, e.props or "") for e in events) == [("Queued", '{"n":1}'), ("Queued 2", ""),
                                                                ("pageview", "")]


def test_event_survives_navigating_away(server: Server, page: Page) -> None:
    """An event sent right before leaving the page still arrives."""
    page.goto(server.url("/landing"))
    page.wait_for_function("typeof mallard === 'function' && !mallard.q")
    page.evaluate("mallard('Signup'); location.href = '/elsewhere'")
    events = server.wait_for(_named("Signup"))
    assert next(e for e in events if e.name == "Signup").url == server.url("/landing")
    landed(server, page, server.url("/elsewhere"))


def test_outbound_click_survives_the_navigation(server: Server, page: Page) -> None:
    """Clicking a link to another host sends Outbound Link: Click while the browser leaves the page."""
    page.goto(server.url("/links"))
    page.wait_for_function("typeof mallard === 'function' && !mallard.q")
    page.click("#out")
    events = server.wait_for(_named("Outbound Link: Click"))
    (click,) = [e for e in events if e.name == "Outbound Link: Click"]
    assert click.props == orjson.dumps({"url": server.url("/partner", host="localhost")}).decode()
    landed(server, page, server.url("/partner", host="localhost"))


def test_plausible_snippet_variant_and_tagged_events(server: Server, page: Page) -> None:
    """Plausible's snippet (window.plausible queue) with a variant name (script.hash.local.tagged-events.js):
    the queued call arrives, the pageview keeps the fragment with h=1, a hash change is a pageview, a click
    inside a tagged button sends its event with props and revenue, a tagged form sends on submit and a
    click on a tagged button inside it sends nothing of its own."""
    page.goto(server.url("/plausible#/start"))
    server.wait_for(lambda events: {"pageview", "Early"} <= {e.name for e in events})
    page.wait_for_function("typeof plausible === 'function' && !plausible.q")
    page.evaluate("location.hash = '#/next'")
    server.wait_for(lambda events: sum(e.name == "pageview" for e in events) == 2)
    page.click("#inner")
    page.click("#send")
    events = server.wait_for(lambda events: {"Add to cart", "Signup"} <= {e.name for e in events})
    by_name = {e.name: e for e in events if e.name != "pageview"}
    assert sorted((e.url, e.hash_mode) for e in events if e.name == "pageview") == [
        (server.url("/plausible#/next"), True), (server.url("/plausible#/start"), True)]
    assert by_name["Early"].props == '{"from":"stub"}'
    cart = by_name["Add to cart"]
    assert (cart.props, cart.revenue, cart.currency) == ('{"plan":"pro"}', 9.5, "USD")
    assert "Inner" not in by_name
