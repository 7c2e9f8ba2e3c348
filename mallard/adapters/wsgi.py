"""WSGI adapter: :class:`MallardWSGI` for Django, bare WSGI hosts and gunicorn.

``SCRIPT_NAME`` is the mount prefix and ``PATH_INFO`` the path below it (mount it with your framework's
dispatcher or ``werkzeug.middleware.dispatcher.DispatcherMiddleware``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from .._app import Mallard
from .._http.api import Api
from .._http.messages import Request, Response

__all__ = ["MallardWSGI", "environ_headers", "read_wsgi_body"]

StartResponse = Callable[..., Any]


def environ_headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {key[5:].replace("_", "-").lower(): str(value)
               for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = str(environ["CONTENT_LENGTH"])
    return headers


def read_wsgi_body(environ: dict[str, Any], limit: int) -> bytes | None:
    """The body, or None when it exceeds ``limit`` bytes (declared or actual)."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text:
        try:
            length = int(length_text)
        except ValueError:
            return b""
        if length > limit:
            return None
        return bytes(stream.read(length)) if length > 0 else b""
    data = stream.read(limit + 1)  # chunked (gunicorn supplies a terminated stream)
    return None if len(data) > limit else bytes(data)


def to_request(environ: dict[str, Any], body: bytes) -> Request:
    path = environ.get("PATH_INFO", "") or "/"
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):  # PEP 3333: latin-1 bytes
        path = path.encode("latin-1").decode("utf-8")
    return Request(method=str(environ.get("REQUEST_METHOD", "GET")).upper(), path=path,
                   query_string=str(environ.get("QUERY_STRING", "")),
                   headers=environ_headers(environ), body=body,
                   client=environ.get("REMOTE_ADDR") or None,
                   root_path=str(environ.get("SCRIPT_NAME", "")).rstrip("/"),
                   scheme=str(environ.get("wsgi.url_scheme", "http")))


def respond(start_response: StartResponse, response: Response) -> Iterable[bytes]:
    start_response(f"{response.status} {response.reason}", list(response.headers))
    return [response.body]


class MallardWSGI:
    """mallard's HTTP API, tracking script and dashboard as a WSGI app.

    Args:
        mallard: the instance to serve; when omitted one is built from ``**options``.
    """

    def __init__(self, mallard: Mallard | None = None, **options: Any) -> None:
        self.mallard = mallard if mallard is not None else Mallard(**options)
        self.api = Api.for_mallard(self.mallard)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = read_wsgi_body(environ, self.api.max_body_bytes)
        if body is None:
            return respond(start_response,
                           self.api.refuse(413, f"Request body exceeds {self.api.max_body_bytes} bytes."))
        return respond(start_response, self.api.handle(to_request(environ, body)))
