"""Per-site goals, saved segments and reporting currencies, shared by every process (``state/``).

Stored in the shared document ``goals.json`` (:mod:`mallard._sharedstate`): in a data directory
``state/goals.json`` (mode 0600), rewritten atomically under an ``flock`` on ``state/goals.lock`` and
read again whenever another process changed it; on object storage, the object ``state/goals.json``,
changed by compare-and-swap and seen by other hosts within a second. So every worker of ``mallard
serve``, every host and every ``mallard goals`` invocation agrees.

* A **goal** is a custom event (``event_name``, optionally with the ISO 4217 ``currency`` its revenue
  is in) or a pageview of a path (``page_path``; ``*`` matches any run of characters, as in Plausible).
  Its ``display_name`` (default: the event name, or ``Visit <path>``) is how queries name it
  (``event:goal``); display names are unique per site.
* A **segment** is a named, saved list of v2 query filters, used as ``["is", "segment", [id]]``.
* A site's **reporting currency** is the one its revenue is reported in when a query asks for it.

No SQL here: :mod:`mallard._queries.goals` turns goals into conditions.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, Literal, cast

from ._errors import MallardError, StorageError
from ._sharedstate import StateLike, as_state

__all__ = ["MAX_GOALS", "Goal", "GoalError", "Goals", "Segment", "page_regex"]

GoalType = Literal["event", "page"]
GOALS_FILE: Final = "goals.json"
MAX_GOALS: Final = 1000  # per site
MAX_SEGMENTS: Final = 500  # per site
MAX_NAME_LENGTH: Final = 120
MAX_PATH_LENGTH: Final = 2000
_CURRENCY: Final = re.compile(r"[A-Z]{3}")
_SPECIAL: Final = frozenset("\\.^$?+()[]{}")  # RE2 metacharacters taken literally in a page path


class GoalError(MallardError, ValueError):
    """A goal, segment or currency was refused (bad name, path or currency; unknown id)."""

    code = "invalid_goal"


@dataclass(frozen=True, slots=True)
class Goal:
    """One goal of a site."""

    id: int
    site_id: str
    goal_type: GoalType
    display_name: str
    event_name: str | None = None
    page_path: str | None = None
    currency: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plausible's Sites API shape (``id`` as a string), with ``currency``."""
        return {"id": str(self.id), "domain": self.site_id, "goal_type": self.goal_type,
                "display_name": self.display_name, "event_name": self.event_name,
                "page_path": self.page_path, "custom_props": {}, "currency": self.currency}


@dataclass(frozen=True, slots=True)
class Segment:
    """A saved list of v2 query filters."""

    id: int
    site_id: str
    name: str
    filters: tuple[Any, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "domain": self.site_id, "name": self.name,
                "segment_data": {"filters": list(self.filters)}}


def page_regex(page_path: str) -> str:
    """The regular expression (RE2) of a wildcard page path, Plausible's way: every character literal
    except ``*`` (any run of characters, ``/`` included; ``**`` the same) and ``|`` (alternation),
    anchored with ``^…$``. Only paths containing ``*`` are matched by regex; others by equality."""
    out: list[str] = []
    for ch in page_path:
        if ch == "*":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif ch == "|" or ch not in _SPECIAL:
            out.append(ch)
        else:
            out.append("\\" + ch)
    return "^" + "".join(out) + "$"


GoalList = list[Goal]
SegmentList = list[Segment]


@dataclass(slots=True)
class _Document:
    next_id: int = 1
    goals: list[Goal] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    currencies: dict[str, str] = field(default_factory=dict)


def _text(value: object, what: str, limit: int = MAX_NAME_LENGTH) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise GoalError(f"{what} must be 1 to {limit} characters and not blank.")
    if any(not ch.isprintable() for ch in value):
        raise GoalError(f"{what} must not contain control characters.")
    return value


def check_currency(value: object) -> str:
    if not isinstance(value, str) or _CURRENCY.fullmatch(value) is None:
        raise GoalError(f"Invalid currency {str(value)[:20]!r}: use an ISO 4217 code such as "
                        "'EUR' or 'USD'.", code="invalid_currency")
    return value


class Goals:
    """The goals, segments and reporting currencies of one data directory (every site).

    Thread- and process-safe.

    Args:
        state: the shared state (:func:`mallard._sharedstate.shared_state`) holding ``goals.json``, or
            the path of a local ``state/`` directory.
        check_filters: called with a segment's filters before it is saved; raises for bad ones
            (:class:`mallard._queries.Queries` passes the query parser's check).
    """

    def __init__(self, state: StateLike, *,
                 check_filters: Callable[[Sequence[Any]], None] | None = None) -> None:
        state = as_state(state)
        self._check_filters = check_filters
        self._where = state.where(GOALS_FILE)
        self._file = state.document(GOALS_FILE, parse=self._parse, dump=self._dump, empty=_Document)
        self._versions: tuple[_Document, dict[str, str]] | None = None

    def version(self, site_id: str) -> str:
        """A digest of everything of ``site_id`` kept here (goals, segments, reporting currency): it
        changes whenever any process changes one of them, and only then, so answers that depend on them
        can be cached under it (the HTTP query cache does). ``"unreadable"`` while the file cannot be
        read (answers that need goals then fail and are not cached)."""
        try:
            doc = self._file.read()
        except StorageError:
            return "unreadable"
        memo = self._versions
        if memo is None or memo[0] is not doc:  # the document is replaced, never mutated
            memo = self._versions = (doc, {})
        found = memo[1].get(site_id)
        if found is None:
            mine = {"goals": [asdict(g) for g in doc.goals if g.site_id == site_id],
                    "segments": [[s.id, s.name, list(s.filters)] for s in doc.segments
                                 if s.site_id == site_id],
                    "currency": doc.currencies.get(site_id)}
            digest = hashlib.blake2b(json.dumps(mine, sort_keys=True).encode(), digest_size=16)
            found = memo[1][site_id] = digest.hexdigest()
        return found

    # -- goals ------------------------------------------------------------------------------------
    def list(self, site_id: str) -> GoalList:
        """The site's goals, oldest first."""
        return [g for g in self._file.read().goals if g.site_id == site_id]

    def get(self, goal_id: int) -> Goal | None:
        return next((g for g in self._file.read().goals if g.id == goal_id), None)

    def add(self, site_id: str, *, event_name: str | None = None, page_path: str | None = None,
            display_name: str | None = None, currency: str | None = None) -> Goal:
        """Find or create a goal: an existing goal of the site for the same event name (or page path)
        is returned unchanged; otherwise one is created.

        Raises:
            GoalError: neither or both of ``event_name`` and ``page_path``; a bad name, path or
                currency; a display name another goal of the site has; too many goals.
        """
        if (event_name is None) == (page_path is None):
            raise GoalError("A goal has either an event_name (goal_type 'event') or a page_path "
                            "(goal_type 'page').")
        if event_name is not None:
            kind: GoalType = "event"
            _text(event_name, "event_name")
            name = event_name if display_name is None else display_name
        else:
            kind = "page"
            path = _text(page_path, "page_path", MAX_PATH_LENGTH)
            if not path.startswith("/"):
                raise GoalError("page_path must start with '/', e.g. '/signup' or '/blog/*'.")
            name = f"Visit {path}" if display_name is None else display_name
        _text(name, "display_name")
        if currency is not None:
            if kind != "event":
                raise GoalError("Only custom event goals have a revenue currency.",
                                code="invalid_currency")
            check_currency(currency)
        found: list[Goal] = []

        def add(doc: _Document) -> _Document:
            found.clear()
            mine = [g for g in doc.goals if g.site_id == site_id]
            for goal in mine:
                if goal.goal_type == kind and (goal.event_name, goal.page_path) == (event_name, page_path):
                    found.append(goal)
                    return doc
            if any(g.display_name == name for g in mine):
                raise GoalError(f"The site already has a goal named {name!r}; choose another "
                                "display_name.", code="goal_exists")
            if len(mine) >= MAX_GOALS:
                raise GoalError(f"A site may have at most {MAX_GOALS} goals.", code="too_many_goals")
            found.append(Goal(doc.next_id, site_id, kind, name, event_name, page_path, currency))
            return _Document(doc.next_id + 1, [*doc.goals, found[0]], doc.segments, doc.currencies)

        self._file.update(add)
        return found[0]

    def remove(self, goal_id: int, site_id: str | None = None) -> bool:
        """Delete a goal (of ``site_id``, when given); False when there is none with that id."""
        return self._remove(goal_id, site_id, segments=False)

    # -- segments ---------------------------------------------------------------------------------
    def segments(self, site_id: str) -> SegmentList:
        return [s for s in self._file.read().segments if s.site_id == site_id]

    def segment(self, site_id: str, segment_id: int) -> Segment | None:
        return next((s for s in self.segments(site_id) if s.id == segment_id), None)

    def add_segment(self, site_id: str, name: str, filters: Sequence[Any]) -> Segment:
        """Save a segment (its filters as given; check them with the query parser first)."""
        _text(name, "The segment name")
        if isinstance(filters, (str, bytes)) or not isinstance(filters, Sequence) or not filters:
            raise GoalError("A segment's filters are a non-empty list of v2 query filters.",
                            code="invalid_segment")
        if self._check_filters is not None:
            self._check_filters(filters)
        saved = tuple(json.loads(json.dumps(list(filters))))

        def add(doc: _Document) -> _Document:
            if sum(s.site_id == site_id for s in doc.segments) >= MAX_SEGMENTS:
                raise GoalError(f"A site may have at most {MAX_SEGMENTS} segments.",
                                code="invalid_segment")
            seg = Segment(doc.next_id, site_id, name, saved)
            return _Document(doc.next_id + 1, doc.goals, [*doc.segments, seg], doc.currencies)

        return self._file.update(add).segments[-1]

    def remove_segment(self, segment_id: int, site_id: str | None = None) -> bool:
        """Delete a segment (of ``site_id``, when given); False when there is none with that id."""
        return self._remove(segment_id, site_id, segments=True)

    def _remove(self, item_id: int, site_id: str | None, *, segments: bool) -> bool:
        name = "segments" if segments else "goals"
        removed = [False]

        def remove(doc: _Document) -> _Document:
            items = getattr(doc, name)
            kept = [i for i in items if not (i.id == item_id and site_id in (None, i.site_id))]
            removed[0] = len(kept) < len(items)
            changes: dict[str, Any] = {name: kept}
            return replace(doc, **changes) if removed[0] else doc

        self._file.update(remove)
        return removed[0]

    # -- reporting currency -----------------------------------------------------------------------
    def currency(self, site_id: str) -> str | None:
        """The site's reporting currency, or None (revenue is then reported per goal currency)."""
        return self._file.read().currencies.get(site_id)

    def set_currency(self, site_id: str, currency: str | None) -> None:
        """Set (or, with None, clear) the site's reporting currency."""
        if currency is not None:
            check_currency(currency)

        def change(doc: _Document) -> _Document:
            currencies = {k: v for k, v in doc.currencies.items() if k != site_id}
            if currency is not None:
                currencies[site_id] = currency
            return _Document(doc.next_id, doc.goals, doc.segments, currencies)

        self._file.update(change)

    # -- storage ----------------------------------------------------------------------------------
    def _parse(self, raw: bytes) -> _Document:
        try:
            doc = json.loads(raw)
            if not isinstance(doc, Mapping) or not isinstance(doc.get("next_id"), int):
                raise ValueError
            goals = [Goal(**cast(dict[str, Any], g)) for g in doc["goals"]]
            segments = [Segment(s["id"], s["site_id"], s["name"], tuple(s["filters"]))
                        for s in doc["segments"]]
            currencies = dict(doc["currencies"])
        except (ValueError, KeyError, TypeError):
            raise StorageError(f"{self._where} is not a valid goals file. Restore it from a "
                               "backup, or delete it (every goal and segment is then forgotten).",
                               code="invalid_goals") from None
        return _Document(doc["next_id"], goals, segments, currencies)

    @staticmethod
    def _dump(doc: _Document) -> bytes:
        data = {"next_id": doc.next_id, "goals": [asdict(g) for g in doc.goals],
                "segments": [{"id": s.id, "site_id": s.site_id, "name": s.name,
                              "filters": list(s.filters)} for s in doc.segments],
                "currencies": doc.currencies}
        return (json.dumps(data, indent=2) + "\n").encode()
