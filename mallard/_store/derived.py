"""Relations derived from the events, stored beside them: ``<root>/site_id=<site>/date=<day>/<name>.parquet``.

Two relations use this layout (docs/storage.md): ``sessions/`` (one row per session, in the partition of
the UTC day it starts on; :mod:`mallard._queries.sessions`) and ``rollups/`` (per-day totals of the event
metrics; :mod:`mallard._queries.rollups`). A partition's file is derived from the event files of a window of
days, and its name records which: ``<fingerprint>.<first day>.<last day>.parquet``, where the fingerprint
hashes the names of the event files of the days ``[first, last]`` at build time (and a number the
derivation depends on: the session window for sessions, the format version for rollups; and
:data:`READS`, which rows of the files derivations read). Event file names
are unique per write, so any change to those days (a flush, a late event, a compaction, an erasure,
retention) gives another fingerprint: a reader recomputes it from the current listing and serves the file
only when the two agree (:mod:`mallard._queries.stored`). This module knows paths and names; what a row
means, and when a partition is built, belong to the queries.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from .._errors import StorageError
from .lake import Lake

__all__ = ["DerivedFiles", "DerivedPartition", "fingerprint"]

_DAY: Final = timedelta(days=1)
#: Which rows of the event files every derivation reads, hashed into every fingerprint: a change makes
#: every stored partition stale (rebuilt by maintenance). 2: Plausible's engagement reports left out.
READS: Final = 2
_NAME: Final = re.compile(r"^([0-9a-f]{32})\.(\d{4}-\d{2}-\d{2})\.(\d{4}-\d{2}-\d{2})"
                          r"(?:\.(\d{8}T\d{6})\.(\d{8}T\d{6}))?\.parquet$")
_INSTANT: Final = "%Y%m%dT%H%M%S"


def _encoding(table: pa.Table, delta: tuple[str, ...]) -> dict[str, Any]:
    """Delta-encode the ``delta`` columns (sorted times, durations, sorted keys: a third fewer bytes),
    dictionary-encode the others."""
    present = [c for c in delta if c.split(".")[0] in table.column_names]
    plain = {c.split(".")[0] for c in present}
    return {"use_dictionary": [c for c in table.column_names if c not in plain],
            "column_encoding": dict.fromkeys(present, "DELTA_BINARY_PACKED")}


def fingerprint(event_files: Iterable[str], version: int | str) -> str:
    """A stable hash (32 hex digits) of event file names (each with its partition directory) and of
    ``version``, what the derivation depends on besides them (for sessions, their window in seconds
    and their format; for rollups, their format)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"reads={READS}\0gap={version}\0".encode())
    for name in sorted(_relative(f) for f in event_files):
        h.update(name.encode())
        h.update(b"\0")
    return h.hexdigest()


def _relative(path: str) -> str:
    directory, name = os.path.split(path)
    return f"{os.path.basename(directory)}/{name}"


@dataclass(frozen=True, slots=True)
class DerivedPartition:
    """One built partition: the sessions starting on ``day``, derived from the events of the days
    ``[first, last]`` whose file names hashed to ``fingerprint``.

    A *provisional* partition (of a day not settled yet, :mod:`mallard._queries.provisional`) has a
    ``horizon``: it was derived from the events before that instant only (its fingerprint hashes the
    files holding such events), and ``since`` bounds what a reader must compute to complete it."""

    site_id: str
    day: date
    path: str
    fingerprint: str
    first: date
    last: date
    horizon: datetime | None = None
    since: datetime | None = None


class DerivedFiles:
    """File-level operations on one derived relation's root: listing, atomic publishing, deletion."""

    def __init__(self, root: Path, lock_path: Path, *, delta: tuple[str, ...] = (),
                 lake: Lake | None = None, events: Lake | None = None) -> None:
        self.root = root
        self._delta = delta  # columns (dotted paths) written with DELTA_BINARY_PACKED
        #: The partition layout, listing and deletion under the lake lock are the lake's (``lake``:
        #: another than the local files under ``root``, such as object storage's).
        self.lake = lake or Lake(root, lock_path)
        #: The events' lake, when its files are not local ones (a shared lake's on object storage):
        #: it says whether the event files a build read are still live.
        self.events = events

    def listing(self, site_id: str) -> dict[date, DerivedPartition]:
        """The built partitions of ``site_id`` by start day (the newest file of each)."""
        out: dict[date, DerivedPartition] = {}
        for day in self.lake.dates(site_id):
            for name, path in self.lake.names(site_id, day):
                m = _NAME.match(name)
                if m is None:
                    continue
                horizon, since = (None, None) if m.group(4) is None else (
                    datetime.strptime(m.group(4), _INSTANT), datetime.strptime(m.group(5), _INSTANT))
                part = DerivedPartition(site_id, day, path, m.group(1),
                                        date.fromisoformat(m.group(2)), date.fromisoformat(m.group(3)),
                                        horizon, since)
                if day not in out or self.lake.mtime(part.path) >= self.lake.mtime(out[day].path):
                    out[day] = part
        return out

    def publish(self, site_id: str, day: date, table: pa.Table, event_files: Iterable[str],
                first: date, last: date, version: int | str, *,
                horizon: tuple[datetime, datetime] | None = None) -> DerivedPartition | None:
        """Write the rows of ``day`` derived from ``event_files`` (the files of days ``[first, last]``)
        with ``version`` (see :func:`fingerprint`), then delete the partition's older files.
        ``horizon``: a provisional partition's (horizon, since), recorded in its name.

        Returns None, writing nothing, when one of ``event_files`` is gone (merged, expired, erased):
        the rows are stale, and if an erasure removed their events they must not reach the disk. The
        check and the rename are made under the exclusive lake lock, and erasure and retention delete
        events before sessions, so a file published just before an erasure is deleted by it.
        """
        sources = list(event_files)
        directory = self.lake.partition(site_id, day)
        fp = fingerprint(sources, version)
        instants = "" if horizon is None else "".join(f".{t.strftime(_INSTANT)}" for t in horizon)
        name = f"{fp}.{first.isoformat()}.{last.isoformat()}{instants}.parquet"
        tmp = directory / f".{name}.{os.getpid()}.tmp"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, tmp, compression="zstd", **_encoding(table, self._delta))
            with self.lake.locked(exclusive=True):
                exists = self.events.exists if self.events is not None else os.path.exists
                if not all(exists(f) for f in sources):
                    tmp.unlink()
                    return None
                os.replace(tmp, directory / name)
                for entry in os.scandir(directory):  # readers list and read under the shared lock
                    if entry.name != name and not entry.name.startswith(".") and entry.is_file():
                        os.unlink(entry.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"Cannot write derived rows under {directory}: {exc}") from exc
        return DerivedPartition(site_id, day, str(directory / name), fp, first, last,
                                *(horizon or (None, None)))

    def delete(self, site_id: str | None, first: date | None, last: date) -> int:
        """Delete the partitions of ``site_id`` (or every site) derived from events dated within
        ``[first, last]`` (``first`` None: unbounded): their window of days meets the range."""
        removed = 0
        for site in [site_id] if site_id is not None else self.lake.sites():
            built = self.listing(site)
            for day in self.lake.dates(site):
                part = built.get(day)
                lo, hi = (part.first, part.last) if part else (day - _DAY, day + _DAY)
                if lo <= last and (first is None or hi >= first):
                    removed += self.lake.delete_partitions(site, day, day)
        return removed
