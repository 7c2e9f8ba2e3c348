"""Brute-force protection: failed logins per client, and the lockout that follows too many.

Failures are counted per ``HMAC(secret, canonical ip)``, so the raw IP is never stored, in a
:class:`~mallard._auth.failures.Failures` shared by every worker (``state/auth.sqlite``) or every host
(the document ``login_failures.json`` on object storage). The attempt reaching
``Settings.max_login_attempts`` locks the client for ``login_lockout_secs``; at most
``max_tracked_keys`` clients are kept. ``max_login_attempts = 0`` turns all of this off (nothing is
written).
"""

from __future__ import annotations

import hmac
import math

from .._privacy import canonical_ip
from .._settings import Settings
from .clock import Clock
from .failures import FAILURE_WINDOW_SECS, Entry, Failures

__all__ = ["Lockouts"]


class Lockouts:
    """Failed logins and lockouts per client.

    Args:
        failures: where failures are counted.
        settings: read for ``max_login_attempts``, ``login_lockout_secs`` and ``max_tracked_keys``.
        secret: the instance secret (keys the entries).
        clock: returns the current aware UTC time.
    """

    def __init__(self, failures: Failures, settings: Settings, *, secret: bytes, clock: Clock) -> None:
        self._failures = failures
        self._settings = settings
        self._secret = secret
        self._clock = clock

    def remaining(self, ip: str | None) -> int:
        """Seconds (at least 1) before this client may try to log in again; 0 when it is not locked."""
        if self._settings.max_login_attempts == 0:
            return 0
        entry = self._failures.entry(self._client_key(ip))
        remaining = 0.0 if entry is None else entry[1] - self._now()
        return max(1, math.ceil(remaining)) if remaining > 0 else 0

    def record_failure(self, ip: str | None) -> None:
        """Count a failed login; the attempt reaching ``max_login_attempts`` starts the lockout.

        Failures during an active lockout change nothing; a lockout that expired, or failures older
        than an hour, start the count afresh.
        """
        limit = self._settings.max_login_attempts
        if limit == 0:
            return
        now = self._now()

        def step(entry: Entry | None) -> Entry | None:
            if entry is not None and entry[1] > now:
                return None  # locked: a failure during the lockout does not extend it
            failures = 1
            if entry is not None and entry[1] == 0 and now - entry[2] < FAILURE_WINDOW_SECS:
                failures = entry[0] + 1  # else: a lockout ended (or old failures): count afresh
            return failures, now + self._settings.login_lockout_secs if failures >= limit else 0.0, now

        self._failures.record(self._client_key(ip), step, now=now, cap=self._settings.max_tracked_keys)

    def record_success(self, ip: str | None) -> None:
        """Forget the failures of this client after a successful login."""
        if self._settings.max_login_attempts == 0:
            return
        self._failures.forget(self._client_key(ip))

    def _now(self) -> float:
        return self._clock().timestamp()

    def _client_key(self, ip: str | None) -> str:
        """The stored key of a client: a keyed hash of its canonical IP, never the IP itself."""
        return hmac.digest(self._secret, b"mallard-login|" + canonical_ip(ip).encode(), "sha256").hex()
