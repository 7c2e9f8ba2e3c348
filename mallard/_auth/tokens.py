"""Dashboard sessions: stateless signed tokens that every worker can verify, and their logouts.

A token is ``v1.<expires_unix>.<nonce hex>.<hmac hex>``. The HMAC key is derived from the instance secret
*and* the current password hash (:meth:`mallard._auth.admin.AdminCredential.binding`), so changing the
password ends every session. The lifetime is absolute: a token is refused once expired, and also when it
outlives a since-shortened ``session_ttl_secs``. Logouts are recorded (nonce and expiry only) until the
token would expire, in ``state/auth.sqlite`` or, on object storage, a shared document (:mod:`.logouts`).
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
from collections.abc import Callable
from typing import Final

from .clock import Clock
from .errors import NotConfiguredError
from .logouts import Logouts

__all__ = ["SessionTokens"]

_TOKEN_RE: Final = re.compile(r"v1\.([0-9]{1,12})\.([0-9a-f]{32})\.([0-9a-f]{64})")


class SessionTokens:
    """Create, check and revoke session tokens.

    Args:
        logouts: where logouts are recorded.
        secret: the instance secret.
        binding: the current password binding, None when no password is set.
        ttl: ``Settings.session_ttl_secs``.
        clock: returns the current aware UTC time.
    """

    def __init__(self, logouts: Logouts, *, secret: bytes, binding: Callable[[], str | None], ttl: int,
                 clock: Clock) -> None:
        self._logouts = logouts
        self._secret = secret
        self._binding = binding
        self._ttl = ttl
        self._clock = clock

    def create(self) -> tuple[str, int]:
        """A new dashboard session token and its lifetime in seconds (for the cookie's ``Max-Age``).

        Raises:
            NotConfiguredError: no admin password is set (there is nothing to log in to).
        """
        binding = self._binding()
        if binding is None:
            raise NotConfiguredError("No admin password is set yet, so no session can be created. Set "
                                     "one with the setup step first.", code="not_configured")
        expires = math.floor(self._now()) + self._ttl
        body = f"v1.{expires}.{secrets.token_hex(16)}"
        return f"{body}.{self._mac(binding, body)}", self._ttl

    def check(self, token: str) -> bool:
        """Whether ``token`` is a live session: well-formed, signed for the current password, not
        expired and not logged out."""
        parsed = self._parse(token)
        if parsed is None:
            return False
        return not self._logouts.revoked(parsed[0])

    def revoke(self, token: str) -> bool:
        """Log ``token`` out in every process; returns whether it was a live session."""
        parsed = self._parse(token)
        if parsed is None:
            return False
        nonce, expires = parsed
        self._logouts.revoke(nonce, expires, now=self._now())
        return True

    def _now(self) -> float:
        return self._clock().timestamp()

    def _mac(self, binding: str, body: str) -> str:
        key = hmac.digest(self._secret, b"mallard-session|" + binding.encode(), "sha256")
        return hmac.new(key, body.encode(), "sha256").hexdigest()

    def _parse(self, token: str) -> tuple[str, int] | None:
        """(nonce, expiry) of a correctly signed, unexpired token, else None."""
        if not isinstance(token, str) or len(token) > 128:
            return None
        match = _TOKEN_RE.fullmatch(token)
        if match is None:
            return None
        binding = self._binding()
        if binding is None:
            return None
        body = token[: match.start(3) - 1]
        if not hmac.compare_digest(self._mac(binding, body), match[3]):
            return None
        expires, now = int(match[1]), self._now()
        # absolute lifetime: also refuse tokens that outlive a since-shortened session_ttl_secs
        if not now < expires <= now + self._ttl + 1:
            return None
        return match[2], expires
