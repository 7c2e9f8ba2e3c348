"""The one freshness rule of derived rows, and the computations a Queries object keeps in memory.

Derived rows (a stored sessions or rollup partition, a computation of sessions or rollups from events)
are served while the lake files of the days they were derived from are those they were derived from
(same fingerprint: :func:`mallard._store.derived.fingerprint`) and no buffered event falls on those
days (:func:`unchanged`). :class:`LiveCache` keeps the last few computations of a process under the
same rule.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol, TypeVar

import pyarrow as pa

from .._store.derived import fingerprint

if TYPE_CHECKING:
    from .._store import Store

__all__ = ["Computed", "LiveCache", "listing_for", "unchanged"]

T = TypeVar("T")


class LiveCache:
    """The last few computed session and rollup tables of a Queries object, each served while the lake
    files of the days it depends on are the ones it was computed from and no buffered event falls on
    those days (the same rule as a stored partition's, in memory); and facts about derived rows that
    never change for the same rows (:meth:`fact`). Thread-safe."""

    def __init__(self, entries: int = 16) -> None:
        self._entries = entries
        self._items: OrderedDict[Hashable, Computed] = OrderedDict()
        self._facts: OrderedDict[Hashable, bool] = OrderedDict()
        self._running: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()

    def computed(self, key: Hashable, store: Store, version: int | str, held: set[date],
                 compute: Callable[[], Computed], mark: int | None = None) -> Computed:
        """The fresh entry of ``key`` (:meth:`get`), else ``compute()``'s, kept (:meth:`put`). Requests
        that miss the same key at once compute it once: the others wait for that computation (the
        dashboard's first screen sends several that need the same open days) and compute it
        themselves only if it kept nothing (it failed) or what it kept does not serve them (it read
        other buffered events). ``held`` and ``mark``: the days and the mark of the buffered events
        the caller's reading holds (:attr:`Reader.buffered_mark <mallard._store.reader.Reader>`)."""
        return self._once(key, lambda: self.get(key, store, version, held, mark), compute,
                          lambda done: self.put(key, done, held))

    def fact(self, key: Hashable, establish: Callable[[], bool]) -> bool:
        """The remembered value of ``key``, else ``establish()``'s, remembered (the last 64). Requests
        that miss the same key at once establish it once, as :meth:`computed` computes (the parts of a
        dashboard view check the same range's rollups at the same moment)."""

        def remember(value: bool) -> None:
            with self._lock:
                self._facts[key] = value
                while len(self._facts) > 64:
                    self._facts.popitem(last=False)

        def known() -> bool | None:
            with self._lock:
                return self._facts.get(key)

        return self._once(("fact", key), known, establish, remember)

    def _once(self, key: Hashable, lookup: Callable[[], T | None], make: Callable[[], T],
              keep: Callable[[T], None]) -> T:
        """``lookup()``'s value, else ``make()``'s, given to ``keep``; made once by requests that miss
        ``key`` at once: the others wait, then look up again and make it themselves only if nothing
        was kept."""
        found = lookup()
        if found is not None:
            return found
        with self._lock:
            running = self._running.get(key)
            if running is None:
                mine = self._running[key] = threading.Event()
        if running is not None:
            running.wait()
            found = lookup()
            return found if found is not None else make()
        try:
            made = make()
            keep(made)
            return made
        finally:
            with self._lock:
                del self._running[key]
            mine.set()

    def get(self, key: Hashable, store: Store, version: int | str, held: set[date],
            mark: int | None = None) -> Computed | None:
        """The entry of ``key`` while it serves a reading holding the buffered events of the days
        ``held`` under ``mark``: rows computed from files only while those days hold none; rows
        computed with buffered events (:attr:`Computed.mark`) while the reading holds the very same
        ones (the same mark); both while the lake files they were computed from are unchanged."""
        with self._lock:
            done = self._items.get(key)
        if done is None:
            return None
        if done.mark is None:
            fresh = unchanged(store, done.site_id, done, version, held)
        else:
            fresh = done.mark == mark and unchanged(store, done.site_id, done, version)
        if not fresh:
            return None
        with self._lock:
            self._items.move_to_end(key)
        return done

    def put(self, key: Hashable, done: Computed, held: set[date]) -> None:
        if done.mark is None and _holds(done.first, done.last, held):
            return  # buffered events were read, unmarked: they are flushed (as new files) or gone soon
        with self._lock:
            self._items[key] = done
            self._items.move_to_end(key)
            while len(self._items) > self._entries:
                self._items.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Computed:
    """Session rows computed from events, and what they depend on."""

    table: pa.Table
    site_id: str
    first: date  # the days of events the rows depend on: [first, last]
    last: date
    files: tuple[str, ...]  # the lake files of those days the computation saw
    fingerprint: str  # of those files and the session window (as a stored partition's)
    #: The mark of the buffered events the computation read (None: it read the lake's files only; see
    #: :attr:`Reader.buffered_mark <mallard._store.reader.Reader>`): it serves readings with that mark.
    mark: int | None = None


class _Derived(Protocol):
    """Rows derived from the lake files of the days ``[first, last]`` (a stored partition, a
    computation kept in memory)."""

    @property
    def first(self) -> date: ...
    @property
    def last(self) -> date: ...
    @property
    def fingerprint(self) -> str: ...


def unchanged(store: Store, site: str, rows: _Derived, version: int | str,
              held: Iterable[date] = (), listing: Mapping[date, Sequence[str]] | None = None) -> bool:
    """The one freshness rule: ``rows`` may be served while the lake files of their days are those
    they were derived from (same fingerprint, with ``version``: the session window for sessions) and
    no buffered event (``held``) falls on those days. ``listing``: the site's files by day, listed
    just now for days including those of ``rows`` (:meth:`Lake.files_by_day
    <mallard._store.lake.Lake.files_by_day>`), when many partitions are checked at once."""
    if _holds(rows.first, rows.last, held):
        return False
    files = store.lake.files(site, rows.first, rows.last) if listing is None else [
        f for day, paths in listing.items() if rows.first <= day <= rows.last for f in paths]
    return fingerprint(files, version) == rows.fingerprint


def listing_for(store: Store, site: str, rows: Iterable[_Derived]) -> dict[date, list[str]]:
    """The site's files by day over the days of every one of ``rows`` (one listing), for
    :func:`unchanged`."""
    spans = [(r.first, r.last) for r in rows]
    if not spans:
        return {}
    return store.lake.files_by_day(site, min(f for f, _ in spans), max(last for _, last in spans))


def _holds(first: date, last: date, held: Iterable[date]) -> bool:
    return any(first <= d <= last for d in held)
