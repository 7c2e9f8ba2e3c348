"""Quarantine of corrupt lake files: ``data_dir/quarantine/<path under events/>``.

Nothing here runs on the happy path. When DuckDB fails to read a query's files, :meth:`Quarantine.diagnose`
finds which of them are bad (the Parquet footers first, with pyarrow; if every footer reads, a full decode
of each file through DuckDB), the query is retried without them, and after the query (outside the shared
lake lock) :meth:`Quarantine.move` renames them into ``quarantine/`` under the exclusive lake lock. A
``<name>.parquet.json`` beside each moved file records why and when. Several processes may find the same
file: the first moves it, the others find it gone and do nothing.

A file modified less than ``grace_secs`` ago is never moved (another tool may still be writing it in
place): queries skip it until it is complete or old enough. Errors that no file explains (bad SQL, an
interrupt) propagate unchanged.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import duckdb
import orjson
import pyarrow as pa

from .lake import Lake

__all__ = ["Bad", "Quarantine", "QuarantinedFile", "filesystem_failure", "is_file_error"]

log = logging.getLogger("mallard.store")

#: Reasons recorded for a quarantined file (never the DuckDB message: it may quote stored values).
FOOTER: Final = "unreadable Parquet footer (truncated or not Parquet)"
PAGES: Final = "Parquet data pages do not decode"
#: Listed in /health/detailed at most (the newest).
LISTED: Final = 100

# Errors a damaged file raises in DuckDB: the decoders' untyped ``duckdb.Error`` ("Out of buffer",
# "Decode bit width too large", ...), ``InvalidInputException`` ("No magic bytes found at end of file
# '<path>'", "Failed to read file "<path>": ZSTD Decompression failure"), ``IOException`` ("Could not read
# enough bytes from file "<path>"") and ``InternalException``. Parser, binder, conversion and interrupt
# errors never name a bad file, nor does a failure of the object store under a read (objectfs.py):
# DuckDB's caller gets an untyped error whose message is the Python traceback.
_NAMING: Final = (duckdb.InvalidInputException,)
_UNTYPED: Final = (duckdb.IOException, duckdb.InternalException)
_TRACEBACK: Final = "Traceback (most recent call last):"
# The exception a traceback ends with: "OSError: AWS Error INTERNAL_FAILURE during GetObject ..."
_RAISED: Final = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception)): (.*)$", re.MULTILINE)


def filesystem_failure(exc: BaseException) -> str | None:
    """What a Python filesystem raised under the DuckDB error ``exc`` ("OSError: AWS Error ..."),
    without the traceback; None when ``exc`` is not such an error, or when the file was not found
    (a file gone is the reading's to handle, like a damaged one)."""
    text = str(exc)
    if not text.startswith(_TRACEBACK):
        return None
    raised = _RAISED.findall(text)
    if not raised:
        return "the filesystem failed"
    name, message = raised[-1]
    return None if name.endswith("FileNotFoundError") else f"{name}: {message}"


def is_file_error(exc: BaseException) -> bool:
    """Whether a DuckDB error may come from a damaged file (then it is worth a diagnosis)."""
    return ((type(exc) is duckdb.Error or isinstance(exc, (*_NAMING, *_UNTYPED)))
            and filesystem_failure(exc) is None)


@dataclass(frozen=True, slots=True)
class Bad:
    """A file a query could not read: ``reason`` None when it is simply gone."""

    path: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class QuarantinedFile:
    """A file moved out of the lake: its path relative to ``events/`` (and to ``quarantine/``)."""

    file: str
    reason: str
    quarantined_at: str

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason, "quarantined_at": self.quarantined_at}


class Quarantine:
    """Diagnoses unreadable lake files and moves them to ``root`` (``data_dir/quarantine``).

    Args:
        lake: the lake (its root is ``events/``; its exclusive lock guards the moves).
        root: where quarantined files go, under their path relative to ``events/``.
        grace_secs: files modified more recently than this are skipped, never moved.
        movable: False for a read-only store: bad files are only skipped.
        clock: seconds since the epoch (compared with file modification times).
    """

    def __init__(self, lake: Lake, root: Path, *, grace_secs: float, movable: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.lake = lake
        self.root = root
        self.grace_secs = grace_secs
        self.movable = movable
        self._clock = clock
        #: Called with the number of files this process moved (the metrics counter).
        self.on_moved: Callable[[int], None] | None = None

    # -- diagnosis ----------------------------------------------------------------------------------
    def diagnose(self, con: duckdb.DuckDBPyConnection, files: Sequence[str],
                 exc: BaseException) -> list[Bad]:
        """The files among ``files`` that explain ``exc``: gone, unreadable footer, or undecodable pages.

        An interrupt during the decode (the query's time limit) propagates.
        """
        bad: list[Bad] = []
        for path in files:
            try:
                self.lake.metadata(path)
            except FileNotFoundError:
                bad.append(Bad(path, None))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                bad.append(Bad(path, FOOTER))
            except OSError:
                continue  # permissions, I/O: not the file's content
        if bad:
            return bad
        text = str(exc)
        named = [f for f in files if f in text]
        suspects = named or (list(files) if not isinstance(exc, _NAMING) else [])
        for path in suspects:
            if not _decodes(con, self.lake, path):
                bad.append(Bad(path, PAGES))
        return bad

    def is_fresh(self, path: str) -> bool:
        """Modified within the grace period (or in the future): maybe still being written."""
        try:
            return self._clock() - os.stat(path).st_mtime < self.grace_secs
        except FileNotFoundError:
            return False

    def skip_or_move(self, bad: Bad) -> bool:
        """Whether ``bad`` is to be moved (else it is only left out of this query, and logged)."""
        if bad.reason is None:
            return False
        if not self.movable:
            log.warning("skipping unreadable lake file %s (%s); read-only, not quarantined",
                        self._relative(bad.path), bad.reason)
            return False
        if self.is_fresh(bad.path):
            log.info("skipping unreadable lake file %s (%s): modified in the last %g s, maybe still "
                     "being written", self._relative(bad.path), bad.reason, self.grace_secs)
            return False
        return True

    # -- moving -------------------------------------------------------------------------------------
    def move(self, bad: Sequence[Bad]) -> list[QuarantinedFile]:
        """Move ``bad`` files to the quarantine under the exclusive lake lock; returns those moved here.

        Must not be called while this thread holds the lake lock shared (inside a reading).
        """
        moved: list[QuarantinedFile] = []
        if not bad or not self.movable:
            return moved
        with self.lake.locked(exclusive=True):
            for item in bad:
                if item.reason is None or self.is_fresh(item.path):
                    continue
                record = self._move(Path(item.path), item.reason)
                if record is not None:
                    moved.append(record)
        if moved and self.on_moved is not None:
            self.on_moved(len(moved))
        return moved

    def _move(self, path: Path, reason: str) -> QuarantinedFile | None:
        relative = self._relative(str(path))
        target = self.root / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, target)
        except FileNotFoundError:
            if not path.exists():
                return None  # another process (or the operator) moved it first
            log.warning("cannot quarantine %s: %s is missing", relative, target.parent)
            return None
        except OSError as exc:
            log.warning("cannot quarantine %s: %s", relative, exc.strerror)
            return None
        when = datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="seconds")
        record = QuarantinedFile(relative, reason, when)
        sidecar = target.with_name(target.name + ".json")
        tmp = sidecar.with_name(f".{sidecar.name}.tmp")
        try:
            tmp.write_bytes(orjson.dumps(record.to_dict()))
            os.rename(tmp, sidecar)
        except OSError as exc:
            log.warning("cannot record why %s was quarantined: %s", relative, exc.strerror)
        log.warning("quarantined unreadable lake file %s (%s): moved to %s", relative, reason,
                    target)
        return record

    def _relative(self, path: str) -> str:
        try:
            return Path(path).relative_to(self.lake.root).as_posix()
        except ValueError:
            return Path(path).name

    # -- listing ------------------------------------------------------------------------------------
    def listing(self, limit: int = LISTED) -> tuple[int, list[QuarantinedFile]]:
        """How many files are in quarantine, and the newest ``limit`` of them."""
        if not self.root.is_dir():
            return 0, []
        found: list[QuarantinedFile] = []
        for path in self.root.glob("site_id=*/date=*/*.parquet"):
            relative = path.relative_to(self.root).as_posix()
            try:
                spec = orjson.loads(path.with_name(path.name + ".json").read_bytes())
                found.append(QuarantinedFile(relative, str(spec["reason"]), str(spec["quarantined_at"])))
            except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
                found.append(QuarantinedFile(relative, "unknown", ""))
        found.sort(key=lambda q: (q.quarantined_at, q.file), reverse=True)
        return len(found), found[:limit]


def _decodes(con: duckdb.DuckDBPyConnection, lake: Lake, path: str) -> bool:
    """Whether every value of every column of ``path`` decodes (hashing the rows reads them all)."""
    try:
        con.execute("SELECT sum(hash(t)) FROM read_parquet(?) AS t", [[path]]).fetchall()
    except duckdb.InterruptException:
        raise
    except duckdb.Error as exc:
        if not is_file_error(exc):
            return True
        try:
            lake.probe(path)
        except OSError:
            return True  # unreadable for a reason other than its content: leave it in place
        return False
    return True
