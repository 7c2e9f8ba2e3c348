"""Reader: one query's consistent view of the lake (a file list and buffered rows), and the SQL that
reads them with the full, typed lake schema.

A read that fails on damaged files is answered from the other files: :meth:`Reader.execute` has the
:class:`~mallard._store.quarantine.Quarantine` find the bad files, drops them from the file list (the very
list object bound as the query's ``read_parquet(?)`` parameter) and runs the statement again. The files
to move aside are collected in :attr:`Reader.doomed`; the Store moves them once the shared lake lock is
released.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from datetime import date, datetime
from typing import Final, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._errors import StorageError
from .._events import COLUMNS, ENGAGEMENT
from .lake import SCHEMA
from .quarantine import Bad, Quarantine, filesystem_failure, is_file_error

__all__ = ["BUFFER", "PROJECTION", "READ_PARQUET", "TEMPLATE", "TEMPLATE_DDL", "Reader"]

log = logging.getLogger("mallard.store")

TEMPLATE: Final = "__mallard_template"
BUFFER: Final = "__mallard_buffer"
PROJECTION: Final = ", ".join(f'CAST("{c.name}" AS {c.sql_type}) AS "{c.name}"' for c in COLUMNS)
# The partition directories are authoritative for site_id (and date): files dropped in by other tools
# (``df.to_parquet(events_dir, partition_cols=["site_id", "date"])``) carry them only in the path.
# Partition values stay text ("007" is a site id, not the number 7).
READ_PARQUET: Final = ("read_parquet(?, union_by_name=true, hive_partitioning=true, "
                       "hive_types_autocast=false)")
TEMPLATE_DDL: Final = (f"CREATE TABLE IF NOT EXISTS {TEMPLATE} ("
                       + ", ".join(f'"{c.name}" {c.sql_type}' for c in COLUMNS) + ")")

Rows = Literal["events", "engagement", "all"]
# TRICKY: a row named "engagement" is never an event of its own (Plausible's rule), whatever it carries:
# rows stored so by older versions (before the engagement columns) are left out of analyses too.
_ROWS: Final[dict[str, str]] = {"events": f" WHERE event_name <> '{ENGAGEMENT}'",
                                "engagement": f" WHERE event_name = '{ENGAGEMENT}'", "all": ""}

#: Runs of one statement: the first, then one per diagnosis that found bad files (footers, then pages).
_ATTEMPTS: Final = 3

_empty_lock = threading.Lock()
_empty: list[str] = []


def _empty_file() -> str:
    """An empty Parquet file with the lake schema: stands in for a file list left empty by exclusions
    (``read_parquet`` refuses an empty list, and the statement's text is already built)."""
    with _empty_lock:
        if not _empty:
            fd, path = tempfile.mkstemp(prefix="mallard-empty-", suffix=".parquet")
            os.close(fd)
            pq.write_table(pa.Table.from_pylist([], schema=SCHEMA), path)
            atexit.register(_remove, path)
            _empty.append(path)
        return _empty[0]


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class Reader:
    """One query's consistent view: a file list and buffered rows, under the shared lake lock."""

    def __init__(self, con: duckdb.DuckDBPyConnection, files: list[str], rows: pa.Table | None,
                 site_id: str | None, view: str, quarantine: Quarantine, mark: int | None = None) -> None:
        self._con = con
        self._files = files
        self._rows = rows
        self.site_id = site_id
        self._view = view
        self._quarantine = quarantine
        #: Bad files to move to the quarantine after the reading.
        self.doomed: list[Bad] = []
        #: Files left out of this reading because they could not be read.
        self.excluded = 0
        #: Arrow tables registered for the reading's statements (unregistered when it ends).
        self.views: list[str] = []
        #: The buffer's mark when the reading took its rows (None: no buffer): readings with the same
        #: mark read the same buffered events.
        self.buffered_mark = mark

    def register(self, name: str, table: pa.Table) -> None:
        """Make ``table`` a relation ``name`` of this reading's statements."""
        self._con.register(name, table)
        self.views.append(name)

    @property
    def files(self) -> tuple[str, ...]:
        """The lake files this reading reads (those found unreadable left out)."""
        return tuple(f for f in self._files if f not in _empty)

    def buffered_dates(self) -> set[date]:
        """The UTC dates of the buffered rows this reading reads."""
        if self._rows is None or not self._rows.num_rows:
            return set()
        days = pc.unique(pc.cast(self._rows.column("timestamp"), pa.date32()))
        return set(days.to_pylist())

    def buffered_since(self) -> datetime | None:
        """The time of the earliest buffered row this reading reads (None: none)."""
        if self._rows is None or not self._rows.num_rows:
            return None
        earliest: datetime | None = pc.min(self._rows.column("timestamp")).as_py()
        return earliest

    def source(self, rows: Rows = "events") -> tuple[str, list[object]]:
        """SQL text (and its parameters) of a relation with the full, typed lake schema.

        ``rows``: ``"events"``, every row but Plausible's engagement reports (what every analysis
        reads); ``"engagement"``, those reports only; ``"all"``, every row.
        """
        parts = [f"SELECT * FROM {TEMPLATE}"]
        params: list[object] = []
        if self._files:
            parts.append(f"SELECT * FROM {READ_PARQUET}")
            params.append(self._files)
        if self._rows is not None and self._rows.num_rows:
            parts.append(f"SELECT * FROM {self._view}")
        union = " UNION ALL BY NAME ".join(parts)
        return f"SELECT {PROJECTION} FROM ({union}){_ROWS[rows]}", params

    def execute(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return self._con.sql(sql, params=list(params)).to_arrow_table()
            except duckdb.Error as exc:
                if attempt == _ATTEMPTS or not is_file_error(exc) or not self.exclude_bad(exc):
                    failure = filesystem_failure(exc)
                    if failure is not None or isinstance(exc, duckdb.IOException):
                        raise StorageError(f"Cannot read the lake: {failure or exc}") from None
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def mark_for(self, first: date, last: date) -> int | None:
        """:attr:`buffered_mark` when this reading holds buffered events of the UTC days ``[first,
        last]`` (what is computed from those days depends on them), else None."""
        return self.buffered_mark if any(first <= d <= last for d in self.buffered_dates()) else None

    def buffered_table(self) -> pa.Table | None:
        """The buffered rows this reading reads (lake schema; None: none)."""
        return self._rows if self._rows is not None and self._rows.num_rows else None

    def exclude_bad(self, exc: Exception) -> bool:
        """Drop the files that explain ``exc`` (a failed read of them, by DuckDB or another engine)
        from the file list; False when none does."""
        files = [f for f in self._files if f not in _empty]
        bad = self._quarantine.diagnose(self._con, files, exc)
        if not bad:
            return False
        gone = {b.path for b in bad}
        self._files[:] = [f for f in self._files if f not in gone] or [_empty_file()]
        self.excluded += len(bad)
        self.doomed.extend(b for b in bad if self._quarantine.skip_or_move(b))
        return True
