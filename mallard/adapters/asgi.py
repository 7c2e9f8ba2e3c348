"""ASGI adapter: :class:`MallardASGI`, a pure ASGI application (no framework on the request path).

Mount it in Starlette/FastAPI with ``Mount("/_m", app=MallardASGI(m))`` or run it alone under uvicorn.
It honours ``root_path``, starts the core lazily on the first request (mounted apps never receive
lifespan events) and also answers lifespan events when it is the root app. Ingestion and static files
are answered on the event loop (they never block beyond one append to the spool); queries and password
hashing run in a thread pool of ``read_connections`` threads.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .._app import Mallard
from .._http.api import Api
from .._http.messages import Request, Response

__all__ = ["MallardASGI", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def scope_headers(scope: Scope) -> dict[str, str]:
    raw = scope.get("headers", ())
    # The common case: no repeated header, so one comprehension (a third of the loop's cost).
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}
    if len(headers) == len(raw):
        return headers
    headers = {}
    for raw_name, raw_value in raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name in headers:
            headers[name] += ("; " if name == "cookie" else ", ") + value
        else:
            headers[name] = value
    return headers


def mount_path(scope: Scope) -> tuple[str, str]:
    """(path below the mount point, mount prefix) of an HTTP scope."""
    root = scope.get("root_path", "") or ""
    path = scope.get("path", "/") or "/"
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root):] or "/"
    return path, root


async def read_body(receive: Receive, limit: int, first: Message) -> bytes | None:
    """The request body (``first``: its first message, already received), or None when it exceeds
    ``limit`` bytes."""
    message = first
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


class _Deadline:
    """Cancels the running task after ``seconds`` unless cancelled first: a bare timer, at half the
    cost of ``asyncio.timeout()`` on the ingestion path."""

    __slots__ = ("_expired", "_handle", "_task")

    def __init__(self, seconds: float) -> None:
        self._expired = False
        self._task = asyncio.current_task()
        self._handle = asyncio.get_running_loop().call_later(seconds, self._fire)

    def _fire(self) -> None:
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    def expire(self) -> bool:
        """After a CancelledError: True when this deadline caused it (the cancellation is then
        absorbed), False when someone else cancelled the task."""
        if self._expired and self._task is not None:
            self._task.uncancel()
            return True
        return False

    def cancel(self) -> None:
        self._handle.cancel()


class MallardASGI:
    """mallard's HTTP API, tracking script and dashboard as an ASGI app.

    Args:
        mallard: the instance to serve; when omitted one is built from ``**options`` (and the
            environment), e.g. ``MallardASGI(data_dir="var/analytics")``.
    """

    def __init__(self, mallard: Mallard | None = None, **options: Any) -> None:
        self.mallard = mallard if mallard is not None else Mallard(**options)
        self.api = Api.for_mallard(self.mallard)
        self._pool = ThreadPoolExecutor(max_workers=self.mallard.settings.read_connections,
                                        thread_name_prefix="mallard-http")
        self._owns_process = False  # set by create_app(): the whole process is this server
        self._body_timeout = self.mallard.settings.body_timeout_secs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets: not ours
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        path, root = mount_path(scope)
        headers = scope_headers(scope)
        limit = self.api.max_body_bytes
        # A body is announced by one of these headers; only then can a client stall while sending it.
        deadline = (_Deadline(self._body_timeout)
                    if "content-length" in headers or "transfer-encoding" in headers else None)
        body: bytes | None
        try:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                whole: bytes = message.get("body", b"")  # the whole body in one message: no loop
                body = whole if len(whole) <= limit else None
            else:
                body = await read_body(receive, limit, message)
        except asyncio.CancelledError:
            if deadline is None or not deadline.expire():
                raise
            await self._send(send, self.api.refuse_slow_body())
            return
        finally:
            if deadline is not None:
                deadline.cancel()
        if body is None:
            response = self.api.refuse(413, f"Request body exceeds {limit} bytes.")
        else:
            client = scope.get("client")
            request = Request(method=scope.get("method", "GET").upper(), path=path,
                              query_string=scope.get("query_string", b"").decode("latin-1"),
                              headers=headers, body=body,
                              client=client[0] if client else None, root_path=root,
                              scheme=scope.get("scheme", "http"))
            if self.api.is_blocking(request.method, path):
                loop = asyncio.get_running_loop()
                response = await loop.run_in_executor(self._pool, self.api.handle, request)
            else:
                response = self.api.handle(request)
        await self._send(send, response)

    async def refuse_busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI app answering a request past ``limit_concurrency`` (called by ``mallard serve``'s
        protocol instead of uvicorn's plain-text 503): a JSON 503, counted."""
        await self._send(send, self.api.refuse_busy())

    @staticmethod
    async def _send(send: Send, response: Response) -> None:
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]})
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    # A full or unwritable disk does not fail the startup (reads need no disk;
                    # ingestion answers 503 meanwhile), a configuration error does.
                    self.mallard.start_degraded()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                if self._owns_process:
                    # What exists now (modules, parsers, the database) lives as long as the worker:
                    # out of the collector's way, so full collections only walk request garbage.
                    gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, self.mallard.close)
                self._pool.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app() -> MallardASGI:
    """App factory for ``mallard serve`` (uvicorn ``--factory``): settings from ``MALLARD_*``."""
    app = MallardASGI(Mallard())
    app._owns_process = True
    return app
