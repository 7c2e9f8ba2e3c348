"""A lake on S3-compatible object storage that several hosts write: ``Mallard(lake_url="s3://…")``.

Each host keeps what is its own in its local ``data_dir``, with every guarantee of a local one: the
spool (an acknowledged event survives kill -9; :mod:`mallard._store.spool`), the locks of ``state/``
(the state all hosts share is in the bucket: :mod:`mallard._sharedstate`) and the derived relations
(``sessions/``, ``rollups/``, ``attributed/``, ``visits/``), which this host builds from the shared
events as a cache (their fingerprints hash the shared event files' names, so a file built from files
that are no longer live is never served; erasures delete them, see :meth:`SharedStore.recover`).
The events are in the bucket, and which of them are live is the commit log's business
(:mod:`mallard._store.objectlog`, read through :class:`~mallard._store.loglake.LogLake`):

* a flush uploads its Parquet objects and commits them in one commit (:mod:`mallard._store.objectbatch`);
  the spool segments are released after the commit only;
* when the store cannot be written, the batch is deferred: its segments wait in the spool (at most
  ``s3_spool_max_bytes``, then events are refused as on a full disk), reported by :meth:`warnings` and
  :meth:`waiting_bytes`, and recovery publishes them in order once the store answers (tried every few
  seconds by :meth:`retry_spool`);
* compaction adds the merged file and removes its sources in one commit, and gives up on a conflict;
  retention removes old partitions by a commit; an erasure removes partitions and records its tombstone
  in one commit, which every host's later flushes and replays honour;
* :meth:`vacuum` deletes what no snapshot of the last :data:`VACUUM_GRACE_SECS` holds.

No local lock guards the shared files: a host's locks guard only its own data_dir.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final

import duckdb

from .._errors import StorageError
from .._events import Row
from .._progress import Progress, silent
from . import Store
from .compaction import merge_sql
from .lake import site_dir_name
from .loglake import LogLake, LogTombstones, partition_of
from .objectbatch import ObjectBatch, Stone, commit, upload
from .objectclient import storage_error
from .objectfs import LakeFileSystem, ObjectCache
from .objectlog import Commit, Conflict, Entry, ObjectLog
from .objectlog import Tombstone as Erasure
from .objectstore import ObjectStore
from .quarantine import Quarantine, filesystem_failure, is_file_error
from .recovery import finish_commits, orphans
from .s3 import SCHEME, Bucket
from .spool import lock_segment, write_commit
from .tombstones import Tombstone

if TYPE_CHECKING:
    from .._settings import Settings

__all__ = ["VACUUM_GRACE_SECS", "SharedStore"]

log = logging.getLogger("mallard.store")

#: Seconds a file removed from the log (or uploaded and never committed) is kept before the vacuum
#: deletes it: queries that started on an older snapshot finish first, and a writer between its upload
#: and its commit is not robbed.
VACUUM_GRACE_SECS: Final = 600.0
#: Seconds between two vacuums of one process (each LISTs every object under events/).
VACUUM_EVERY: Final = 600.0
#: Tries of a retention or an erasure whose files another host removed meanwhile.
_TRIES: Final = 20


class SharedStore(ObjectStore):
    """The Store of a host writing the shared lake at ``bucket`` (see the module's docstring)."""

    def __init__(self, settings: Settings, bucket: Bucket, client: Any) -> None:
        Store.__init__(self, settings.data_dir, spool_fsync=settings.spool_fsync,
                       duckdb_threads=settings.duckdb_threads,
                       duckdb_memory_limit=settings.duckdb_memory_limit,
                       quarantine_grace_secs=settings.quarantine_grace_secs)
        self.bucket = bucket
        self._client = client
        self.log = ObjectLog(client, bucket.bucket, bucket.prefix,
                             writer=f"{socket.gethostname()}-{os.getpid()}")
        #: The events, as the log says they are (``lake`` too, typed as the Store's).
        self.shared = LogLake(bucket, self.log, self.state_dir / "lake.lock", adopt=True)
        self.lake = self.shared
        self._relations = {"events": self.shared}
        # Objects cannot be moved aside: an unreadable one is left out of answers, never moved.
        self.quarantine = Quarantine(self.shared, self.data_dir / "quarantine", grace_secs=0, movable=False)
        for derived in self.derived:
            derived.events = self.shared  # still local files (this host's cache), built from shared events
        self.tombstones = LogTombstones(self.shared, self.state)
        self.duckdb_filesystem = LakeFileSystem(bucket.fs, self._known, ObjectCache(),
                                                skip_instance_cache=True)
        self._max_spool = settings.s3_spool_max_bytes
        self._opened = time.time()  # erasures before this cover no event this process buffers
        self._backlog = False  # deferred batches wait in the spool: later ones wait behind them
        self._outage: str | None = None
        self._waiting = 0
        self._erased_here: set[Tombstone] = set()
        self._vacuumed = time.monotonic()  # the first vacuum waits a period: a start is busy enough

    # -- the write path ------------------------------------------------------------------------------
    def write_batch(self, events: Sequence[Row], *,
                    applied: set[Tombstone] | None = None) -> ObjectBatch:
        """Upload events as Parquet objects (not live yet); return the callable that commits them (see
        :class:`~mallard._store.objectbatch.ObjectBatch`). ``applied`` as for a local lake."""
        self._writable()
        stones = self.tombstones.all()
        if applied is not None:
            applied.update(t for t in stones if t.at < self._opened)
            fresh = [t for t in stones if t not in applied]
            if fresh:
                events = [e for e in events if not any(t.covers(e) for t in fresh)]
                applied.update(fresh)
        known = {_stone(t) for t in stones}
        entries: list[Entry] = []
        failed: Exception | None = None
        if not self._backlog or self._spool is None:
            try:
                entries = upload(self._client, self.shared, events)
            except Exception as exc:
                failed = exc
        if self._spool is None and failed is not None:  # no spool to wait in (an import): fail
            raise storage_error(self.bucket.url, "write to", failed, self.bucket.endpoint)
        return ObjectBatch(self.shared, self._spool, known, entries, failed, self)

    def must_wait(self, failure: Exception | str | None) -> bool:
        """Whether a batch must wait in the spool: ``failure`` (why it could not be published), else
        whether batches deferred earlier still wait."""
        if failure is None:
            return self._backlog
        message = failure if isinstance(failure, str) else storage_error(
            self.bucket.url, "write to", failure, self.bucket.endpoint).message
        if self._outage is None:
            log.warning("the lake on object storage cannot be written; events wait in the spool and are "
                        "published when it answers: %s", message)
        self._outage = message
        self._backlog = True
        return True

    def recover(self, *, wait: bool = True) -> int:
        """Settle commit records, replay the spools of gone processes and the deferred batches, in
        order, into the log; delete this host's derived files of erasures made since. Raises
        StorageError (nothing lost: retried) while the store cannot be written."""
        if self.read_only:
            return 0
        with self.state.lock("recover.lock", wait=wait) as mine:
            if not mine:
                return 0
            try:
                replayed = self._replay()
            except Exception as exc:
                self.must_wait(exc)
                self._count_waiting()
                raise storage_error(self.bucket.url, "replay the spool into", exc,
                                    self.bucket.endpoint) from None
            if self._outage is not None:
                log.info("the lake on object storage is written again")
            self._outage = None
            self._count_waiting()
            self._backlog = self._waiting > 0  # deferred meanwhile: the next pass publishes them
        self._apply_erasures()
        if replayed:
            log.info("published %d events from the spool", replayed)
        return replayed

    def _replay(self) -> int:
        finish_commits(self.spool_dir, self._published)
        replayed = 0
        for orphan in orphans(self.spool_dir):
            try:
                stones = self.tombstones.all()
                events = self.tombstones.filter_replay(list(orphan.events()), orphan.written_at(), stones)
                record = self.spool_dir / f".{orphan.path.name}.recovered.commit"
                if events:
                    entries = upload(self._client, self.shared, events)
                    # Before the commit: if its answer is lost, the next recovery asks the log.
                    write_commit(record, [orphan.path.name], [], keys=[e.path for e in entries])
                    commit(self.shared, entries, {_stone(t) for t in stones})
                    replayed += len(events)
                orphan.remove()
                record.unlink(missing_ok=True)
            except Exception:
                orphan.release()
                raise
        return replayed

    def _published(self, keys: Sequence[str]) -> bool:
        snap = self.shared.snapshot(fresh=True)
        return any(k in snap.files or k in snap.removed for k in keys)

    def retry_spool(self) -> None:
        """Every few seconds (the maintenance thread): recount what waits in the spool, and while
        batches wait, try to publish them."""
        super().retry_spool()
        if self._backlog and not self.read_only:
            with suppress(OSError):  # kept in warnings(); tried again next time
                self.recover(wait=False)
        else:
            self._count_waiting()

    def _count_waiting(self) -> None:
        """Count the bytes of segments nobody holds (deferred, or a gone process's) and refuse new
        events while they exceed ``s3_spool_max_bytes``."""
        total = 0
        try:
            entries = [e for e in os.scandir(self.spool_dir) if not e.name.startswith(".") and e.is_file()]
        except FileNotFoundError:
            entries = []
        for entry in entries:
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                if lock_segment(fd):
                    total += os.fstat(fd).st_size
            finally:
                os.close(fd)  # releases the probe's lock
        self._waiting = total
        spool = self._spool
        if spool is not None:
            spool.refusing = None if total < self._max_spool else (
                f"the spool holds {total >> 20} MiB of events waiting for {self.bucket.url} "
                f"(s3_spool_max_bytes is {self._max_spool >> 20} MiB)")

    @property
    def spool_error(self) -> str | None:
        spool = self._spool
        if spool is not None and spool.refusing is not None:
            return spool.refusing
        return super().spool_error

    def warnings(self) -> list[str]:
        if self._outage is None:
            return []
        return [f"the lake on object storage cannot be written; {self._waiting} bytes of events wait in "
                f"the spool and are published when it answers: {self._outage}"]

    def waiting_bytes(self) -> int:
        return self._waiting

    # -- compaction, retention, erasure, vacuum -----------------------------------------------------
    def compact(self, *, min_files: int, target_bytes: int, site_id: str | None = None,
                day: date | None = None, progress: Progress = silent) -> int:
        """Merge each partition's small files into one object, committed in place of its sources; a
        partition whose sources another host removed meanwhile is given up. Any host, no lock."""
        self._writable()
        with self._compact_lock:
            groups: dict[tuple[str, date], list[Entry]] = {}
            for entry in self.shared.snapshot(fresh=True).files.values():
                part = partition_of(entry.path)
                if part is not None and entry.bytes < target_bytes and (
                        site_id is None or day is None or part == (site_id, day)):
                    groups.setdefault(part, []).append(entry)
            candidates = [(part, sorted(g, key=lambda e: e.path)) for part, g in sorted(groups.items())
                          if len(g) >= max(2, min_files)]
            step, done = progress("compact", len(candidates), "partitions"), 0
            for part, sources in candidates:
                done += self._merge(part, sources)
                step(1)
            return done

    def _merge(self, part: tuple[str, date], sources: list[Entry]) -> bool:
        paths = [SCHEME + self.bucket.key(e.path) for e in sources]
        tmp = self.data_dir / f".merge-{os.getpid()}-{threading.get_ident()}.parquet.tmp"
        con = self.connection()
        try:
            with self.shared.locked(exclusive=False):
                rows = con.execute(merge_sql(str(tmp)), [paths]).fetchall()[0][0]
            body = tmp.read_bytes()
        except duckdb.Error as exc:
            bad = self.quarantine.diagnose(con, paths, exc) if is_file_error(exc) else []
            if not bad:
                raise StorageError(f"Compaction of {part[0]} {part[1]} in {self.bucket.url} failed: "
                                   f"{filesystem_failure(exc) or exc}") from None
            log.warning("compaction skipped %s %s: %d unreadable file(s)", part[0], part[1], len(bad))
            return False
        finally:
            tmp.unlink(missing_ok=True)
        relative = f"events/{site_dir_name(part[0])}/date={part[1].isoformat()}/{self.shared._segment_name()}"
        try:
            self._client.put_object(Bucket=self.bucket.bucket, Key=self.log.key(relative),
                                    Body=io.BytesIO(body))
            self.shared.commit(add=[Entry(relative, int(rows), len(body))], remove=[e.path for e in sources])
        except Conflict:
            log.info("compaction of %s %s gave up: another host changed its files first", *part)
            return False
        except Exception as exc:
            raise storage_error(self.bucket.url, "compact", exc, self.bucket.endpoint) from None
        return True

    def apply_retention(self, retention_days: int, today: date) -> int:
        """Remove partitions older than ``retention_days`` by a commit (and this host's derived files
        of them)."""
        self._writable()
        if retention_days <= 0:
            return 0
        cutoff = today - timedelta(days=retention_days + 1)
        removed = self._remove(lambda site, day: day <= cutoff)
        for derived in self.derived:
            derived.delete(None, None, cutoff)
        return removed

    def erase(self, site_id: str, first: date, last: date) -> int:
        """Remove every partition of ``site_id`` dated within [first, last] and record the erasure's
        tombstone, in one commit: every host's later flushes and spool replays drop the events of the
        range they received before it. Returns the number of partitions removed."""
        self._writable()
        removed = self._remove(lambda site, day: site == site_id and first <= day <= last,
                               erase=Erasure(site_id, first, last, time.time()))
        self._apply_erasures()
        return removed

    def _remove(self, doomed: Callable[[str, date], bool], erase: Erasure | None = None) -> int:
        def wanted(paths: Iterable[str]) -> set[str]:
            return {p for p in paths if (part := partition_of(p)) is not None and doomed(*part)}

        def check(missed: list[Commit]) -> None:  # under the log's lock, on the snapshot it commits on
            if wanted(self.log.live()) - files:
                raise Conflict("files of the partitions were added meanwhile")  # by a flush: again

        for _ in range(_TRIES):
            files = wanted(self.shared.snapshot(fresh=True).files)
            if not files and erase is None:
                return 0
            try:
                self.shared.commit(remove=sorted(files), erase=[erase] if erase is not None else [],
                                   check=check)
            except Conflict:
                continue  # a flush, a compaction or another erasure got there first: look again
            except Exception as exc:
                raise storage_error(self.bucket.url, "remove partitions of", exc,
                                    self.bucket.endpoint) from None
            return len({partition_of(f) for f in files})
        raise StorageError(f"Cannot remove partitions of {self.bucket.url}: other hosts changed them "
                           f"{_TRIES} times in a row; try again.")

    def _apply_erasures(self) -> None:
        """Delete this host's derived files of erased events (they are never served, being stale, but
        erased data must not stay on disk)."""
        for stone in self.tombstones.all():
            if stone in self._erased_here:
                continue
            for derived in self.derived:
                derived.delete(stone.site_id, stone.start, stone.end)
            self._erased_here.add(stone)

    def vacuum(self, *, force: bool = False) -> int:
        """Delete the objects under ``events/`` that no snapshot of the last
        :data:`VACUUM_GRACE_SECS` holds, at most every :data:`VACUUM_EVERY` (``force``: now).
        Returns how many."""
        if self.read_only or (not force and time.monotonic() - self._vacuumed < VACUUM_EVERY):
            return 0
        self._vacuumed = time.monotonic()
        try:
            gone = self.log.vacuum("events/", VACUUM_GRACE_SECS)
        except Exception as exc:
            raise storage_error(self.bucket.url, "vacuum", exc, self.bucket.endpoint) from None
        if gone:
            log.info("vacuum deleted %d objects no snapshot holds any more", len(gone))
        return len(gone)


def _stone(t: Tombstone) -> Stone:
    return (t.site_id, t.start, t.end, t.at)
