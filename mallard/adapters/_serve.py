"""uvicorn as ``mallard serve`` runs it: limits, timeouts and the HTTP protocol that enforces them.

uvicorn bounds idle keep-alive connections and, with ``limit_concurrency``, answers 503 past a number
of connections, but it never closes a connection that is opened and then sends nothing (or half of its
headers): such clients would hold their slots forever. The protocols below are uvicorn's own with one
addition, a watch that closes a connection which made no progress towards a request for a whole
``header_timeout_secs``. The httptools protocol also answers the 503 through
:meth:`MallardASGI.refuse_busy` (JSON, counted) instead of uvicorn's plain text. A slow request *body*
is bounded by the ASGI adapter itself (``body_timeout_secs``), so that holds under any ASGI server.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.protocols.http.flow_control import service_unavailable

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - httptools is part of the asgi extra
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]

from .._settings import Settings

__all__ = ["ServeProtocol", "uvicorn_options"]


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` that carry mallard's server limits."""
    return {"limit_concurrency": settings.limit_concurrency or None, "backlog": settings.backlog,
            "timeout_keep_alive": settings.keep_alive_timeout_secs, "http": ServeProtocol}


@cache
def _header_timeout() -> float:
    # Worker processes build their settings from the environment `mallard serve` exported.
    return Settings.load().header_timeout_secs


class _HeaderWatch:
    """Every ``header_timeout_secs``: close the connection if it is between requests (none started,
    or the last one answered) and was already so, with the same request, at the previous check."""

    __slots__ = ("_handle", "_protocol", "_seen")

    def __init__(self, protocol: ServeProtocol) -> None:
        self._protocol = protocol
        self._seen: object = None  # the request cycle seen at the previous check
        self._handle = protocol.loop.call_later(_header_timeout(), self._check)

    def _check(self) -> None:
        protocol = self._protocol
        cycle = protocol.cycle
        if (cycle is None or cycle.response_complete) and cycle is self._seen:
            if not protocol.transport.is_closing():
                protocol.transport.close()
            return
        self._seen = cycle
        self._handle = protocol.loop.call_later(_header_timeout(), self._check)

    def stop(self) -> None:
        self._handle.cancel()


class ServeProtocol(_Base):
    """uvicorn's HTTP protocol (httptools, else h11) with the header watch; under httptools a request
    past ``limit_concurrency`` gets :meth:`MallardASGI.refuse_busy`'s JSON 503."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch = _HeaderWatch(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._watch.stop()
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:  # httptools only
        if app is service_unavailable:  # past limit_concurrency
            app = getattr(self.app, "refuse_busy", app)
        super()._start_asgi_task(cycle, app)
