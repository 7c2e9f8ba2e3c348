"""The Parquet lake: ``events/site_id=<site>/date=<YYYY-MM-DD>/<segment>.parquet``, ZSTD, immutable files.

Writers never modify a file: a segment is written under a hidden temporary name and renamed into place.
Compaction merges a partition's small files into one and swaps it in under the exclusive lake lock,
which readers hold shared while they list and read files, so a reader never counts a row twice or misses
one. Retention and erasure delete whole partitions under the same lock.
"""

from __future__ import annotations

import bisect

# TRICKY: pyarrow imports pandas on its first conversion, and pandas imports concurrent.futures.thread,
# which registers an exit hook; during interpreter shutdown (the final flush at exit) that raises "can't
# register atexit after shutdown". Importing it now makes the later import a no-op.
import concurrent.futures.thread  # noqa: F401
import fcntl
import logging
import operator
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .._errors import StorageError
from .._events import COLUMNS, SCHEMA_VERSION, SITE_ID, TIMESTAMP, Row

log = logging.getLogger("mallard.store")

_ARROW_TYPES: Final = {
    "VARCHAR": pa.string(),
    "TIMESTAMP": pa.timestamp("us"),
    "DECIMAL(12,2)": pa.decimal128(12, 2),
    "SMALLINT": pa.int16(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
}
SCHEMA: Final = pa.schema(
    [pa.field(c.name, _ARROW_TYPES[c.sql_type], nullable=c.nullable) for c in COLUMNS],
    metadata={b"mallard.schema_version": str(SCHEMA_VERSION).encode()},
)
_HOST: Final = socket.gethostname()
_TIMESTAMP: Final = operator.itemgetter(TIMESTAMP)
_DAY: Final = timedelta(days=1)
_MIDNIGHT: Final = datetime.min.time()
_CHUNK: Final = 4096
_EARLIEST_KEPT: Final = 65536  # files whose earliest event Lake.earliest remembers


def to_table(events: Sequence[Row]) -> pa.Table:
    """Events as an Arrow table with the lake schema.

    Converted in chunks: each conversion is one C call that holds the GIL, and the flusher shares it
    with ``track()`` callers, which must not wait for a whole batch (tens of milliseconds).
    """
    if len(events) <= _CHUNK:
        return _to_table(events)
    return pa.concat_tables(_to_table(events[i:i + _CHUNK]) for i in range(0, len(events), _CHUNK))


def _to_table(events: Sequence[Row]) -> pa.Table:
    columns = list(zip(*events, strict=True)) if events else [()] * len(SCHEMA)
    return pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, SCHEMA, strict=True)],
        schema=SCHEMA,
    )


def partitions(events: Sequence[Row]) -> Iterator[tuple[tuple[str, date], Sequence[Row]]]:
    """The events of each (site, UTC date), sorted by timestamp.

    By site, then sorted, then cut at midnights: no object is created per event (the flusher shares the
    core, and the garbage collector, with ``track()``).
    """
    by_site: dict[str, list[Row]] = {}
    for event in events:
        site = event[SITE_ID]
        rows = by_site.get(site)
        if rows is None:
            by_site[site] = rows = []
        rows.append(event)
    for site, rows in by_site.items():
        rows.sort(key=_TIMESTAMP)
        start = 0
        while start < len(rows):
            day = rows[start][TIMESTAMP].date()
            end = bisect.bisect_left(rows, datetime.combine(day + _DAY, _MIDNIGHT), start,
                                     key=_TIMESTAMP)
            yield (site, day), rows[start:end]
            start = end


def site_dir_name(site_id: str) -> str:
    # Hive escaping of ':' keeps the layout readable by Hadoop-based engines.
    return "site_id=" + site_id.replace(":", "%3A")


def site_of(dir_name: str) -> str:
    return dir_name.removeprefix("site_id=").replace("%3A", ":")


def _names(directory: str | Path) -> list[tuple[str, str]]:
    """(name, path) of every file in ``directory`` (none when it is missing), by name."""
    try:
        return sorted((e.name, e.path) for e in os.scandir(directory) if e.is_file())
    except FileNotFoundError:
        return []


def _is_data(name: str) -> bool:
    """Whether a partition's file named ``name`` holds rows (not a hidden temporary)."""
    return name.endswith(".parquet") and not name.startswith(".")


class Lake:
    """File-level operations on ``events/``; knows paths, not SQL."""

    #: pyarrow's filesystem of the files (None: the local one), given paths through :meth:`key`.
    filesystem: pafs.FileSystem | None = None

    def __init__(self, root: Path, lock_path: Path) -> None:
        self.root = root
        self._lock_path = lock_path
        self._gate_path = lock_path.with_name(lock_path.name + ".gate")
        self._local = threading.local()
        self._seq = 0
        self._earliest: dict[str, datetime | None] = {}
        self._earliest_lock = threading.Lock()

    # -- locking ----------------------------------------------------------------------------------
    @contextmanager
    def locked(self, *, exclusive: bool) -> Iterator[None]:
        """Hold the lake lock shared (readers) or exclusive (swaps and deletions).

        flock has no writer preference: a steady stream of overlapping readers would starve a
        compactor (or an erasure) forever. So every locker first passes a turnstile (``<lock>.gate``,
        exclusive): a writer keeps it while it waits for and holds the lake lock, which queues new
        readers behind it; a reader lets go of it as soon as it holds the lake lock shared. A thread
        that already reads skips the turnstile, so nested readers cannot deadlock with a waiting writer.
        """
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        depth: int = getattr(self._local, "readers", 0)
        nested = not exclusive and depth > 0
        gate = -1 if nested else os.open(self._gate_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fd = -1
        try:
            if gate >= 0:
                fcntl.flock(gate, fcntl.LOCK_EX)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            if gate >= 0 and not exclusive:
                os.close(gate)
                gate = -1
            if not exclusive:
                self._local.readers = depth + 1
            try:
                yield
            finally:
                if not exclusive:
                    self._local.readers = depth
        finally:
            if fd >= 0:
                os.close(fd)  # closing releases the lock
            if gate >= 0:
                os.close(gate)

    # -- writing ----------------------------------------------------------------------------------
    def _segment_name(self) -> str:
        self._seq += 1
        return f"{time.time_ns() // 1000:016d}-{_HOST}-{os.getpid()}-{self._seq}-" \
               f"{secrets.token_hex(3)}.parquet"

    def partition(self, site_id: str, day: date) -> Path:
        return self.root / site_dir_name(site_id) / f"date={day.isoformat()}"

    def write(self, events: Sequence[Row]) -> list[tuple[Path, Path]]:
        """Write events as one hidden file per (site, date); return (temporary, final) paths."""
        written: list[tuple[Path, Path]] = []
        try:
            for (site, day), rows in partitions(events):
                directory = self.partition(site, day)
                directory.mkdir(parents=True, exist_ok=True)
                final = directory / self._segment_name()
                tmp = directory / f".{final.name}.tmp"
                pq.write_table(to_table(rows), tmp, compression="zstd")
                written.append((tmp, final))
        except OSError as exc:
            for tmp, _ in written:
                tmp.unlink(missing_ok=True)
            raise StorageError(f"Cannot write Parquet under {self.root}: {exc}") from exc
        return written

    @staticmethod
    def publish(written: Sequence[tuple[Path, Path]]) -> None:
        for tmp, final in written:
            try:
                os.rename(tmp, final)
            except FileNotFoundError:
                # The partition was erased (or expired) meanwhile, with our temporary in it. Failing
                # here would make the buffer retry the whole batch and store the files already
                # renamed twice; the events of a deleted partition are deleted events.
                log.warning("partition %s was deleted while a batch was being stored", tmp.parent)

    # -- reading ----------------------------------------------------------------------------------
    def sites(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(site_of(e.name) for e in os.scandir(self.root)
                      if e.is_dir() and e.name.startswith("site_id="))

    def dates(self, site_id: str) -> list[date]:
        site_dir = self.root / site_dir_name(site_id)
        out = []
        if site_dir.is_dir():
            for entry in os.scandir(site_dir):
                if entry.is_dir() and entry.name.startswith("date="):
                    try:
                        out.append(date.fromisoformat(entry.name[5:]))
                    except ValueError:
                        continue
        return sorted(out)

    def files(self, site_id: str | None, first: date | None, last: date | None) -> list[str]:
        """Parquet files of a site (or all sites) whose partition date is within [first, last]."""
        return [path for site in ([site_id] if site_id is not None else self.sites())
                for paths in self.files_by_day(site, first, last).values() for path in paths]

    def files_by_day(self, site_id: str, first: date | None, last: date | None) -> dict[date, list[str]]:
        """The Parquet files of each of ``site_id``'s partition dates within [first, last]."""
        return {day: [path for name, path in self.names(site_id, day) if _is_data(name)]
                for day in self.dates(site_id)
                if (first is None or day >= first) and (last is None or day <= last)}

    def names(self, site_id: str, day: date) -> list[tuple[str, str]]:
        """(name, path) of every file of a partition (hidden ones too), by name."""
        return _names(os.path.join(self.root, site_dir_name(site_id), f"date={day.isoformat()}"))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)  # whether the file is in the lake now

    def mtime(self, path: str) -> float:
        """When the file ``path`` was last modified (seconds since the epoch)."""
        return os.path.getmtime(path)

    def key(self, path: str) -> str:
        """``path`` as :attr:`filesystem` names it."""
        return path

    def metadata(self, path: str) -> pq.FileMetaData:
        """The Parquet footer of the file ``path``."""
        return pq.read_metadata(self.key(path), filesystem=self.filesystem)

    def read_table(self, path: str, columns: Sequence[str] | None = None) -> pa.Table:
        """The rows of the Parquet file ``path`` (``columns`` only, when given)."""
        return pq.read_table(self.key(path), columns=columns, filesystem=self.filesystem)

    def probe(self, path: str) -> None:
        """Read the first byte of the file ``path``: raises OSError when it cannot be read at all."""
        if self.filesystem is None:
            with open(path, "rb") as f:
                f.read(1)
        else:
            with self.filesystem.open_input_file(self.key(path)) as stream:
                stream.read(1)

    def earliest(self, path: str) -> datetime | None:
        """The time (naive UTC) of the earliest event in the lake file ``path`` (None: no rows), from
        its footer's statistics (the column itself when a writer left them out; ``datetime.min`` when
        the time cannot be read). Remembered: files never change."""
        with self._earliest_lock:
            if path in self._earliest:
                return self._earliest[path]
        try:
            meta = self.metadata(path)
        except FileNotFoundError:
            raise
        except (OSError, pa.ArrowException):  # damaged: the reader that reads it quarantines it
            return datetime.min
        names = meta.schema.names
        column = names.index("timestamp") if "timestamp" in names else -1
        found: datetime | None = None
        stats = [meta.row_group(i).column(column).statistics for i in range(meta.num_row_groups)
                 if column >= 0 and meta.row_group(i).num_rows]
        if stats and all(s is not None and s.has_min_max for s in stats):
            found = min(s.min for s in stats)
        elif stats:  # no statistics: read the column
            found = pc.min(self.read_table(path, columns=["timestamp"]).column("timestamp")).as_py()
        if isinstance(found, datetime) and found.tzinfo is not None:
            found = found.astimezone(UTC).replace(tzinfo=None)
        elif stats and not isinstance(found, datetime):
            found = datetime.min  # rows, but no readable time: counts as the earliest possible
        with self._earliest_lock:
            if len(self._earliest) >= _EARLIEST_KEPT:
                self._earliest.clear()
            self._earliest[path] = found
        return found

    # -- compaction -------------------------------------------------------------------------------
    def compaction_candidates(self, min_files: int, target_bytes: int,
                              partitions: Sequence[Path] | None = None) -> list[list[str]]:
        """Per partition, the small files to merge when there are at least ``min_files``."""
        if partitions is None:
            partitions = [self.partition(s, d) for s in self.sites() for d in self.dates(s)]
        out = []
        for directory in partitions:
            small = [f for name, f in _names(directory)
                     if _is_data(name) and os.path.getsize(f) < target_bytes]
            if len(small) >= max(2, min_files):
                out.append(small)
        return out

    def journal_path(self) -> Path:
        return self._lock_path.parent / "compaction"

    def swap(self, merged_tmp: Path, sources: Sequence[str]) -> Path:
        """Replace ``sources`` by the merged file, crash-safely (see :meth:`recover_swaps`)."""
        final = merged_tmp.parent / self._segment_name()
        intent = self.journal_path() / f"{final.name}.json"
        intent.parent.mkdir(parents=True, exist_ok=True)
        intent.write_bytes(orjson.dumps({"tmp": str(merged_tmp), "final": str(final),
                                         "sources": list(sources)}))
        with self.locked(exclusive=True):
            self._finish_swap(merged_tmp, final, sources)
        intent.unlink(missing_ok=True)
        return final

    @staticmethod
    def _finish_swap(tmp: Path, final: Path, sources: Sequence[str]) -> None:
        if tmp.exists():
            for src in sources:
                Path(src).unlink(missing_ok=True)
            os.rename(tmp, final)
        elif final.exists():
            for src in sources:
                Path(src).unlink(missing_ok=True)

    def recover_swaps(self) -> int:
        """Complete swaps interrupted by a crash (their intent files are left in state/)."""
        directory = self.journal_path()
        if not directory.is_dir():
            return 0
        done = 0
        for intent in directory.glob("*.json"):
            try:
                spec = orjson.loads(intent.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                intent.unlink(missing_ok=True)
                continue
            with self.locked(exclusive=True):
                self._finish_swap(Path(spec["tmp"]), Path(spec["final"]), spec["sources"])
            intent.unlink(missing_ok=True)
            done += 1
        return done

    def remove_stale_temporaries(self, older_than: float = 3600.0) -> int:
        """Delete hidden ``.tmp`` files left by writers that died (older than ``older_than`` s)."""
        removed = 0
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - older_than
        for path in self.root.glob("site_id=*/date=*/.*.tmp"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    # -- deletion ---------------------------------------------------------------------------------
    def delete_partitions(self, site_id: str | None, first: date | None, last: date) -> int:
        """Delete whole partitions of ``site_id`` (or every site) dated within [first, last]."""
        removed = 0
        with self.locked(exclusive=True):
            for site in ([site_id] if site_id is not None else self.sites()):
                for day in self.dates(site):
                    if day > last or (first is not None and day < first):
                        continue
                    directory = self.partition(site, day)
                    for f in directory.iterdir():
                        f.unlink(missing_ok=True)
                    directory.rmdir()
                    removed += 1
                site_dir = self.root / site_dir_name(site)
                if site_dir.is_dir() and not any(site_dir.iterdir()):
                    site_dir.rmdir()
        return removed

