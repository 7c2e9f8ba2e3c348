"""Visitor ids and pseudonyms: the only place where an IP address and a User-Agent are combined.

* ``visitor_id = HMAC-SHA256(salt, site | ip | user_agent)`` in hex. The salt is 32 random bytes created once
  per rotation period (one UTC day by default) as ``salts/<day>.salt`` in the shared state
  (:mod:`mallard._sharedstate`: ``state/salts/`` of the data directory, or of the bucket of a lake on
  object storage), so every worker process, and every host of a shared lake, uses the same one; the
  previous period's salt is kept so that sessions crossing midnight can be joined, and older salts are
  deleted: nobody, the operator included, can recompute an old id.
* ``user_id`` pseudonym = ``HMAC-SHA256(secret, site | user_id)``, stable across days, for analytics that
  need a stable identity. The secret is ``Settings.secret`` or a random key created once in the shared
  state (``secret``).

Nothing here stores, logs or returns a raw IP address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket
import threading
import time
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from ._sharedstate import StateLike, as_state

_EPOCH: Final = date(1970, 1, 1)
_V4_MAPPED: Final = b"\x00" * 10 + b"\xff\xff"


def canonical_ip(ip: str | None) -> str:
    """The canonical text of an IP address (so ``::1`` spellings collapse), or ``"unknown"``."""
    if not ip:
        return "unknown"
    ip = ip.strip()
    try:  # inet_pton/inet_ntop: strict parsing and canonical text, ~10x faster than ipaddress
        if ":" not in ip:
            # inet_pton accepts only the canonical dotted-quad spelling (no leading zeros, no
            # shorthand), so what it accepts is already canonical.
            socket.inet_pton(socket.AF_INET, ip)
            return ip
        packed = socket.inet_pton(socket.AF_INET6, ip.split("%", 1)[0])
    except (OSError, ValueError):  # ValueError: NUL or unencodable characters in the text
        return "unknown"
    if packed[:12] == _V4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed)


def redact_ip(ip: str | None) -> str:
    """A log-safe form of an IP: IPv4 /24 (``a.b.c.x``), IPv6 /48 (``a:b:c::x``)."""
    try:
        # Without the zone (``fe80::1%eth0``): ``exploded`` fails on scoped addresses.
        addr = ipaddress.ip_address((ip or "").strip().split("%", 1)[0])
    except ValueError:
        return "(unparseable)"
    if isinstance(addr, ipaddress.IPv4Address):
        return ".".join(str(addr).split(".")[:3]) + ".x"
    groups = addr.exploded.split(":")[:3]
    return ":".join(g.lstrip("0") or "0" for g in groups) + "::x"


#: Seconds between tries of the shared state for the salt, while a host's own one stands in.
SALT_RETRY_SECS: Final = 30.0


class Salts:
    """Random per-period salts shared by every process (and every host of a lake on object storage):
    ``salts/<first day>.salt`` in the shared state ``state`` (or the local ``state/`` directory at that
    path)."""

    def __init__(self, state: StateLike, *, rotation_days: int = 1) -> None:
        self._state = as_state(state)
        self._rotation = max(1, rotation_days)
        self._lock = threading.Lock()
        self._period = -1
        self._current = b""
        self._previous: bytes | None = None
        self._period_start = datetime.min.replace(tzinfo=UTC)
        self._period_end = self._period_start  # empty: the first call rotates
        self._retry_at: float | None = None  # when to ask the shared state again for a fallen-back salt

    def period_of(self, now: datetime) -> int:
        return (now.date() - _EPOCH).days // self._rotation

    def salts(self, now: datetime) -> tuple[bytes, bytes | None, datetime]:
        """(current salt, previous salt or None, start of the current period) at ``now`` (UTC)."""
        if self._period_start <= now < self._period_end and self._retry_at is None:  # the common case
            return self._current, self._previous, self._period_start
        period = self.period_of(now)
        if period != self._period or (self._retry_at is not None and time.monotonic() >= self._retry_at):
            with self._lock:
                if period != self._period:
                    self._rotate(period)
                elif self._retry_at is not None and time.monotonic() >= self._retry_at:
                    self._rotate(period, self._current)  # ours, if the store has none yet
        return self._current, self._previous, self._period_start

    def _name(self, period: int) -> str:
        start = _EPOCH + timedelta(days=period * self._rotation)
        return f"salts/{start.isoformat()}.salt"

    def _rotate(self, period: int, candidate: bytes | None = None) -> None:
        current = self._state.write_once(self._name(period), candidate or secrets.token_bytes(32))
        # a salt of this host's own while the shared state cannot be reached: asked for again later
        self._retry_at = time.monotonic() + SALT_RETRY_SECS if getattr(self._state, "fell_back", False) \
            else None
        previous = self._state.read(self._name(period - 1))
        for name in self._state.names("salts/"):
            if name.endswith(".salt") and name < self._name(period - 1):
                self._state.delete(name)  # old salts are destroyed, not archived
        start = _EPOCH + timedelta(days=period * self._rotation)
        self._period_start = datetime(start.year, start.month, start.day, tzinfo=UTC)
        self._period_end = self._period_start + timedelta(days=self._rotation)
        self._current, self._previous, self._period = current, previous, period


@lru_cache(maxsize=8)
def _prekeyed(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states after HMAC's inner and outer key blocks (RFC 2104), for keys of <= 64 bytes."""
    block = key.ljust(64, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in block)),
            hashlib.sha256(bytes(b ^ 0x5C for b in block)))


def visitor_id(salt: bytes, site_id: str, ip: str, user_agent: str) -> str:
    """The keyed visitor hash: HMAC-SHA256(salt, "site|ip|user_agent") in hex (64 characters).

    Computed from copies of the pre-keyed inner and outer states: the same digest as
    ``hmac.digest`` at a third of the cost on the ingestion hot path.
    """
    message = f"{site_id}|{ip}|{user_agent}".encode()
    if len(salt) > 64:
        return hmac.digest(salt, message, "sha256").hex()
    inner_base, outer_base = _prekeyed(salt)
    inner = inner_base.copy()
    inner.update(message)
    outer = outer_base.copy()
    outer.update(inner.digest())
    return str(outer.hexdigest())


def load_secret(state: StateLike, configured: str | None) -> bytes:
    """The instance secret: the configured one, else a random key created once in the shared state
    (``secret``), the same for every process and host."""
    if configured:
        return configured.encode()
    return as_state(state).write_once("secret", secrets.token_bytes(32))


def pseudonymize_user(secret: bytes, site_id: str, user_id: str) -> str:
    """A stable keyed pseudonym for a host-supplied user id (64 hex characters)."""
    return hmac.digest(secret, f"user|{site_id}|{user_id}".encode(), "sha256").hex()
