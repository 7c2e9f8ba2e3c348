"""Security plumbing shared by every route: the client address, security headers, CORS, CSRF, request ids.

* The client IP is the socket peer. ``X-Forwarded-For`` (leftmost valid address) and ``X-Real-IP`` are
  believed only when ``trust_proxy_headers`` is on and the peer is one of ``trusted_proxies`` (any peer
  when that list is empty, for deployments behind exactly one proxy).
* Every response carries Mallard Metrics v0.2's security headers; HTML gets the Content-Security-Policy,
  JSON and CSV ``Cache-Control: no-store``.
* Open mode (no admin password yet) serves only :func:`open_mode_allowed` requests: from this machine,
  to a loopback ``Host``, and not from another origin. A web page the operator visits, or a DNS-rebound
  name pointing at 127.0.0.1, must not read stats or set the first password.
* CORS: ingestion is open to every origin; everything else answers ``dashboard_origin`` only, and no
  origin at all when it is not set.
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Final
from urllib.parse import urlsplit

from .._privacy import canonical_ip
from .._settings import Settings
from .._tracker import ClientContext
from .messages import Request, Response

__all__ = [
    "CSP",
    "apply_security_headers",
    "client_context",
    "client_ip",
    "cors_headers",
    "csp",
    "csrf_ok",
    "open_mode_allowed",
    "request_id",
]

_CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; frame-ancestors {}; base-uri 'none'; form-action 'self'")


def csp(*, frame_ancestors: Sequence[str] = ()) -> str:
    """The dashboard's Content-Security-Policy; ``frame_ancestors`` are origins allowed to frame it
    (none by default)."""
    allowed = " ".join(o.rstrip("/") for o in frame_ancestors) or "'none'"
    return _CSP.format(allowed)


CSP: Final = csp()
_BASE_HEADERS: Final = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Permissions-Policy", "geolocation=(), microphone=(), camera=(), interest-cohort=()"),
)
# Only over HTTPS, and without includeSubDomains/preload: mounted in a host app, mallard must not pin
# HTTPS on the host's whole domain (Mallard Metrics, a standalone server, sends the strict form always).
_HSTS: Final = ("Strict-Transport-Security", "max-age=31536000")
_REQUEST_ID: Final = re.compile(r"[\x21-\x7e]{1,128}")
_VARIANT: Final = "89ab"


@lru_cache(maxsize=64)
def _networks(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(peer: str | None, settings: Settings) -> bool:
    if not settings.trust_proxy_headers:
        return False
    if not settings.trusted_proxies:
        return True
    return peer is not None and _is_trusted_proxy(peer, settings)


def _forwarded_ip(value: str) -> str | None:
    """An address from a forwarding header value: ``ip``, ``ip:port`` or ``[v6]:port``."""
    text = value.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    ip = canonical_ip(text)
    return None if ip == "unknown" else ip


def _is_trusted_proxy(ip: str, settings: Settings) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in _networks(settings.trusted_proxies))


def client_ip(request: Request, settings: Settings) -> str | None:
    """The client's address: the peer, or what a trusted proxy says.

    ``X-Forwarded-For`` is read from the right (a client can put anything on the left): the first address
    that is not itself a trusted proxy is the client. With ``trusted_proxies`` empty exactly one proxy
    is assumed, so the rightmost entry is taken. ``X-Real-IP`` is used when there is no XFF.
    """
    if not _trusted(request.client, settings):
        return request.client
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        hops = [ip for part in forwarded.split(",") if (ip := _forwarded_ip(part)) is not None]
        if not settings.trusted_proxies:
            return hops[-1] if hops else request.client
        for ip in reversed(hops):
            if not _is_trusted_proxy(ip, settings):
                return ip
        return hops[0] if hops else request.client
    real = request.headers.get("x-real-ip")
    if real:
        ip = _forwarded_ip(real)
        if ip is not None:
            return ip
    return request.client


def client_context(request: Request, settings: Settings) -> ClientContext:
    """What the pipeline may know of the request's client: its resolved IP and the relevant headers."""
    return ClientContext.from_headers(request.headers, client_ip(request, settings))


_FORWARDING: Final = ("x-forwarded-for", "x-real-ip", "forwarded", "x-forwarded-host")


def from_this_machine(request: Request) -> bool:
    """Whether the request certainly comes from this machine: a loopback peer *and* no forwarding
    header (a reverse proxy on localhost would otherwise make every remote visitor look local)."""
    return is_loopback(request.client) and not any(h in request.headers for h in _FORWARDING)


def loopback_host(host: str | None) -> bool:
    """Whether a ``Host`` header names this machine: ``localhost``, 127.0.0.0/8 or ``[::1]``, any port."""
    if not host:
        return False
    name = host.strip().lower()
    if name.startswith("["):
        name, _, rest = name[1:].partition("]")
        if rest and not (rest[0] == ":" and rest[1:].isdigit()):
            return False
    elif ":" in name:
        name, _, port = name.partition(":")
        if not port.isdigit():
            return False
    return name == "localhost" or is_loopback(name)


def open_mode_allowed(request: Request) -> bool:
    """Whether a request may use open mode (no admin password yet): it comes from this machine
    (:func:`from_this_machine`), is addressed to a loopback ``Host`` (not a DNS name rebound to
    127.0.0.1), carries no ``Origin`` but its own, and no ``Sec-Fetch-Site`` saying another site sent it.
    """
    if not from_this_machine(request) or not loopback_host(request.headers.get("host")):
        return False
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/").lower() != own_origin(request):
        return False
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


def is_loopback(ip: str | None) -> bool:
    if not ip:
        return False
    try:
        return ipaddress.ip_address(ip.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def request_id(request: Request) -> str:
    """The caller's ``X-Request-ID`` when it is 1–128 visible ASCII characters, else a new UUID (v4).

    From ``random`` rather than ``os.urandom``: a request id is not a secret, and the system call per
    request showed in profiles of the ingestion path (``random`` reseeds itself in a forked child).
    """
    given = request.headers.get("x-request-id")
    if given and _REQUEST_ID.fullmatch(given):
        return given
    h = f"{random.getrandbits(122):031x}"  # 122 random bits, laid out as a version-4 UUID
    return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-{_VARIANT[int(h[15], 16) & 3]}{h[16:19]}-{h[19:31]}"


_BASE_NAMES: Final = frozenset(name.lower() for name, _ in (*_BASE_HEADERS, _HSTS))
_NO_STORE: Final = ("Cache-Control", "no-store, no-cache, private")


def apply_security_headers(response: Response, rid: str, *, https: bool = False) -> None:
    headers = response.headers
    present: set[str] = set()
    content_type = ""
    for name, value in headers:  # one pass: the names present and the content type
        lower = name.lower()
        present.add(lower)
        if lower == "content-type":
            content_type = value.lower()
    base = (*_BASE_HEADERS, _HSTS) if https else _BASE_HEADERS
    if "content-security-policy" in present and \
            "frame-ancestors 'none'" not in (response.header("Content-Security-Policy") or ""):
        # A page that may be framed (a shared link's, embed_origins): X-Frame-Options cannot name
        # origins, and DENY would forbid what frame-ancestors allows.
        present.add("x-frame-options")
    if present.isdisjoint(_BASE_NAMES):
        headers.extend(base)
    else:
        headers.extend(h for h in base if h[0].lower() not in present)
    if content_type:
        if "text/html" in content_type and "content-security-policy" not in present:
            headers.append(("Content-Security-Policy", CSP))
        if ("application/json" in content_type or "text/csv" in content_type) and \
                "cache-control" not in present:
            headers.append(_NO_STORE)
    if response.status == 429 and "retry-after" not in present:
        headers.append(("Retry-After", "1"))
    headers.append(("X-Request-ID", rid))


_ANY_ORIGIN: Final = (("Access-Control-Allow-Origin", "*"),)
_INGESTION_PREFLIGHT: Final = (*_ANY_ORIGIN, ("Access-Control-Allow-Methods", "GET, POST"),
                               ("Access-Control-Allow-Headers", "content-type"),
                               ("Access-Control-Max-Age", "86400"))
_STATS_PREFLIGHT: Final = (("Access-Control-Allow-Methods", "GET, POST, DELETE"),
                           ("Access-Control-Allow-Headers",
                            "content-type, authorization, x-api-key, x-mallard-share"))


def cors_headers(request: Request, settings: Settings, *, ingestion: bool,
                 preflight: bool = False) -> Sequence[tuple[str, str]]:
    """CORS headers: ingestion is open to every origin; the rest to ``dashboard_origin`` only, and to
    no other origin when that is not set (the dashboard is served same-origin and needs no CORS).

    The allowed methods, request headers and max-age go on the answer to a preflight only (browsers
    read them nowhere else); an actual response carries just who may read it.
    """
    if ingestion:
        return _INGESTION_PREFLIGHT if preflight else _ANY_ORIGIN
    origin = settings.dashboard_origin
    if origin is None:
        return ()
    allowed = origin.rstrip("/")
    if request.headers.get("origin", "").rstrip("/") != allowed:
        return (("Vary", "Origin"),)
    return (("Access-Control-Allow-Origin", allowed), ("Vary", "Origin"),
            ("Access-Control-Allow-Credentials", "true"), *(_STATS_PREFLIGHT if preflight else ()))


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None
        return f"{parts.scheme}://{parts.netloc}".lower()
    except ValueError:
        return None


def csrf_ok(request: Request, allowed: Sequence[str]) -> bool:
    """For cookie-authenticated state changes: ``Origin`` (else ``Referer``) must be an allowed origin.

    ``allowed`` holds the dashboard origin and the request's own origin. A request with neither header
    is refused too: browsers send ``Origin`` on every cross-origin and same-origin POST/DELETE.
    """
    origins = {o.rstrip("/").lower() for o in allowed}
    given = request.headers.get("origin")
    if given and given != "null":
        return given.rstrip("/").lower() in origins
    referer = request.headers.get("referer")
    if referer:
        origin = _origin_of(referer)
        return origin is not None and origin in origins
    return False


def own_origin(request: Request) -> str | None:
    host = request.headers.get("host")
    return f"{request.scheme}://{host}".lower() if host else None
