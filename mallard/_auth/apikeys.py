"""API keys: ``mm_`` + 64 hex characters, each with a name and a scope, shared by every worker.

The shared document ``api_keys.json`` (:mod:`mallard._sharedstate`) holds the keys only as
``hex(sha256(plaintext))``: in a data directory ``state/api_keys.json`` (mode 0600), rewritten atomically
under an ``flock`` on the lock shared with the admin credential (``state/auth.lock``) and re-read
whenever another process changed it; on object storage the object ``state/api_keys.json``, changed by
compare-and-swap, so a key revoked on one host is refused by every other within a second. A key is
checked in constant time; revoking keeps its record (``revoked: true``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from typing import TYPE_CHECKING, Final, Literal, TypedDict, cast

from .._errors import StorageError
from .clock import Clock, stamp
from .errors import InvalidKeyError

if TYPE_CHECKING:
    from .._sharedstate import SharedState

__all__ = ["KEYS_FILE", "MAX_KEY_NAME_LENGTH", "SCOPES", "ApiKeys", "KeyRecord", "Scope"]

Scope = Literal["ReadOnly", "Admin"]
SCOPES: Final[tuple[Scope, ...]] = ("ReadOnly", "Admin")
MAX_KEY_NAME_LENGTH: Final = 128
KEYS_FILE: Final = "api_keys.json"
_KEY_RE: Final = re.compile(r"mm_[0-9a-f]{64}")
_HASH_RE: Final = re.compile(r"[0-9a-f]{64}")


class KeyRecord(TypedDict):
    """One API key as stored and listed; the plaintext is never kept."""

    key_hash: str
    name: str
    scope: Scope
    created_at: str
    revoked: bool


def _dump_keys(keys: list[KeyRecord]) -> bytes:
    return (json.dumps(keys, indent=2) + "\n").encode()


class ApiKeys:
    """The API keys, shared by every process (and host) using ``state``.

    Args:
        state: the shared state (:func:`mallard._sharedstate.shared_state`).
        clock: returns the current aware UTC time (for ``created_at``).
    """

    def __init__(self, state: SharedState, *, clock: Clock) -> None:
        self._where = state.where(KEYS_FILE)
        self._clock = clock
        self._file = state.document(KEYS_FILE, parse=self._parse, dump=_dump_keys, empty=list)

    def create(self, name: str, scope: str) -> tuple[str, KeyRecord]:
        """Create an API key; the plaintext is returned once and only its SHA-256 is stored.

        Args:
            name: a label of 1-128 characters.
            scope: ``"ReadOnly"`` (read routes) or ``"Admin"`` (read and admin routes).

        Returns:
            ``(plaintext, record)``: the key ``mm_`` + 64 hex characters, and its stored record.

        Raises:
            InvalidKeyError: bad name (``invalid_key_name``) or scope (``invalid_scope``).
        """
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_KEY_NAME_LENGTH:
            raise InvalidKeyError(f"The key name must be 1 to {MAX_KEY_NAME_LENGTH} characters and not "
                                  "blank. Give the key a short label, e.g. 'grafana'.",
                                  code="invalid_key_name")
        if any(not ch.isprintable() for ch in name):
            raise InvalidKeyError("The key name must not contain control characters. Use printable text.",
                                  code="invalid_key_name")
        if scope not in SCOPES:
            raise InvalidKeyError(f"Unknown scope {str(scope)[:40]!r}. Valid scopes: "
                                  f"{', '.join(SCOPES)}.", code="invalid_scope")
        plaintext = "mm_" + secrets.token_hex(32)
        record = KeyRecord(key_hash=hashlib.sha256(plaintext.encode()).hexdigest(), name=name,
                           scope=scope, created_at=stamp(self._clock()), revoked=False)
        self._file.update(lambda keys: [*keys, record])
        return plaintext, cast(KeyRecord, dict(record))

    def records(self) -> list[KeyRecord]:
        """Every API key (revoked ones included), oldest first, as copies."""
        return [cast(KeyRecord, dict(r)) for r in self._file.read()]

    def revoke(self, key_hash: str) -> bool:
        """Revoke the key with this hash in every process; False if no key has it."""
        if not isinstance(key_hash, str) or _HASH_RE.fullmatch(key_hash) is None:
            return False
        found = [False]

        def revoke(keys: list[KeyRecord]) -> list[KeyRecord]:
            found[0] = any(r["key_hash"] == key_hash for r in keys)
            if all(r["revoked"] for r in keys if r["key_hash"] == key_hash):
                return keys  # no such key, or revoked already: nothing to write
            return [cast(KeyRecord, {**r, "revoked": True}) if r["key_hash"] == key_hash else r
                    for r in keys]

        self._file.update(revoke)
        return found[0]

    def check(self, plaintext: str) -> Scope | None:
        """The scope of a valid, unrevoked API key, else None (compared in constant time)."""
        if not isinstance(plaintext, str) or _KEY_RE.fullmatch(plaintext) is None:
            return None
        digest = hashlib.sha256(plaintext.encode()).hexdigest()
        scope: Scope | None = None
        for record in self._file.read():  # no early exit: the time taken does not depend on which key matched
            if hmac.compare_digest(record["key_hash"], digest) and not record["revoked"]:
                scope = record["scope"]
        return scope

    def _parse(self, raw: bytes) -> list[KeyRecord]:
        try:
            doc = json.loads(raw)
            if not isinstance(doc, list):
                raise ValueError
            keys = []
            for item in doc:
                record = KeyRecord(key_hash=item["key_hash"], name=item["name"], scope=item["scope"],
                                   created_at=item["created_at"], revoked=item["revoked"])
                if (not isinstance(record["key_hash"], str) or record["scope"] not in SCOPES
                        or not isinstance(record["revoked"], bool)):
                    raise ValueError
                keys.append(record)
        except (ValueError, KeyError, TypeError):
            raise StorageError(f"{self._where} is not a valid API key list. Restore it from a backup, "
                               "or delete it (every API key is then revoked) and create new keys.",
                               code="invalid_api_keys") from None
        return keys
