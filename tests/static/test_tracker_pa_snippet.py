"""Plausible's newer install snippet, as a site owner has it, with only the host of the script URL changed:
``<script async src=".../js/pa-<id>.js">`` plus the inline queue and ``plausible.init({...})``, in real
headless Chromium, posting to a real ``mallard serve`` on 127.0.0.1; what lands in the Parquet lake is read
back with DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.chromium import close
from tests.http.conftest import Live, serving
from tests.npm.pages import Site
from tests.npm.test_npm_trackers import UA, stored, waiter
from tests.static.test_tracker_browser import browser

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["browser"]  # the fixture, shared with the mallard.js browser tests

pytestmark = pytest.mark.slow

SCRIPT = "/js/pa-AqBGVqlDgFry_9WZW3j-D.js"
# Plausible's snippet, word for word, after the script tag; one call queued before the script can run.
SNIPPET = """<!doctype html><title>{site}</title>
<script async src="{serve}""" + SCRIPT + """"></script>
<script>
  window.plausible=window.plausible||function(){{(plausible.q=plausible.q||[]).push(arguments)}},plausible.init=plausible.init||function(i){{plausible.o=i||{{}}}};
  {before}
</script>
<a id="file" href="/files/report.pdf">report</a> <a id="out" href="{{partner}}">partner</a>"""
EARLY = """plausible('Early', {props: {from: 'queue'}});
  plausible.init({domain: 'pa.example', hashBasedRouting: true, outboundLinks: true, fileDownloads: true,
                  captureOnLocalhost: true, customProperties: {author: 'Ann'}})"""


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from serving("serve", tmp_path_factory, "pa")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context that presents a desktop Chrome (HeadlessChrome is dropped as a bot)."""
    context = browser.new_context(viewport={"width": 1280, "height": 700}, user_agent=UA)
    try:
        yield context.new_page()
    finally:
        close(context)


def events(serve: Live, site: str, column: str) -> list[tuple[object, ...]]:
    """(name, path, ``column``) of the site's stored events, engagement reports left out."""
    return [(r["event_name"], r["pathname"], r[column]) for r in stored(serve.data_dir, site)]


def test_new_snippet_with_init_before_the_script(serve: Live, page: Page) -> None:
    """init() before the script loads: the site, hash routing, file downloads, outbound links and
    customProperties from its options; the call queued before load is stored once; a second init() warns
    and sends nothing."""
    html = SNIPPET.format(site="pa", serve=serve.base, before=EARLY)
    arrived = waiter(serve.data_dir, "pa.example")
    warnings: list[str] = []
    page.on("console", lambda m: m.type == "warning" and warnings.append(m.text))
    with Site({"pa": html}) as site:
        page.goto(site.url("/pa/app#/start"))
        arrived("Early", 1)
        page.evaluate("location.hash = '#/settings'")
        arrived("pageview", 2)
        page.click("#file")
        arrived("File Download", 1)
        page.evaluate("plausible.init({domain: 'other.example'}); "
                      "plausible('Signup', {props: {plan: 'pro'}})")
        arrived("Signup", 1)
        page.click("#out")
        arrived("Outbound Link: Click", 1)
    assert events(serve, "pa.example", "props") == [
        ("pageview", "/pa/app#/start", '{"author":"Ann"}'),
        ("Early", "/pa/app#/start", '{"author":"Ann","from":"queue"}'),
        ("pageview", "/pa/app#/settings", '{"author":"Ann"}'),
        ("File Download", "/pa/app#/settings",
         f'{{"author":"Ann","url":"{site.url("/files/report.pdf")}"}}'),
        ("Signup", "/pa/app#/settings", '{"author":"Ann","plan":"pro"}'),
        ("Outbound Link: Click", "/pa/app#/settings",
         f'{{"author":"Ann","url":"{site.url("/partner", "localhost")}"}}'),
    ]
    assert events(serve, "other.example", "props") == []
    assert warnings == ["plausible.init() ran already: ignored"]


def test_new_snippet_with_init_after_the_script(serve: Live, page: Page) -> None:
    """The snippet without init(): nothing is sent and calls queue until the page calls init() after the
    script has loaded; then the pageview and the queued call are stored, once each."""
    html = SNIPPET.format(site="late", serve=serve.base, before="plausible('Before')")
    arrived = waiter(serve.data_dir, "late.example")
    with Site({"late": html}) as site:
        page.goto(site.url("/late/page"))  # returns on load, which an async script delays: it ran
        assert page.evaluate("[String(plausible.init).includes('plausible.o='), plausible.q.length]") == [
            False, 1]  # plausible.init is the script's own; the snippet's call is still queued
        page.evaluate("plausible('Queued'); "
                      "plausible.init({domain: 'late.example', captureOnLocalhost: true})")
        arrived("Queued", 1)
        page.evaluate("plausible('After')")
        arrived("After", 1)
    assert events(serve, "late.example", "screen_size") == [
        ("pageview", "/late/page", "1280"), ("Before", "/late/page", "1280"),
        ("Queued", "/late/page", "1280"), ("After", "/late/page", "1280")]
