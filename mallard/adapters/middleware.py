"""Host-app middleware for ASGI and WSGI: a request context for ``track()`` and server-side pageviews.

``PageviewMiddleware`` (ASGI) and ``PageviewWSGIMiddleware`` wrap the *host* application. For every
request they make the client's IP and User-Agent current (so ``m.track("signup", ...)`` inside a view
needs neither), and, when ``pageviews=True``, they record a pageview for each successful HTML page the
host serves, without any JavaScript: GET, status 2xx, ``Content-Type: text/html``, not below the mallard
mount prefix, not a static file, not a prefetch. Ad blockers cannot hide these; bots are still dropped
by the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from .._app import Mallard
from .._http.messages import Request
from .._http.security import client_context
from .._tracker import ClientContext
from ..context import reset_client, set_client
from .asgi import Receive, Scope, Send, mount_path, scope_headers

__all__ = ["PageviewMiddleware", "PageviewWSGIMiddleware"]

_STATIC: Final = (".css", ".js", ".mjs", ".map", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".webp",
                  ".avif", ".woff", ".woff2", ".ttf", ".txt", ".xml", ".json", ".pdf", ".zip", ".mp4")


def _countable(method: str, path: str, status: int, content_type: str, headers: dict[str, str],
               skip_prefixes: tuple[str, ...]) -> bool:
    if method != "GET" or not 200 <= status < 300 or "text/html" not in content_type.lower():
        return False
    if any(path == p or path.startswith(p.rstrip("/") + "/") for p in skip_prefixes):
        return False
    if path.lower().endswith(_STATIC):
        return False
    purpose = (headers.get("sec-purpose") or headers.get("purpose") or "").lower()
    return "prefetch" not in purpose and "prerender" not in purpose


class _Base:
    def __init__(self, mallard: Mallard, *, site: str | None, pageviews: bool,
                 skip_prefixes: Iterable[str]) -> None:
        self.mallard = mallard
        self.site = site
        self.pageviews = pageviews
        self.skip_prefixes = tuple(skip_prefixes)

    def _context(self, headers: dict[str, str], peer: str | None) -> ClientContext:
        return client_context(Request("GET", "/", headers=headers, client=peer), self.mallard.settings)

    def _track(self, ctx: ClientContext, headers: dict[str, str], scheme: str, path: str,
               query: str) -> None:
        host = headers.get("host", "")
        site = self.site or host.split(":", 1)[0]
        if not site:
            return
        url = f"{scheme}://{host}{path}" + (f"?{query}" if query else "")
        self.mallard.track("pageview", site=site, url=url, ip=ctx.ip, user_agent=ctx.user_agent,
                           referrer=headers.get("referer"), headers=headers)


class PageviewMiddleware(_Base):
    """ASGI middleware around the host app (see the module docstring).

    Args:
        app: the host ASGI app.
        mallard: the instance that records pageviews.
        site: the site id to record under (default: the request's host name).
        pageviews: record server-side pageviews (False: only the request context).
        skip_prefixes: paths never counted (mallard's own mount, e.g. ``("/_m",)``).
    """

    def __init__(self, app: Callable[..., Any], mallard: Mallard, *, site: str | None = None,
                 pageviews: bool = True, skip_prefixes: Iterable[str] = ("/_m",)) -> None:
        super().__init__(mallard, site=site, pageviews=pageviews, skip_prefixes=skip_prefixes)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope_headers(scope)
        client = scope.get("client")
        ctx = self._context(headers, client[0] if client else None)
        seen: dict[str, Any] = {}

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                seen["type"] = next((v.decode("latin-1") for k, v in message.get("headers", ())
                                     if k.lower() == b"content-type"), "")
            await send(message)

        token = set_client(ctx)
        try:
            await self.app(scope, receive, watch)
        finally:
            reset_client(token)
        path, _ = mount_path(scope)
        full = (scope.get("root_path", "") or "") + path
        if self.pageviews and _countable(scope.get("method", "GET"), full, seen.get("status", 0),
                                         seen.get("type", ""), headers, self.skip_prefixes):
            self._track(ctx, headers, scope.get("scheme", "http"), full,
                        scope.get("query_string", b"").decode("latin-1"))


class PageviewWSGIMiddleware(_Base):
    """WSGI middleware around the host app (arguments as :class:`PageviewMiddleware`)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], mallard: Mallard, *, site: str | None = None,
                 pageviews: bool = True, skip_prefixes: Iterable[str] = ("/_m",)) -> None:
        super().__init__(mallard, site=site, pageviews=pageviews, skip_prefixes=skip_prefixes)
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        from .wsgi import environ_headers

        headers = environ_headers(environ)
        ctx = self._context(headers, environ.get("REMOTE_ADDR") or None)
        seen: dict[str, Any] = {}

        def watch(status: str, response_headers: list[tuple[str, str]], *args: Any) -> Any:
            seen["status"] = int(status.split(" ", 1)[0])
            seen["type"] = next((v for k, v in response_headers if k.lower() == "content-type"), "")
            return start_response(status, response_headers, *args)

        token = set_client(ctx)
        try:
            body = self.app(environ, watch)
        finally:
            reset_client(token)
        path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        if self.pageviews and _countable(str(environ.get("REQUEST_METHOD", "GET")), path,
                                         seen.get("status", 0), seen.get("type", ""), headers,
                                         self.skip_prefixes):
            self._track(ctx, headers, str(environ.get("wsgi.url_scheme", "http")), path,
                        str(environ.get("QUERY_STRING", "")))
        return body
