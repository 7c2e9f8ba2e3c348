"""The events of a shared lake on object storage as its commit log says they are
(:mod:`mallard._store.objectlog`), not as a LIST of the bucket shows them.

Which files are live is the result of the log's commits: a compaction (the merged file in, its sources
out) and an erasure (the partitions out, the tombstone in) are each one commit, so a reader of a
snapshot sees either everything of such a change or nothing of it, whereas a LIST taken in the middle
could show the merged file beside its sources. :class:`LogLake` answers the lake's questions (sites,
dates, a partition's files, a file's size and time) from a snapshot, refreshed at most every
:data:`~mallard._store.objectstore.LISTING_SECS` (one LIST of the commits after the last one read, and
a GET per new commit). A reading pins the snapshot it started with, for every statement of the query
(and the readings nested in it), so a query never mixes two snapshots.

A lake copied into the bucket before any host wrote it has files and no log: the first writer adopts
them (one commit of every file listed, made only if no other commit exists), so they stay live.

:class:`LogTombstones` are the erasure records of the log, as the Store's other code expects them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Final

import pyarrow.fs as pafs

from .._errors import StorageError
from .._state import StateDir
from .lake import Lake, site_of
from .objectclient import storage_error
from .objectlog import Commit, Entry, ObjectLog, Snapshot
from .objectlog import Tombstone as Erasure
from .objectstore import LISTING_SECS, ObjectLake
from .s3 import SCHEME, Bucket
from .tombstones import Tombstone, Tombstones

__all__ = ["LogLake", "LogTombstones", "partition_of"]

log = logging.getLogger("mallard.store")

_STAMP: Final = 16  # a mallard file name starts with the microseconds since the epoch it was written at


def partition_of(relative: str) -> tuple[str, date] | None:
    """(site, day) of a data file's path relative to the lake (``events/site_id=…/date=…/name``)."""
    parts = relative.split("/")
    if len(parts) != 4 or not parts[1].startswith("site_id=") or not parts[2].startswith("date="):
        return None
    try:
        return site_of(parts[1]), date.fromisoformat(parts[2][5:])
    except ValueError:
        return None


def _written(name: str) -> float:
    """When a file was written, from its name (mallard's names start with it; 0 for others). Objects
    are never rewritten, so this stands for their modification time."""
    stamp = name[:_STAMP]
    return int(stamp) / 1e6 if stamp.isdigit() and len(stamp) == _STAMP else 0.0


@dataclass(slots=True)
class _Index:
    """A snapshot, and its files by site and day, as :class:`LogLake` answers from it."""

    snapshot: Snapshot
    taken: float
    days: dict[str, dict[date, list[tuple[str, str]]]] = field(default_factory=dict)
    infos: dict[str, pafs.FileInfo] = field(default_factory=dict)


class _Adopted(Exception):
    """Another host committed first: the files it saw are its to adopt."""


class LogLake(ObjectLake):
    """The ``events`` relation of a shared lake, from its commit log ``log``. ``adopt``: a writer,
    which makes the files of a lake without a log live by a first commit."""

    def __init__(self, bucket: Bucket, objectlog: ObjectLog, lock_path: Path, *, adopt: bool = False) -> None:
        super().__init__(bucket, "events", lock_path)
        self.log = objectlog
        self._adopt = adopt
        self._index: _Index | None = None
        self._index_lock = threading.Lock()
        self._pins = threading.local()

    @property
    def bucket_name(self) -> str:
        return self._bucket.bucket

    # -- snapshots ----------------------------------------------------------------------------------
    def snapshot(self, *, fresh: bool = False) -> Snapshot:
        """The snapshot a reading of this thread holds, else the newest at most
        :data:`LISTING_SECS` old (``fresh``: the newest now). Raises StorageError when the log cannot
        be read."""
        return self._current(fresh=fresh).snapshot

    def _current(self, *, fresh: bool = False) -> _Index:
        pinned: _Index | None = getattr(self._pins, "index", None)
        if pinned is not None and not fresh:
            return pinned
        with self._index_lock:
            cached = self._index
            now = time.monotonic()
            if not fresh and cached is not None and now - cached.taken < LISTING_SECS:
                return cached
            try:
                snap = self.log.snapshot()
                if snap.version < 0 and self._adopt:
                    snap = self._adopt_listing()
            except Exception as exc:
                raise storage_error(self._bucket.url, "read the commit log of", exc,
                                    self._bucket.endpoint) from None
            self._index = index = self._build(snap, now)
            return index

    def _build(self, snap: Snapshot, now: float) -> _Index:
        index = _Index(snap, now)
        for entry in snap.files.values():
            found = partition_of(entry.path)
            if found is None:
                continue
            key = self._bucket.key(entry.path)
            name = entry.path.rsplit("/", 1)[1]
            index.days.setdefault(found[0], {}).setdefault(found[1], []).append((name, SCHEME + key))
            index.infos[key] = pafs.FileInfo(key, type=pafs.FileType.File, size=entry.bytes,
                                             mtime=_written(name))
        for days in index.days.values():
            for names in days.values():
                names.sort()
        return index

    def _adopt_listing(self) -> Snapshot:
        """Commit every data file a LIST finds, if no host has committed anything yet."""
        self._adopt = False
        entries = [Entry(self.relative(path), 0, info.size or 0)
                   for site in ObjectLake.sites(self) for day in ObjectLake.dates(self, site)
                   for name, path in ObjectLake.names(self, site, day)
                   if name.endswith(".parquet") and not name.startswith(".")
                   and (info := ObjectLake.known(self, self.key(path))) is not None]
        if entries:
            def check(missed: list[Commit]) -> None:
                if missed:
                    raise _Adopted

            try:
                self.log.commit(add=entries, check=check)  # the index is being built: no invalidation
                log.info("adopted the %d files of %s into its commit log", len(entries), self._bucket.url)
            except _Adopted:
                pass
        return self.log.snapshot()

    def commit(self, add: Sequence[Entry] = (), remove: Sequence[str] = (),
               erase: Sequence[Erasure] = (), *,
               check: Callable[[list[Commit]], None] | None = None) -> int:
        """:meth:`ObjectLog.commit`, after which this process's next question reads the new snapshot
        (a process sees at once what it committed: a flush's events never vanish from its view)."""
        try:
            return self.log.commit(add, remove, erase, check=check)
        finally:
            with self._index_lock:
                self._index = None

    @contextmanager
    def locked(self, *, exclusive: bool) -> Iterator[None]:
        """Shared: pin this thread's snapshot for the reading (and hold the local lake lock shared,
        which guards the host's derived files). No exclusive lock exists: changes are commits."""
        if exclusive:
            raise StorageError(f"{self._bucket.url} is changed by commits to its log, never under a lock.")
        depth: int = getattr(self._pins, "depth", 0)
        if depth == 0:
            self._pins.index = self._current()
        self._pins.depth = depth + 1
        try:
            with Lake.locked(self, exclusive=False):
                yield
        finally:
            self._pins.depth = depth
            if depth == 0:
                self._pins.index = None

    # -- the lake's questions -------------------------------------------------------------------------
    def relative(self, path: str) -> str:
        """A file's path relative to the lake's root (``events/…``), from its ``s3://`` path."""
        return path.removeprefix(f"{self._bucket.url}/")

    def sites(self) -> list[str]:
        return sorted(self._current().days)

    def dates(self, site_id: str) -> list[date]:
        return sorted(self._current().days.get(site_id, ()))

    def names(self, site_id: str, day: date) -> list[tuple[str, str]]:
        return list(self._current().days.get(site_id, {}).get(day, ()))

    def mtime(self, path: str) -> float:
        info = self._current().infos.get(self.key(path))
        if info is None:
            raise FileNotFoundError(path)
        return (info.mtime_ns or 0) / 1e9

    def known(self, key: str) -> pafs.FileInfo | None:
        # No request here (DuckDB's reads ask it): the pinned or the last snapshot answers.
        index = getattr(self._pins, "index", None) or self._index
        return None if index is None else index.infos.get(key)

    def exists(self, path: str) -> bool:
        """Whether the file is live in the newest snapshot (asks the store)."""
        return self.relative(path) in self._current(fresh=True).snapshot.files


class LogTombstones(Tombstones):
    """The erasures recorded in the commit log of ``lake`` (see :mod:`mallard._store.tombstones`)."""

    def __init__(self, lake: LogLake, state: StateDir) -> None:
        super().__init__(state)
        self._lake = lake
        self._known: tuple[int, list[Tombstone]] = (-2, [])

    def add(self, site_id: str, start: date, end: date, at: float | None = None) -> Tombstone:
        stone = Erasure(site_id, start, end, time.time() if at is None else at)
        self._lake.commit(erase=[stone])
        return Tombstone(stone.site_id, stone.start, stone.end, stone.at)

    def all(self) -> list[Tombstone]:
        """The tombstones of the newest snapshot (at most a second old); while the log cannot be
        read, the last ones read (a commit checks the newest again: see ObjectBatch)."""
        try:
            snap = self._lake.snapshot()
        except StorageError:
            return self._known[1]
        if snap.version != self._known[0]:
            self._known = (snap.version, [Tombstone(t.site_id, t.start, t.end, t.at)
                                          for t in snap.tombstones])
        return self._known[1]
