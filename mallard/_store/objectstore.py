"""A lake on S3-compatible object storage, read-only: ``mallard.open("s3://bucket/prefix", …)``.

The objects have the layout of a local data directory (docs/storage.md): ``events/``, ``sessions/`` and
``rollups/`` under the prefix, and ``state/goals.json``. Every query reads them exactly as it reads local
files, through the same SQL: each thread's DuckDB connection has pyarrow's S3 filesystem registered
(:mod:`mallard._store.objectfs`), so a ``read_parquet`` of ``s3://…`` paths is served by pyarrow, and the
Python side (listings, Parquet footers) goes through the same filesystem
(:attr:`Lake.filesystem <mallard._store.lake.Lake.filesystem>`).

Nothing is written to the bucket and no lock is taken: files on object storage are immutable and
uniquely named, as local ones. A relation's listing (one recursive LIST per site) is reused for
:data:`LISTING_SECS`, since a query asks for the files of many day ranges.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Final

import duckdb
import pyarrow.fs as pafs

from .._errors import StorageError
from . import Store
from .derived import DerivedFiles
from .lake import Lake, site_dir_name, site_of
from .objectlog import ObjectLog
from .quarantine import Quarantine
from .s3 import SCHEME, Bucket

if TYPE_CHECKING:
    from .._settings import Settings

__all__ = ["LISTING_SECS", "ObjectLake", "ObjectStore", "open_store"]

#: Seconds a relation's listing of a site is reused (a query lists the files of many day ranges).
LISTING_SECS: Final = 1.0
#: Documents of ``state/`` that queries read, copied when the lake is opened.
STATE_READ: Final = ("goals.json",)


def open_store(settings: Settings, *, read_only: bool) -> Store:
    """The Store of ``settings``: the local ``data_dir``, or with an ``s3://`` ``lake_url`` an
    :class:`ObjectStore` (read-only) or a :class:`~mallard._store.sharedstore.SharedStore` (a host
    writing the shared lake, its spool and state in ``data_dir``)."""
    if settings.lake_url:
        from .objectclient import client

        bucket = Bucket.from_settings(settings)
        if not read_only:
            from .sharedstore import SharedStore

            return SharedStore(settings, bucket, client(settings))
        logged = ObjectLog(client(settings), bucket.bucket, bucket.prefix) if bucket.check() else None
        return ObjectStore(bucket, duckdb_threads=settings.duckdb_threads,
                           duckdb_memory_limit=settings.duckdb_memory_limit, log=logged)
    if read_only:
        return Store(settings.data_dir, read_only=True, duckdb_threads=settings.duckdb_threads,
                     duckdb_memory_limit=settings.duckdb_memory_limit)
    return Store(settings.data_dir, spool_fsync=settings.spool_fsync,
                 duckdb_threads=settings.duckdb_threads,
                 duckdb_memory_limit=settings.duckdb_memory_limit,
                 quarantine_grace_secs=settings.quarantine_grace_secs)


@dataclass(frozen=True, slots=True)
class _Listing:
    """One site's files of a relation: (name, path) by partition day, and what the store said of each
    file (its size and mtime), by pyarrow's path."""

    taken: float
    days: dict[date, list[tuple[str, str]]] = field(default_factory=dict)
    infos: dict[str, pafs.FileInfo] = field(default_factory=dict)


class ObjectLake(Lake):
    """A relation (``events``, ``sessions``, ``rollups``) of a lake on object storage, read-only. Its
    paths are ``s3://bucket/prefix/<relation>/site_id=<site>/date=<day>/<name>``."""

    def __init__(self, bucket: Bucket, relation: str, lock_path: Path) -> None:
        super().__init__(Path(bucket.key(relation)), lock_path)
        self.filesystem = bucket.fs
        self._bucket = bucket
        self._relation = relation
        self._sites: tuple[float, list[str]] | None = None
        self._listings: dict[str, _Listing] = {}
        self._listing_lock = threading.Lock()

    def key(self, path: str) -> str:
        return path.removeprefix(SCHEME)

    @contextmanager
    def locked(self, *, exclusive: bool) -> Iterator[None]:
        """No lock: nothing here changes the objects."""
        if exclusive:
            raise StorageError(f"{self._bucket.url} is read-only here (mallard.open); use mallard.Mallard "
                               "with lake_url to write it.")
        yield

    # -- listing ------------------------------------------------------------------------------------
    def sites(self) -> list[str]:
        now = time.monotonic()
        cached = self._sites
        if cached is not None and now - cached[0] < LISTING_SECS:
            return cached[1]
        found = self._list(pafs.FileSelector(self._bucket.key(self._relation), allow_not_found=True))
        sites = sorted(site_of(info.base_name) for info in found
                       if info.type == pafs.FileType.Directory and info.base_name.startswith("site_id="))
        self._sites = (now, sites)
        return sites

    def dates(self, site_id: str) -> list[date]:
        return sorted(self._site(site_id).days)

    def names(self, site_id: str, day: date) -> list[tuple[str, str]]:
        return list(self._site(site_id).days.get(day, ()))

    def mtime(self, path: str) -> float:
        site = path.removeprefix(f"{SCHEME}{self._bucket.key(self._relation)}/").split("/", 1)[0]
        info = self._site(site_of(site)).infos.get(self.key(path))
        if info is None:
            raise FileNotFoundError(path)
        return (info.mtime_ns or 0) / 1e9

    def known(self, key: str) -> pafs.FileInfo | None:
        """What the last listing said of the file ``key`` (pyarrow's path; None: not listed). Objects are
        never rewritten under the same name, so it holds for as long as the object exists."""
        site = key.removeprefix(f"{self._bucket.key(self._relation)}/").split("/", 1)[0]
        with self._listing_lock:
            listing = self._listings.get(site_of(site))
        return None if listing is None else listing.infos.get(key)

    def _site(self, site_id: str) -> _Listing:
        now = time.monotonic()
        with self._listing_lock:
            cached = self._listings.get(site_id)
        if cached is not None and now - cached.taken < LISTING_SECS:
            return cached
        root = self._bucket.key(f"{self._relation}/{site_dir_name(site_id)}")
        listing = _Listing(now)
        for info in self._list(pafs.FileSelector(root, recursive=True, allow_not_found=True)):
            parts = info.path[len(root) + 1:].split("/")
            if info.type != pafs.FileType.File or len(parts) != 2 or not parts[0].startswith("date="):
                continue
            try:
                day = date.fromisoformat(parts[0][5:])
            except ValueError:
                continue
            listing.days.setdefault(day, []).append((parts[1], SCHEME + info.path))
            listing.infos[info.path] = info
        for names in listing.days.values():
            names.sort()
        with self._listing_lock:
            self._listings[site_id] = listing
        return listing

    def _list(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        try:
            found: list[pafs.FileInfo] = self._bucket.fs.get_file_info(selector)
        except OSError as exc:
            raise self._bucket.error(exc, f"list {self._relation}/ of") from None
        return found


class ObjectStore(Store):
    """A read-only :class:`Store` over a lake on object storage (see the module's docstring).

    Raises :class:`StorageError` when the bucket cannot be read or holds no lake at the prefix.
    """

    def __init__(self, bucket: Bucket, *, duckdb_threads: int | None = None,
                 duckdb_memory_limit: str | None = None, log: ObjectLog | None = None) -> None:
        bucket.check()
        # A private local directory: the copies of state/ documents, and the locks nobody contends for;
        # deleted with the store (or at exit).
        local = Path(tempfile.mkdtemp(prefix="mallard-lake-"))
        weakref.finalize(self, shutil.rmtree, local, ignore_errors=True)
        super().__init__(local, read_only=True, duckdb_threads=duckdb_threads,
                         duckdb_memory_limit=duckdb_memory_limit)
        #: Where the lake is: the bucket, the prefix and pyarrow's filesystem.
        self.bucket = bucket
        lock = self.state_dir / "lake.lock"
        self._relations = {name: ObjectLake(bucket, name, lock)
                           for name in ("events", "sessions", "rollups", "attributed", "visits")}
        if log is not None:  # written by hosts: the log says which files are live (loglake.py)
            from .loglake import LogLake, LogTombstones

            self._relations["events"] = events = LogLake(bucket, log, lock)
            self.tombstones = LogTombstones(events, self.state)
        self.lake = self._relations["events"]
        self.quarantine = Quarantine(self.lake, local / "quarantine", grace_secs=0, movable=False)
        self.session_files = DerivedFiles(local / "sessions", lock, lake=self._relations["sessions"])
        self.rollup_files = DerivedFiles(local / "rollups", lock, lake=self._relations["rollups"])
        self.attributed_files = DerivedFiles(local / "attributed", lock,
                                             lake=self._relations["attributed"])
        self.visit_files = DerivedFiles(local / "visits", lock, lake=self._relations["visits"])
        from .objectfs import LakeFileSystem, ObjectCache  # imports fsspec: only for object storage

        #: What DuckDB reads the objects through (see :mod:`mallard._store.objectfs`).
        self.duckdb_filesystem = LakeFileSystem(bucket.fs, self._known, ObjectCache(),
                                                skip_instance_cache=True)
        self._copy_state()

    def _known(self, path: str) -> pafs.FileInfo | None:
        key = path.removeprefix(SCHEME)
        relation = key.removeprefix(self.bucket.key("") + "/").split("/", 1)[0]
        lake = self._relations.get(relation)
        return None if lake is None else lake.known(key)

    def _copy_state(self) -> None:
        for name in STATE_READ:
            try:
                with self.bucket.fs.open_input_stream(self.bucket.key(f"state/{name}")) as stream:
                    data = stream.read()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self.bucket.error(exc, f"read state/{name} of") from None
            self.state.ensure()
            self.state.write(name, data)

    def connection(self) -> duckdb.DuckDBPyConnection:
        fresh = getattr(self._local, "con", None) is None
        con = super().connection()
        if fresh:
            con.register_filesystem(self.duckdb_filesystem)
        return con

