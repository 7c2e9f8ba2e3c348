"""Where logouts are recorded: the nonce of each logged-out session token and the token's expiry, kept
until then (:mod:`.tokens` checks them).

* :class:`TableLogouts`: the ``revoked_sessions`` table of ``state/auth.sqlite``, for the processes of
  one host (a local data directory).
* :class:`DocumentLogouts`: the shared document ``revoked_sessions.json`` (``{nonce: expires}``), for
  hosts sharing a lake on object storage: a logout is a compare-and-swap of the document, and holds on
  every other host within the cache bound of a second.

Both drop the entries of expired tokens as they record a logout, so they hold only the logouts of
sessions that are still valid (a token lives ``session_ttl_secs``, a day by default). They are not
capped otherwise: dropping a live logout would log that session in again, and a logout needs a valid
session, i.e. the admin password.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final, Protocol

from .._errors import StorageError
from .database import AuthDatabase

if TYPE_CHECKING:
    from .._sharedstate import SharedState

__all__ = ["LOGOUTS_FILE", "SCHEMA", "DocumentLogouts", "Logouts", "TableLogouts"]

LOGOUTS_FILE: Final = "revoked_sessions.json"
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS revoked_sessions (
    nonce TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS revoked_sessions_expiry ON revoked_sessions (expires_at);
"""


class Logouts(Protocol):
    def revoked(self, nonce: str) -> bool:
        """Whether the session with this nonce was logged out."""
        ...

    def revoke(self, nonce: str, expires: int, *, now: float) -> None:
        """Record the logout of the session ``nonce`` (valid until ``expires``); drop expired ones."""
        ...


class TableLogouts:
    """The ``revoked_sessions`` table of ``state/auth.sqlite`` (its schema includes :data:`SCHEMA`)."""

    def __init__(self, db: AuthDatabase) -> None:
        self._db = db

    def revoked(self, nonce: str) -> bool:
        return self._db.query_one("SELECT 1 FROM revoked_sessions WHERE nonce = ?", (nonce,)) is not None

    def revoke(self, nonce: str, expires: int, *, now: float) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM revoked_sessions WHERE expires_at <= ?", (now,))
            db.execute("INSERT OR IGNORE INTO revoked_sessions (nonce, expires_at) VALUES (?, ?)",
                       (nonce, expires))


class DocumentLogouts:
    """The shared document ``revoked_sessions.json`` of ``state``."""

    def __init__(self, state: SharedState) -> None:
        self._where = state.where(LOGOUTS_FILE)
        self._doc = state.document(LOGOUTS_FILE, parse=self._parse, dump=_dump, empty=dict)

    def revoked(self, nonce: str) -> bool:
        return nonce in self._doc.read()

    def revoke(self, nonce: str, expires: int, *, now: float) -> None:
        def change(logouts: dict[str, int]) -> dict[str, int]:
            live = {n: e for n, e in logouts.items() if e > now}
            if nonce in live and len(live) == len(logouts):
                return logouts  # logged out already, nothing expired: nothing to write
            live.setdefault(nonce, expires)
            return live

        self._doc.update(change)

    def _parse(self, raw: bytes) -> dict[str, int]:
        try:
            doc = json.loads(raw)
            logouts = {str(n): int(e) for n, e in doc.items()}
        except (ValueError, TypeError, AttributeError):
            raise StorageError(f"{self._where} is not a valid list of logouts. Delete it (sessions "
                               "logged out before are then valid again until they expire).",
                               code="invalid_state") from None
        return logouts


def _dump(logouts: dict[str, int]) -> bytes:
    return json.dumps(logouts, separators=(",", ":")).encode()
