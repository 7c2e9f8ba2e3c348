"""Read-only shared links: a secret per link that lets its holder read one site's stats.

Stored in ``state/shared_links.json`` like the other per-site state (:mod:`mallard._records`): only
``sha256(secret)`` is kept, so the secret is shown once, at creation. Revoking keeps the record
(marked ``revoked``) so a revoked secret is recognised as such, not counted as a guess; every process
sees a revocation at its next request (the file is re-read when it changes), and, on object storage,
every host within a second.

The HTTP layer decides what a link may do (:mod:`mallard._http.shares`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from ._records import SiteRecords, check_name
from ._sharedstate import StateLike, as_state

__all__ = ["MAX_SHARED_LINKS", "SharedLink", "SharedLinks"]

MAX_SHARED_LINKS: Final = 100  # live links per site (revoked ones are kept, and not counted)
SECRET_PREFIX: Final = "sl_"
_SECRET: Final = re.compile(r"sl_[0-9a-f]{48}")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SharedLink:
    """One shared link of a site (without its secret)."""

    id: int
    site_id: str
    name: str
    secret_hash: str
    created_at: str
    revoked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": str(self.id), "site_id": self.site_id, "name": self.name,
                "created_at": self.created_at, "revoked": self.revoked}


def _load(item: Mapping[str, Any]) -> SharedLink:
    link = SharedLink(int(item["id"]), str(item["site_id"]), str(item["name"]),
                      str(item["secret_hash"]), str(item["created_at"]), item["revoked"])
    if not isinstance(link.revoked, bool):
        raise ValueError
    return link


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SharedLinks:
    """The shared links of one data directory (every site). Thread- and process-safe.

    Args:
        state: the shared state (:func:`mallard._sharedstate.shared_state`), or the path of a local
            ``state/`` directory.
        clock: the current aware time (for ``created_at``).
    """

    def __init__(self, state: StateLike, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._clock = clock
        self._records = SiteRecords(as_state(state), "shared_links.json", load=_load,
                                    max_per_site=MAX_SHARED_LINKS, what="live shared links",
                                    counted=lambda link: not link.revoked)

    def create(self, site_id: str, name: str) -> tuple[str, SharedLink]:
        """A new link: ``(secret, record)``; the secret (``sl_`` + 48 hex digits) is not kept.

        Raises:
            RecordError: a bad name, or 100 live links for the site already.
        """
        check_name(name, "The link name")
        secret = SECRET_PREFIX + secrets.token_hex(24)
        stamp = self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        record = self._records.add(site_id, lambda new_id, mine: SharedLink(
            new_id, site_id, name, _digest(secret), stamp))
        return secret, record

    def list(self, site_id: str) -> list[SharedLink]:
        """The site's links (revoked ones included), oldest first."""
        return self._records.of_site(site_id)

    def revoke(self, link_id: int, site_id: str | None = None) -> bool:
        """Revoke a link in every process; False when there is none with that id (of ``site_id``)."""
        return self._records.change(link_id, site_id, lambda r: replace(r, revoked=True)) is not None

    def find(self, secret: str) -> SharedLink | None:
        """The link (live or revoked) whose secret this is, or None (compared in constant time)."""
        if not isinstance(secret, str) or _SECRET.fullmatch(secret) is None:
            return None
        digest = _digest(secret)
        found = None
        for link in self._records.all():  # no early exit: the time taken does not tell which matched
            if hmac.compare_digest(link.secret_hash, digest):
                found = link
        return found
