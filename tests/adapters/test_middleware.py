"""The server-side pageview middleware (ASGI and WSGI), driven in-process through httpx's ASGI and WSGI
transports (the real middleware, app and mallard; no server needed)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

import mallard
from mallard.adapters.middleware import PageviewMiddleware, PageviewWSGIMiddleware

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
SITE = "mw.example"
HTML = [(b"content-type", b"text/html; charset=utf-8")]


def pages(m: mallard.Mallard) -> dict[str, int]:
    rows = m.queries.breakdown(SITE, "pages", period="day", limit=100).rows
    return {r["value"]: r["pageviews"] for r in rows}


async def host_asgi(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    path = scope["path"]
    status = 404 if path == "/missing" else 200
    headers = [(b"content-type", b"text/css")] if path.endswith(".css") else HTML
    if path == "/api/data":
        headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"<p>hi</p>"})


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asgi_middleware_counts_html_pages_only(m: mallard.Mallard, anyio_backend: str) -> None:
    """HTML 2xx GETs count; static files, JSON, 404s, POSTs, prefetches and the mallard prefix do not."""
    app = PageviewMiddleware(host_asgi, m, site=SITE, skip_prefixes=("/_m",))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://mw.example",
                                 headers={"User-Agent": UA}) as c:
        await c.get("/")
        await c.get("/pricing?plan=pro")
        await c.get("/style.css")
        await c.get("/api/data")
        await c.get("/missing")
        await c.post("/")
        await c.get("/_m/")
        await c.get("/next", headers={"Sec-Purpose": "prefetch"})
    assert pages(m) == {"/": 1, "/pricing": 1}


def test_wsgi_middleware_counts_html_pages_only(m: mallard.Mallard) -> None:
    """The WSGI middleware applies the same rules."""
    def host(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        ctype = "text/css" if path.endswith(".css") else "text/html"
        start_response("404 Not Found" if path == "/missing" else "200 OK", [("Content-Type", ctype)])
        return [b"<p>hi</p>"]

    app = PageviewWSGIMiddleware(host, m, site=SITE)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="https://mw.example",
                      headers={"User-Agent": UA}) as c:
        for path in ("/", "/docs", "/a.css", "/missing", "/_m/api/stats/main"):
            c.get(path)
    assert pages(m) == {"/": 1, "/docs": 1}
