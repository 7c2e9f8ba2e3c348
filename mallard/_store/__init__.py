"""Store: owns ``data_dir`` and everything on disk.

Layout (see docs/storage.md)::

    events/site_id=<site>/date=<YYYY-MM-DD>/<segment>.parquet   immutable ZSTD Parquet files
    sessions/…/<fingerprint>.<first>.<last>.parquet              one row per session, by start day
    rollups/…/<fingerprint>.<day>.<day>.parquet                  per-day totals of event metrics
    attributed/…/<fingerprint>.<first>.<last>.parquet           a day's events with their session's columns
    visits/…/<fingerprint>.<first>.<last>.parquet               a day's sessions by visit attribute
    spool/<host>-<pid>-<token>.<n>                              per-process log of accepted events
    state/                                                      salts, secret, locks, auth state
    quarantine/site_id=<site>/date=<YYYY-MM-DD>/<segment>.parquet   unreadable files moved aside

There is no long-lived writable DuckDB file, so any number of processes can ingest and query the same
directory. Each thread queries through its own in-memory DuckDB connection over the lake files plus the
caller's not-yet-flushed events. The Store knows paths and the column schema, not analytics.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from .._errors import QueryTimeoutError, StorageError
from .._events import SITE_ID, Row
from .._progress import Progress, silent
from .._state import StateDir
from .batch import Batch, PendingBatch
from .compaction import merge
from .derived import DerivedFiles
from .lake import Lake, to_table
from .quarantine import Bad, Quarantine, QuarantinedFile
from .reader import BUFFER, TEMPLATE_DDL, Reader
from .recovery import finish_commits, orphans
from .spool import Spool, write_commit
from .tombstones import Tombstone, Tombstones

__all__ = ["ErasureResult", "PendingBatch", "QuarantinedFile", "Reader", "Store"]

log = logging.getLogger("mallard.store")


@dataclass(frozen=True, slots=True)
class ErasureResult:
    site_id: str
    start_date: date
    end_date: date
    buffered_events_deleted: int
    parquet_partitions_deleted: int


class Store:
    """The data directory: spool, lake and state. Thread-safe; one per process and data_dir."""

    def __init__(self, data_dir: str | os.PathLike[str], *, read_only: bool = False,
                 spool_fsync: bool = False, duckdb_threads: int | None = None,
                 duckdb_memory_limit: str | None = None, quarantine_grace_secs: float = 60.0) -> None:
        self.data_dir = Path(data_dir)
        self.events_dir = self.data_dir / "events"
        self.spool_dir = self.data_dir / "spool"
        self.state_dir = self.data_dir / "state"
        #: The files every process shares (salts, credentials, locks…): :mod:`mallard._state`.
        self.state = StateDir(self.state_dir)
        self.read_only = read_only
        self._fsync = spool_fsync
        self._duck_config: dict[str, str | bool | int | float | list[str]] = {}
        if duckdb_threads:
            self._duck_config["threads"] = duckdb_threads
        if duckdb_memory_limit:
            self._duck_config["memory_limit"] = duckdb_memory_limit
        if not read_only:
            try:
                for d in (self.events_dir, self.spool_dir, self.state_dir):
                    d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"Cannot create the data directory {self.data_dir}: "
                                   f"{exc.strerror}.") from None
        elif not self.data_dir.is_dir():
            raise StorageError(f"{self.data_dir} is not a mallard data directory (missing).")
        self.lake = Lake(self.events_dir, self.state_dir / "lake.lock")
        #: Where unreadable lake files are moved (see :mod:`mallard._store.quarantine`).
        self.quarantine = Quarantine(self.lake, self.data_dir / "quarantine",
                                     grace_secs=quarantine_grace_secs, movable=not read_only)
        # The quarantine has the lake's layout: retention and erasure delete its partitions too.
        self._quarantined = Lake(self.data_dir / "quarantine", self.state_dir / "lake.lock")
        # The relations derived from events (:mod:`mallard._store.derived`): sessions by start day, each
        # day's totals of the event metrics, each settled day's events attributed to their sessions.
        lock, d = self.state_dir / "lake.lock", self.data_dir
        self.session_files = DerivedFiles(d / "sessions", lock, delta=("start_time", "duration_us"))
        self.rollup_files = DerivedFiles(d / "rollups", lock, delta=("visitor_keys.list.element",))
        self.attributed_files = DerivedFiles(d / "attributed", lock)
        self.visit_files = DerivedFiles(d / "visits", lock, delta=("visitor_keys.list.element",))
        #: Erasures, so that they also hold against events other processes still buffer or left in
        #: their spools (see :mod:`mallard._store.tombstones`).
        self.tombstones = Tombstones(self.state)
        self._local = threading.local()
        self._compact_lock = threading.Lock()
        self._spool: Spool | None = None

    # -- write path -------------------------------------------------------------------------------
    def journal(self) -> Spool:
        """A new spool for this process (the buffer's journal).

        The Store remembers it: publishing a batch written by :meth:`write_batch` first commits the
        spool's finished segments to the batch's files (see :mod:`mallard._store.spool`).
        """
        self._writable()
        try:
            self._spool = Spool(self.spool_dir, fsync=self._fsync)
        except OSError as exc:  # not a full disk (that only defers the first segment): a broken dir
            raise StorageError(f"Cannot use the spool directory {self.spool_dir}: "
                               f"{exc.strerror or exc}.") from None
        return self._spool

    @property
    def spool_error(self) -> str | None:
        """Why this process's spool cannot open a segment now (a full disk), else None."""
        return self._spool.error if self._spool is not None else None

    def retry_spool(self) -> None:
        """After :attr:`spool_error`: try to open a spool segment again."""
        if self._spool is not None and self._spool.error is not None:
            self._spool.retry()

    def warnings(self) -> list[str]:
        """Degraded but working: what keeps accepted events out of the lake at the moment (none locally)."""
        return []

    def waiting_bytes(self) -> int:
        """Bytes of accepted events waiting in the spool for the lake to accept them (0 locally: a
        local lake's flush either stores a batch or keeps it in memory for a retry)."""
        return 0

    def vacuum(self) -> int:
        """Delete files no reader can need any more (none locally: deletions are immediate)."""
        return 0

    def write_batch(self, events: Sequence[Row], *,
                    applied: set[Tombstone] | None = None) -> Batch:
        """Write events to hidden Parquet files; return the callable that publishes them.

        With ``applied`` (the erasures the caller's buffer no longer holds events of, updated here), the
        events that an erasure recorded since (by any process) covers are dropped: they were received
        before this process could know of it. Events received later are kept.
        """
        self._writable()
        if applied is None:
            return PendingBatch(self.lake, self._spool, self.lake.write(events))
        stones = self.tombstones.all()
        fresh = [t for t in stones if t not in applied]
        if fresh:
            events = [e for e in events if not any(t.covers(e) for t in fresh)]
            applied.update(fresh)
        return PendingBatch(self.lake, self._spool, self.lake.write(events), self.tombstones,
                            frozenset(stones))

    def recover(self, *, wait: bool = True) -> int:
        """Finish interrupted compactions and publishes, then replay spools of processes that are gone.

        One process recovers at a time (``state/recover.lock``); without ``wait``, return 0 at once
        while another one is recovering.
        """
        if self.read_only:
            return 0
        with self.state.lock("recover.lock", wait=wait) as mine:
            if not mine:
                return 0
            self.lake.recover_swaps()
            finish_commits(self.spool_dir)
            replayed = 0
            for orphan in orphans(self.spool_dir):
                try:
                    # Events of the segment that an erasure made since then covers are not stored.
                    events = self.tombstones.filter_replay(list(orphan.events()),
                                                           written_at=orphan.written_at())
                    if events:
                        written = self.lake.write(events)
                        record = self.spool_dir / f".{orphan.path.name}.recovered.commit"
                        write_commit(record, [orphan.path.name], written)
                        self.lake.publish(written)
                        replayed += len(events)
                    orphan.remove()
                    if events:
                        record.unlink(missing_ok=True)
                except Exception:
                    orphan.release()
                    raise
            # After finish_commits: the temporaries of an interrupted publish are needed there.
            self.lake.remove_stale_temporaries()
        if replayed:
            log.info("recovered %d events from spools of stopped processes", replayed)
        return replayed

    def _writable(self) -> None:
        if self.read_only:
            raise StorageError("This store is read-only (mallard.open); use mallard.Mallard to ingest.")

    # -- read path --------------------------------------------------------------------------------
    def connection(self) -> duckdb.DuckDBPyConnection:
        """This thread's in-memory DuckDB connection."""
        con: duckdb.DuckDBPyConnection | None = getattr(self._local, "con", None)
        if con is None:
            con = duckdb.connect(":memory:", config=self._duck_config)
            con.execute("SET TimeZone = 'UTC'").fetchall()
            # no progress bar on the host's stdout (refused where it is off already: Jupyter)
            with suppress(duckdb.InvalidInputException):
                con.execute("SET enable_progress_bar = false").fetchall()
            con.execute(TEMPLATE_DDL).fetchall()
            self._local.con = con
        return con

    @contextmanager
    def reading(self, site_id: str | None, first: date | None, last: date | None, *,
                pending: Callable[[], tuple[Sequence[Row], int]] | None = None,
                view_lock: threading.RLock | None = None) -> Iterator[Reader]:
        """A consistent :class:`Reader` over partitions dated [first, last] plus pending events.

        The file listing and the pending-event snapshot (with its mark, see
        :meth:`EventBuffer.marked_snapshot <mallard.EventBuffer.marked_snapshot>`) are taken together
        under ``view_lock`` (the buffer's), so an event being published is seen exactly once. Files the
        reading found unreadable are moved to the quarantine once the outermost reading of the thread
        has released the lake lock.
        """
        con = self.connection()
        doomed: list[Bad] | None = getattr(self._local, "doomed", None)
        if doomed is None:
            doomed = self._local.doomed = []
        try:
            with self.lake.locked(exclusive=False):
                yield from self._read(con, site_id, first, last, pending, view_lock)
        finally:
            if doomed and getattr(self._local, "depth", 0) == 0:
                batch, doomed[:] = list(doomed), []
                self.quarantine.move(batch)

    def _read(self, con: duckdb.DuckDBPyConnection, site_id: str | None, first: date | None,
              last: date | None, pending: Callable[[], tuple[Sequence[Row], int]] | None,
              view_lock: threading.RLock | None) -> Iterator[Reader]:
        with view_lock if view_lock is not None else contextlib.nullcontext():
            files = self.lake.files(site_id, first, last)
            held, mark = pending() if pending is not None else ((), None)
        rows = list(held)
        if site_id is not None:
            rows = [e for e in rows if e[SITE_ID] == site_id]
        table = to_table(rows) if rows else None
        # A name per reading, so a reading nested in another (same thread) keeps its own rows.
        self._local.depth = depth = getattr(self._local, "depth", 0) + 1
        view = f"{BUFFER}_{depth}"
        if table is not None:
            con.register(view, table)
        reader = Reader(con, files, table, site_id, view, self.quarantine, mark)
        try:
            yield reader
        finally:
            self._local.depth = depth - 1
            self._local.excluded = self.excluded() + reader.excluded
            self._local.doomed.extend(reader.doomed)
            for name in [*reader.views, *([view] if table is not None else [])]:
                con.unregister(name)

    def excluded(self) -> int:
        """Files this thread's readings have left out so far because they could not be read (an answer
        computed meanwhile is incomplete: the query cache must not keep it)."""
        return int(getattr(self._local, "excluded", 0))

    def quarantined(self) -> tuple[int, list[QuarantinedFile]]:
        """How many files are in ``quarantine/``, and the newest of them."""
        return self.quarantine.listing()

    def ping(self) -> None:
        """Run a trivial query on this thread's DuckDB connection (readiness)."""
        self.connection().execute("SELECT 1").fetchall()

    @property
    def derived(self) -> tuple[DerivedFiles, ...]:  # deleted with their events (erasure, retention)
        return (self.session_files, self.rollup_files, self.attributed_files, self.visit_files)

    def sites(self) -> list[str]:
        return self.lake.sites()

    @contextmanager
    def time_limit(self, seconds: float | None, stated: float | None = None) -> Iterator[None]:
        """Interrupt this thread's queries that run past ``seconds`` (raises QueryTimeoutError, which
        states the limit as ``stated``: by default ``seconds``; what is left of a longer one)."""
        if not seconds:
            yield
            return
        timer = threading.Timer(seconds, self.connection().interrupt)
        timer.daemon = True
        timer.start()
        try:
            yield
        except duckdb.InterruptException:
            raise QueryTimeoutError(f"The query took longer than {stated or seconds:g} s and was stopped. "
                                    "Narrow the date range or the filters, or raise query_timeout_secs."
                                    ) from None
        finally:
            timer.cancel()

    def fingerprint(self, site_id: str, first: date | None, last: date) -> int:
        """A number that changes whenever a file of the site's partitions in [first, last] (first None:
        up to last) is added, merged or deleted, by any process (file names are unique per write)."""
        return hash(tuple(self.lake.files(site_id, first, last)))

    def first_date(self, site_id: str | None) -> date | None:
        sites = [site_id] if site_id is not None else self.lake.sites()
        firsts = [d[0] for s in sites if (d := self.lake.dates(s))]
        return min(firsts) if firsts else None

    # -- maintenance ------------------------------------------------------------------------------
    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Hold ``state/<name>`` exclusively if no other process does: yields whether this one does."""
        with self.state.lock(name, wait=False) as mine:
            yield mine

    def compact(self, *, min_files: int, target_bytes: int, site_id: str | None = None,
                day: date | None = None, progress: Progress = silent) -> int:
        """Merge small files per partition. Returns the number of partitions compacted.

        Only one process compacts at a time (``state/compact.lock``); others return 0 at once. A
        partition with an unreadable file is left as it is (the file goes to the quarantine, unless it
        was modified within the grace period) and compaction goes on. ``progress`` counts partitions.
        """
        self._writable()
        partitions = None if site_id is None or day is None else [self.lake.partition(site_id, day)]
        with self._compact_lock, self.exclusive("compact.lock") as mine:
            if not mine:
                return 0
            candidates = self.lake.compaction_candidates(min_files, target_bytes, partitions)
            step, done = progress("compact", len(candidates), "partitions"), 0
            for sources in candidates:
                done += merge(self.connection(), self.lake, self.quarantine, sources)
                step(1)
            return done

    def apply_retention(self, retention_days: int, today: date) -> int:
        """Delete partitions older than ``retention_days`` (keeps today and the N days before)."""
        self._writable()
        if retention_days <= 0:
            return 0
        cutoff = today - timedelta(days=retention_days + 1)
        self._quarantined.delete_partitions(None, None, cutoff)
        removed = self.lake.delete_partitions(None, None, cutoff)
        for derived in self.derived:  # after: see DerivedFiles.publish
            derived.delete(None, None, cutoff)
        return removed

    def erase(self, site_id: str, first: date, last: date) -> int:
        """Delete every stored event of ``site_id`` dated within [first, last] (whole partitions).

        The erasure is recorded first (a tombstone in ``state/erasures.json``), so that it also holds
        against events on their way to the lake: every process drops the events of the range that it
        buffers at its next flush (see :meth:`write_batch`), and the replay of a dead process's spool
        drops those received before the erasure. Quarantined files of the range are deleted too, and
        so are the stored sessions and rollups derived from it. Returns the number of partitions deleted.
        """
        self._writable()
        self.tombstones.add(site_id, first, last)
        self._quarantined.delete_partitions(site_id, first, last)
        removed = self.lake.delete_partitions(site_id, first, last)
        for derived in self.derived:  # after: see DerivedFiles.publish
            derived.delete(site_id, first, last)
        return removed

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
