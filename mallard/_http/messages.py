"""Framework-neutral HTTP messages: :class:`Request`, :class:`Response` and :class:`HTTPError`.

Adapters translate their framework's request into a :class:`Request` (path relative to the mount point,
lower-cased headers, the socket peer's address) and write the :class:`Response` back. Nothing here does
I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

import orjson

__all__ = ["HTTPError", "Request", "Response", "json_response", "text_response"]


@dataclass(slots=True)
class Request:
    """One HTTP request as mallard sees it.

    Attributes:
        method: upper-case method.
        path: the path below the mount point, always starting with ``/`` (``/api/event``).
        query_string: the raw query string (without ``?``).
        headers: lower-cased header names; repeated headers joined with ``", "``.
        body: the request body (the adapter enforces the size limit).
        client: the socket peer's address (no port), or None when the server does not say.
        root_path: the mount prefix (``/_m``), ``""`` at the root; used for cookie paths and links.
        scheme: ``http`` or ``https`` as the server saw it.
    """

    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    client: str | None = None
    root_path: str = ""
    scheme: str = "http"
    _query: dict[str, list[str]] | None = None

    @property
    def query(self) -> dict[str, list[str]]:
        """Parsed query parameters (every value of a repeated name, in order)."""
        if self._query is None:
            try:
                self._query = parse_qs(self.query_string, keep_blank_values=True, strict_parsing=False,
                                       max_num_fields=200)
            except ValueError:
                raise HTTPError(400, "Too many query parameters.", code="too_many_params") from None
        return self._query

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The last value of query parameter ``name``."""
        values = self.query.get(name)
        return values[-1] if values else default

    def cookie(self, name: str) -> str | None:
        raw = self.headers.get("cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(name)
        return morsel.value if morsel is not None else None

    def json(self) -> Any:
        """The body parsed as JSON (400 when it is not)."""
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            raise HTTPError(400, "Request body is not valid JSON.", code="malformed_json") from None


@dataclass(slots=True)
class Response:
    """Status, headers (in order, repeatable) and body bytes."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)

    @property
    def reason(self) -> str:
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return "Unknown"


class HTTPError(Exception):
    """A response that ends handling: ``{"error": message, "code": code}`` with ``status`` (and extra
    headers). Without a ``code``, the answer carries its status's (:data:`mallard._http.errors.STATUS_CODES`).
    """

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = list(headers)


def json_response(data: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, [("Content-Type", "application/json"), *headers],
                    orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS))


def text_response(text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8",
                  headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, [("Content-Type", content_type), *headers], text.encode())
