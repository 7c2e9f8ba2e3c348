"""Pages that load Plausible's own npm trackers (pinned in tests/npm/package.json) as ES modules, served by
a small HTTP server on 127.0.0.1, and the steps that drive them in Chromium. Shared by the browser test
(test_npm_trackers.py, posting to a real ``mallard serve``) and by record.py, which captured the request
bodies in recorded.json once.
"""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

from tests.static.quiet import QuietHandler

if TYPE_CHECKING:
    from playwright.sync_api import Page

MODULES = Path(__file__).resolve().parent / "node_modules"
V4 = "@plausible-analytics/tracker/plausible.js"  # one self-contained ES module
V3 = "plausible-tracker/build/module/index.js"  # ES modules importing "./lib/tracker" without ".js"
SITES = {"v4": "v4.npm.example", "v3": "v3.npm.example", "v4h": "v4h.npm.example"}
GOOGLE = "https://www.google.com/"
HN = "https://news.ycombinator.com/"


def v4_page(endpoint: str, *, hash_routing: bool = False) -> str:
    domain = SITES["v4h" if hash_routing else "v4"]
    return f"""<!doctype html><title>v4</title>
<a id="file" href="/files/report.pdf">report</a> <a id="out" href="{{partner}}">partner</a>
<script type="module">
import {{init, track}} from '/npm/{V4}'
window.__plausible = true  // the tracker ignores browsers driven by WebDriver (Playwright) otherwise
init({{domain: '{domain}', endpoint: '{endpoint}', captureOnLocalhost: true, outboundLinks: true,
      fileDownloads: true, logging: false, hashBasedRouting: {str(hash_routing).lower()}}})
window.track = track
</script>"""


def v3_page(api_host: str) -> str:
    return f"""<!doctype html><title>v3</title>
<a id="out" href="{{partner}}">partner</a>
<script type="module">
import Plausible from '/npm/{V3}'
const p = Plausible({{domain: '{SITES["v3"]}', apiHost: '{api_host}', trackLocalhost: true}})
p.enableAutoPageviews()
p.enableAutoOutboundTracking()
window.p = p
</script>"""


class Site:
    """Serves the tracker pages under /<tracker>/ (v4, v4h, v3), the npm modules under /npm/, a PDF link
    target (204, so that the browser stays on the page) and a partner page on the other host name."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        site = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0].split("#")[0]
                if path.startswith("/npm/"):
                    file = site.module(path[len("/npm/"):])
                    if file is None:
                        self.send(404)
                    else:
                        self.send(200, file.read_bytes(), "text/javascript")
                elif path.split("/")[1] in site.pages:
                    html = site.pages[path.split("/")[1]].replace("{partner}",
                                                                  site.url("/partner", "localhost"))
                    self.send(200, html.encode())
                elif path.startswith("/files/"):
                    self.send(204)
                else:
                    self.send(200, b"<!doctype html><title>elsewhere</title>")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def module(name: str) -> Path | None:
        """A file under node_modules; ``./lib/tracker`` imports resolve to ``lib/tracker.js``."""
        if ".." in name.split("/"):
            return None
        for candidate in (MODULES / name, MODULES / (name + ".js")):
            if candidate.is_file() and mimetypes.guess_type(candidate.name)[0] == "text/javascript":
                return candidate
        return None

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def drive_v4(page: Page, site: Site, arrived: Callable[[str, int], None]) -> None:
    """@plausible-analytics/tracker 0.4: a landing pageview with UTM tags and a Google referrer, an SPA
    navigation, a custom event with props, a purchase with revenue, a file download, an outbound link.
    ``arrived(name, n)`` waits until ``n`` events called ``name`` have been received."""
    page.goto(site.url("/v4/landing?utm_source=newsletter&ref=producthunt"), referer=GOOGLE)
    page.wait_for_function("typeof window.track === 'function'")
    arrived("pageview", 1)
    page.evaluate("history.pushState({}, '', '/v4/pricing')")
    arrived("pageview", 2)
    page.evaluate("track('Signup', {props: {plan: 'pro'}})")
    page.evaluate("track('Purchase', {props: {sku: 'a1'}, revenue: {amount: 19.9, currency: 'EUR'}})")
    page.click("#file")
    arrived("File Download", 1)
    page.click("#out")
    arrived("Outbound Link: Click", 1)


def drive_v3(page: Page, site: Site, arrived: Callable[[str, int], None]) -> None:
    """plausible-tracker 0.3: a pageview with a referrer, an SPA navigation, a custom event with props
    and an outbound link (the package has no revenue and no file downloads)."""
    page.goto(site.url("/v3/home"), referer=HN)
    page.wait_for_function("typeof window.p === 'object'")
    arrived("pageview", 1)
    page.evaluate("history.pushState({}, '', '/v3/docs')")
    arrived("pageview", 2)
    page.evaluate("p.trackEvent('Signup', {props: {plan: 'team'}})")
    arrived("Signup", 1)
    page.click("#out")
    arrived("Outbound Link: Click", 1)


def drive_v4_hash(page: Page, site: Site, arrived: Callable[[str, int], None]) -> None:
    """@plausible-analytics/tracker 0.4 with hashBasedRouting: a pageview of /v4h/app#/start, then a hash
    change to #/settings."""
    page.goto(site.url("/v4h/app#/start"))
    page.wait_for_function("typeof window.track === 'function'")
    arrived("pageview", 1)
    page.evaluate("location.hash = '#/settings'")
    arrived("pageview", 2)
