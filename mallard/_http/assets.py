"""Packaged static files (the tracking script, the dashboard) with ETags and content coding.

Each file is read once per process and kept with its gzip and, when the optional ``brotli`` package is
importable, brotli forms, each compressed once at first request: a client whose ``Accept-Encoding``
allows one gets it (brotli first, as it is the smaller), with ``Content-Encoding`` and
``Vary: Accept-Encoding``. Each form has its own ETag (a strong validator names one representation),
so ``If-None-Match`` answers 304 only for the form that would be sent.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from .._packaged import static_file
from .messages import HTTPError, Request, Response

__all__ = ["CODINGS", "Static", "asset", "load", "negotiate"]


def _brotli() -> Callable[[bytes], bytes] | None:
    """``brotli.compress`` when the optional package is installed (extra ``brotli``)."""
    try:
        module = importlib.import_module("brotli")  # untyped: looked up, not imported by name
    except ImportError:
        return None
    compress: Callable[..., bytes] = module.compress

    # Quality 5, not brotli's default 11: a fresh process compresses each file at its first request,
    # on the first page load's path. The dashboard's 48 files (164 KB) took 0.47 s at 11 and 0.007 s
    # at 5, for 57.7 KB against 62.8 KB (gzip -9: 67.4 KB).
    def fast(data: bytes) -> bytes:
        return compress(data, quality=5)

    return fast


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)  # mtime 0: the same bytes in every process


#: Content codings this process can send, in order of preference.
CODINGS: Final[dict[str, Callable[[bytes], bytes]]] = {
    name: fn for name, fn in (("br", _brotli()), ("gzip", _gzip)) if fn is not None}

_COMPRESSIBLE: Final = ("text/", "application/javascript", "application/json", "image/svg+xml")


@dataclass
class Static:
    """One packaged file: its bytes, type and ETag, and its compressed forms once asked for."""

    data: bytes
    ctype: str
    etag: str
    _coded: dict[str, tuple[bytes, str] | None] = field(default_factory=dict)

    @property
    def compressible(self) -> bool:
        return self.ctype.startswith(_COMPRESSIBLE)

    def coded(self, coding: str) -> tuple[bytes, str] | None:
        """The body and ETag in ``coding``, or None when that form would not be smaller."""
        if coding not in self._coded:
            body = CODINGS[coding](self.data)
            self._coded[coding] = (body, f'{self.etag[:-1]}-{coding}"') if len(body) < len(self.data) \
                else None
        return self._coded[coding]


@lru_cache(maxsize=256)
def load(path: str) -> Static | None:
    """A packaged static file under ``mallard/static/`` (read by the core), or None."""
    data = static_file(path)
    if data is None:
        return None
    ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "image/svg+xml"):
        ctype += "; charset=utf-8"
    if path.endswith(".js"):
        ctype = "text/javascript; charset=utf-8"
    return Static(data, ctype, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')


def negotiate(accept_encoding: str) -> list[str]:
    """The codings of :data:`CODINGS` that ``accept_encoding`` allows, in our order of preference
    (``q=0`` refuses one; ``*`` allows any not named)."""
    weights: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name:
            weights[name.strip()] = q
    return [c for c in CODINGS if weights.get(c, weights.get("*", 0.0)) > 0]


def asset(request: Request, path: str, *, extra: tuple[tuple[str, str], ...] = ()) -> Response:
    """The file at ``path``, compressed when the client allows it; 304 when ``If-None-Match`` names the
    ETag of what would be sent.

    Raises:
        HTTPError: 404, no such file.
    """
    found = load(path)
    if found is None:
        raise HTTPError(404, "Not found.")
    body, etag, headers = found.data, found.etag, [("Content-Type", found.ctype)]
    if found.compressible:
        headers.append(("Vary", "Accept-Encoding"))
        for coding in negotiate(request.headers.get("accept-encoding", "")):
            coded = found.coded(coding)
            if coded is not None:
                body, etag = coded
                headers.append(("Content-Encoding", coding))
                break
    headers += [("ETag", etag), ("Cache-Control", "no-cache"), *extra]
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(304, headers)
    return Response(200, headers, body)
