"""Numbered per-site records in one shared JSON document under ``state/`` (saved funnels, shared links).

The document is ``{"next_id": n, "items": [record, ...]}``, a shared document of
:mod:`mallard._sharedstate`: in a data directory rewritten atomically under an ``flock`` and re-read
whenever another process changed it, so a record added or changed by one worker is seen by every other
at its next read; on object storage changed by compare-and-swap and seen by other hosts within a second.
Ids are never reused.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ._errors import MallardError, StorageError

if TYPE_CHECKING:
    from ._sharedstate import SharedState
    from ._statefile import SharedDocument

__all__ = ["RecordError", "SiteRecord", "SiteRecords", "check_name"]

MAX_NAME_LENGTH = 120


class RecordError(MallardError, ValueError):
    """A saved funnel or shared link was refused (bad name or steps, too many, a name taken)."""

    code = "invalid_record"


class SiteRecord(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def site_id(self) -> str: ...


R = TypeVar("R", bound=SiteRecord)


@dataclass(slots=True)
class _Document(Generic[R]):
    next_id: int = 1
    items: list[R] = field(default_factory=list)


def check_name(value: object, what: str = "The name") -> str:
    """A record's name: 1 to 120 printable characters, not blank."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_LENGTH:
        raise RecordError(f"{what} must be 1 to {MAX_NAME_LENGTH} characters and not blank.")
    if any(not ch.isprintable() for ch in value):
        raise RecordError(f"{what} must not contain control characters.")
    return value


class SiteRecords(Generic[R]):
    """The records of one kind, for every site. Thread- and process-safe.

    Args:
        state: the shared state (:func:`mallard._sharedstate.shared_state`).
        name: the document in it (``"funnels.json"``).
        load: a stored item (a JSON object) → a record (raises ``KeyError``/``TypeError``/``ValueError``
            for a bad one).
        max_per_site: records a site may hold (those ``counted``).
        what: how errors name the records (``"saved funnels"``).
        counted: which records count toward ``max_per_site`` (all by default).
    """

    def __init__(self, state: SharedState, name: str, *, load: Callable[[Mapping[str, Any]], R],
                 max_per_site: int, what: str, counted: Callable[[R], bool] = lambda record: True) -> None:
        self._load = load
        self._max = max_per_site
        self._counted = counted
        self._what = what
        self._where = state.where(name)
        self._file: SharedDocument[_Document[R]] = state.document(name, parse=self._parse, dump=self._dump,
                                                                  empty=_Document)

    def all(self) -> list[R]:
        """Every record, oldest first (do not mutate)."""
        return self._file.read().items

    def of_site(self, site_id: str) -> list[R]:
        return [r for r in self.all() if r.site_id == site_id]

    def get(self, site_id: str, record_id: int) -> R | None:
        return next((r for r in self.all() if r.id == record_id and r.site_id == site_id), None)

    def add(self, site_id: str, make: Callable[[int, list[R]], R]) -> R:
        """Store ``make(new_id, the site's records)`` (which may raise to refuse it)."""

        def add(doc: _Document[R]) -> _Document[R]:
            mine = [r for r in doc.items if r.site_id == site_id]
            if sum(map(self._counted, mine)) >= self._max:
                raise RecordError(f"A site may have at most {self._max} {self._what}; delete some "
                                  "first.", code="too_many")
            return _Document(doc.next_id + 1, [*doc.items, make(doc.next_id, mine)])

        return self._file.update(add).items[-1]

    def change(self, record_id: int, site_id: str | None, how: Callable[[R], R | None]) -> R | None:
        """Replace the record with ``how(record)`` (None deletes it); the old record, or None when
        there is no record with that id (of ``site_id``, when given)."""
        found: list[R | None] = [None]

        def change(doc: _Document[R]) -> _Document[R]:
            old = found[0] = next((r for r in doc.items if r.id == record_id
                                   and site_id in (None, r.site_id)), None)
            if old is None:
                return doc
            new = how(old)
            if new == old:
                return doc
            items = [r for r in doc.items if r is not old] if new is None else \
                [new if r is old else r for r in doc.items]
            return _Document(doc.next_id, items)

        self._file.update(change)
        return found[0]

    def _parse(self, raw: bytes) -> _Document[R]:
        try:
            doc = json.loads(raw)
            if not isinstance(doc, Mapping) or not isinstance(doc.get("next_id"), int):
                raise ValueError
            items = [self._load(item) for item in doc["items"]]
        except (ValueError, KeyError, TypeError):
            raise StorageError(f"{self._where} is not a valid file of {self._what}. Restore it "
                               f"from a backup, or delete it (every one of the {self._what} is then "
                               "forgotten).", code="invalid_state") from None
        return _Document(doc["next_id"], items)

    @staticmethod
    def _dump(doc: _Document[R]) -> bytes:
        items = [dataclasses.asdict(r) for r in doc.items]  # type: ignore[call-overload]
        return (json.dumps({"next_id": doc.next_id, "items": items}, indent=2) + "\n").encode()
