"""The one freshness rule of derived rows, and the computations a Queries object keeps in memory.

Derived rows (a stored sessions or rollup partition, a computation of sessions or rollups from events)
are served while the lake files of the days they were derived from are those they were derived from
(same fingerprint: :func:`mallard._store.derived.fingerprint`) and no buffered event falls on those
days (:func:`unchanged`). :class:`LiveCache` keeps the last few computations of a process under the
same rule.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

import pyarrow as pa

from .._store.derived import fingerprint

if TYPE_CHECKING:
    from .._store import Store

__all__ = ["Computed", "LiveCache", "Same", "listing_for", "unchanged"]

T = TypeVar("T")


class LiveCache:
    """The last few computed session and rollup tables of a Queries object, each served while the lake
    files of the days it depends on are the ones it was computed from and no buffered event falls on
    those days (the same rule as a stored partition's, in memory); and facts about derived rows that
    never change for the same rows (:meth:`fact`). Thread-safe."""

    def __init__(self, entries: int = 16, *, lasting: Path | None = None, writable: bool = True) -> None:
        self._entries = entries
        #: Where facts about stored files are kept for every process (:meth:`fact` with ``lasting``).
        self._lasting = lasting
        self._writable = writable
        self._items: OrderedDict[Hashable, Computed] = OrderedDict()
        self._facts: OrderedDict[Hashable, bool] = OrderedDict()
        self._tables: OrderedDict[Hashable, pa.Table] = OrderedDict()
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

    def fact(self, key: Hashable, establish: Callable[[], bool], *, lasting: bool = False) -> bool:
        """The remembered value of ``key``, else ``establish()``'s, remembered (the last 64). Requests
        that miss the same key at once establish it once, as :meth:`computed` computes (the parts of a
        dashboard view check the same range's rollups at the same moment). ``lasting``: a fact about
        stored files named in ``key`` (whose names change with their content), true for good: also
        kept in the ``lasting`` directory, for this process's later life and every other process (the
        other workers of a server, the next server)."""
        kept = self._kept(key) if lasting else None

        def remember(value: bool) -> None:
            self._note(key, value)
            if kept is not None and self._writable:
                _keep(kept, value)

        def known() -> bool | None:
            with self._lock:
                value = self._facts.get(key)
            if value is not None or kept is None:
                return value
            value = _kept_value(kept)
            if value is not None:  # another process's: remembered here too, not read again
                self._note(key, value)
            return value

        return self._once(("fact", key), known, establish, remember)

    def _note(self, key: Hashable, value: bool) -> None:
        with self._lock:
            self._facts[key] = value
            while len(self._facts) > 64:
                self._facts.popitem(last=False)

    def _kept(self, key: Hashable) -> Path | None:
        if self._lasting is None:
            return None
        return self._lasting / hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()

    def derived(self, key: Hashable, make: Callable[[], pa.Table]) -> pa.Table:
        """The table remembered under ``key``, else ``make()``'s, remembered (the last few): for rows
        derived from rows the key names exactly (stored files by name, computed tables by
        :class:`Same`), which serve while those are the rows a query reads."""

        def remember(table: pa.Table) -> None:
            with self._lock:
                self._tables[key] = table
                while len(self._tables) > self._entries:
                    self._tables.popitem(last=False)

        def known() -> pa.Table | None:
            with self._lock:
                return self._tables.get(key)

        return self._once(("derived", key), known, make, remember)

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


#: How many lasting facts a data directory keeps (the oldest go first): a few per range and day asked.
LASTING: Final = 512


def _kept_value(path: Path) -> bool | None:
    try:
        return path.read_bytes() == b"1"
    except OSError:  # not established yet (or unreadable: established again)
        return None


def _keep(path: Path, value: bool) -> None:
    """Write a lasting fact (atomically: a reader sees it whole or not at all), and forget the oldest
    beyond :data:`LASTING`. A directory that cannot be written only keeps nothing."""
    try:
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_bytes(b"1" if value else b"0")
        os.replace(tmp, path)
        facts = [p for p in path.parent.iterdir() if not p.name.startswith(".")]
        if len(facts) > LASTING:
            for old in sorted(facts, key=_mtime)[:len(facts) - LASTING]:
                with contextlib.suppress(OSError):
                    old.unlink()
    except OSError:
        pass


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class Same:
    """A key part naming one object itself (a computed table): equal to another only for the very same
    object while it lives. It keeps no reference (a remembered key does not keep a large table alive):
    once the object is gone, the key matches nothing, even an object that takes its ``id``."""

    __slots__ = ("_id", "_ref")

    def __init__(self, obj: object) -> None:
        self._id = id(obj)
        self._ref = weakref.ref(obj)

    def __hash__(self) -> int:
        return self._id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Same) or other._id != self._id:
            return False
        mine = self._ref()
        return mine is not None and mine is other._ref()


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
