"""Moving events between a data directory and files: the rows of a range read out for an export, and rows
from outside checked against the lake schema and stored through the normal write path.

Import checks every row before it stores one, holding a batch of rows in memory at a time (checked rows
wait on disk, :func:`import_batches`). It is idempotent by content: each batch of whole partitions is
compared with the rows those partitions already hold (an SQL ``EXCEPT ALL``, a multiset difference over
every column, NULLs equal), so a row is stored as many times as the input holds it more often than the
lake does, and importing the same rows again stores nothing. One import runs at a time per data directory
(``state/import.lock``), so two imports cannot both find a row missing. Rows that an erasure of the last
90 days covers and that are older than the erasure are not stored (the erasure holds against an old
export brought back); the batch is written by :meth:`Store.write_batch`, whose publish also honours an
erasure recorded while it is written.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from .._errors import InvalidEventError
from .._events import COLUMN_NAMES, COLUMNS, validate_site_id
from .._progress import Progress, Step, silent
from . import Store
from .lake import SCHEMA

__all__ = ["Imported", "coerce", "count_rows", "export_batches", "import_batches"]

#: Rows compared with the lake and written per batch (bounds the memory of a large import).
BATCH_ROWS: Final = 100_000
_ROW: Final = "__mallard_row"
_INCOMING: Final = "__mallard_incoming"
_CAST: Final = {
    "TIMESTAMP": "TRY_CAST(TRY_CAST({c} AS TIMESTAMPTZ) AS TIMESTAMP)",  # an offset is applied (UTC)
    "DECIMAL(12,2)": "TRY_CAST({c} AS DECIMAL(12,2))",
    "SMALLINT": "TRY_CAST({c} AS SMALLINT)",
    "BIGINT": "TRY_CAST({c} AS BIGINT)",
    "BOOLEAN": "TRY_CAST({c} AS BOOLEAN)",
    "VARCHAR": "CAST({c} AS VARCHAR)",
}
_EXPECTED: Final = {
    "TIMESTAMP": "is not a timestamp (ISO 8601, YYYY-MM-DD HH:MM:SS[.ffffff], UTC or with an offset)",
    "DECIMAL(12,2)": "is not an amount of at most 10 digits and 2 decimals",
    "SMALLINT": "is not an integer from -32768 to 32767",
    "BIGINT": "is not a 64-bit integer",
    "BOOLEAN": "is not true or false",
}
#: Checks of typed values: (column, SQL condition of a bad value over the typed column, what is wrong).
_RULES: Final = (
    ("scroll_depth", "{t} NOT BETWEEN 0 AND 100", "must be a percentage from 0 to 100"),
    ("engagement_ms", "{t} < 0", "must not be negative"),
    ("revenue_currency", "NOT regexp_full_match({t}, '[A-Z]{{3}}')",
     "must be an ISO 4217 code in upper case (EUR)"),
    ("props", "NOT (json_valid({t}) AND json_type({t}) = 'OBJECT')",
     "must be a JSON object"),
)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _typed(column: str, sql_type: str) -> str:
    return _CAST[sql_type].format(c=_quoted(column))


def coerce(table: pa.Table, source: str, *, first_row: int = 1) -> pa.Table:
    """``table`` (columns named as the lake's, of any type that converts: text from CSV, JSON values,
    Parquet types) with the lake schema, or an error naming the first bad row and column.

    Every column must be a lake column; ``site_id``, ``visitor_id``, ``timestamp``, ``event_name`` and
    ``pathname`` must be present and non-empty in every row, and a missing nullable column is NULL.

    Raises:
        InvalidEventError: (code ``invalid_import``) what is wrong, where (``source``, row counted from 1,
            the header not counted, and column), how many rows share the problem; nothing is stored.
            ``first_row`` is the number of ``table``'s first row (a batch of a longer file).
    """
    unknown = [c for c in table.column_names if c not in COLUMN_NAMES]
    if unknown:
        raise _bad(f"{source}: unknown column {unknown[0]!r}; the columns are those of the lake schema "
                   f"(docs/storage.md): {', '.join(COLUMN_NAMES)}.")
    missing = [c.name for c in COLUMNS if not c.nullable and c.name not in table.column_names]
    if missing:
        raise _bad(f"{source}: the column {missing[0]!r} is missing; every row needs "
                   f"{', '.join(c.name for c in COLUMNS if not c.nullable)}.")
    table = table.append_column(_ROW, pa.array(range(first_row, first_row + table.num_rows), pa.int64()))
    present = set(table.column_names)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register(_INCOMING, table)
        typed = {c.name: (_typed(c.name, c.sql_type) if c.name in present else f"NULL::{c.sql_type}")
                 for c in COLUMNS}
        checks: list[tuple[str, str, str]] = []
        for c in COLUMNS:
            if c.name not in present:
                continue
            raw, t = _quoted(c.name), typed[c.name]
            if c.sql_type in _EXPECTED:
                exact = f"TRY_CAST({raw} AS DECIMAL(38,10)) <> {t}" if c.sql_type not in (
                    "TIMESTAMP", "BOOLEAN") else "false"
                checks.append((c.name, f"{raw} IS NOT NULL AND ({t} IS NULL OR {exact})",
                               _EXPECTED[c.sql_type]))
            if not c.nullable:
                empty = f" OR {t} = ''" if c.sql_type == "VARCHAR" else ""
                checks.append((c.name, f"{raw} IS NULL{empty}", "must not be empty"))
        checks += [(name, f"{typed[name]} IS NOT NULL AND ({rule.format(t=typed[name])})", what)
                   for name, rule, what in _RULES
                   if name in present]
        _raise_first(con, checks, source)
        out = con.sql("SELECT " + ", ".join(f"{typed[c.name]} AS {_quoted(c.name)}" for c in COLUMNS)
                      + f" FROM {_INCOMING} ORDER BY {_ROW}").to_arrow_table()
        for site in pc.unique(out.column("site_id")).to_pylist():
            try:
                validate_site_id(site)
            except InvalidEventError as exc:
                row = pc.index(out.column("site_id"), site).as_py() + first_row
                raise _bad(f"{source}: row {row}, column 'site_id': {exc.message} (got "
                           f"{_shown(site)}). Nothing was imported.") from None
        return out.cast(SCHEMA)
    finally:
        con.close()


def _raise_first(con: duckdb.DuckDBPyConnection, checks: list[tuple[str, str, str]], source: str) -> None:
    """Raise for the earliest row that fails one of ``checks``."""
    if not checks:
        return
    found = con.execute("SELECT " + ", ".join(f"min({_ROW}) FILTER (WHERE {cond}), count(*) FILTER "
                                          f"(WHERE {cond})" for _, cond, _ in checks)
                    + f" FROM {_INCOMING}").fetchall()[0]
    failed = [(found[2 * i], found[2 * i + 1], check) for i, check in enumerate(checks)
              if found[2 * i] is not None]
    if not failed:
        return
    row, count, (column, _, what) = min(failed, key=lambda f: f[0])
    value = con.execute(f"SELECT CAST({_quoted(column)} AS VARCHAR) FROM {_INCOMING} "
                        f"WHERE {_ROW} = ?", [row]).fetchall()[0][0]
    got = f" (got {_shown(value)})" if value is not None else ""
    more = f"; {count} rows have this problem" if count > 1 else ""
    raise _bad(f"{source}: row {row}, column {column!r}: {what}{got}{more}. Nothing was imported.")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bad(message: str) -> InvalidEventError:
    return InvalidEventError(message, code="invalid_import")


@dataclass(frozen=True, slots=True)
class Imported:
    """What an import did with its rows."""

    read: int
    """rows read"""
    skipped: int
    """rows left out by the site or date filter"""
    stored: int
    """rows written to the lake"""
    duplicates: int
    """rows the lake held already (idempotence)"""
    erased: int
    """rows an earlier erasure covers"""


def import_batches(store: Store, batches: Iterable[pa.Table], source: str, *, site: str | None = None,
                   bounds: tuple[datetime, datetime] | None = None, total: int | None = None,
                   progress: Progress = silent) -> Imported:
    """Check every row of ``batches`` (a file's rows in order, of any types :func:`coerce` converts),
    keep those of ``site`` within ``bounds`` (naive UTC, ``[lower, upper)``) and store those the lake
    lacks.

    In two passes, so that nothing is stored unless every row is good while only a batch is in memory:
    the first checks each batch and keeps its rows in a hidden directory of the data directory, a file
    per partition (site and UTC day); the second stores a few whole partitions at a time.
    ``progress`` counts the rows checked (``total``, when known) and then the rows stored or found.
    """
    with store.state.lock("import.lock"):
        spill = _Spill(store.data_dir)
        try:
            read, step = 0, progress("check", total, "rows")
            for batch in batches:
                spill.add(_within(coerce(batch, source, first_row=read + 1), site, bounds))
                read += batch.num_rows
                step(batch.num_rows)
            stored, duplicates, erased = _store_new(store, spill, progress("import", spill.rows, "rows"))
        finally:
            spill.remove()
    return Imported(read, read - spill.rows, stored, duplicates, erased)


def _within(table: pa.Table, site: str | None, bounds: tuple[datetime, datetime] | None) -> pa.Table:
    if site is not None:
        table = table.filter(pc.equal(table.column("site_id"), site))
    if bounds is not None:
        ts, (lower, upper) = table.column("timestamp"), bounds
        table = table.filter(pc.and_(pc.greater_equal(ts, pa.scalar(lower, pa.timestamp("us"))),
                                     pc.less(ts, pa.scalar(upper, pa.timestamp("us")))))
    return table


class _Spill:
    """Checked rows waiting for the store pass: an Arrow file (LZ4) per batch and partition under
    ``data_dir/.import-<token>/`` (one left by a crash is removed by the next import, under the lock)."""

    def __init__(self, data_dir: Path) -> None:
        for old in data_dir.glob(".import-*"):
            shutil.rmtree(old, ignore_errors=True)
        self.root = data_dir / f".import-{secrets.token_hex(4)}"
        self.root.mkdir()
        self.parts: dict[tuple[str, date], tuple[int, list[Path]]] = {}
        self.rows = self._files = 0

    def add(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        days = pc.cast(table.column("timestamp"), pa.date32())
        keyed = table.append_column("__day", days).sort_by([("site_id", "ascending"), ("__day", "ascending")])
        counts = keyed.group_by(["site_id", "__day"], use_threads=False).aggregate([([], "count_all")])
        offset = 0
        for part in counts.sort_by([("site_id", "ascending"), ("__day", "ascending")]).to_pylist():
            key, n = (part["site_id"], part["__day"]), part["count_all"]
            path, self._files = self.root / f"{self._files}.arrow", self._files + 1
            feather.write_feather(keyed.slice(offset, n).drop_columns(["__day"]), path, compression="lz4")
            rows, files = self.parts.get(key, (0, []))
            self.parts[key] = (rows + n, [*files, path])
            offset += n
        self.rows += table.num_rows

    def batches(self) -> Iterator[tuple[str, date, date, pa.Table]]:
        """(site, first UTC date, last UTC date, rows): whole partitions of one site, by date, about
        :data:`BATCH_ROWS` rows (more when one partition holds more)."""
        keys = sorted(self.parts)
        start = 0
        while start < len(keys):
            end, rows = start, 0
            while end < len(keys) and keys[end][0] == keys[start][0] and (
                    rows == 0 or rows + self.parts[keys[end]][0] <= BATCH_ROWS):
                rows += self.parts[keys[end]][0]
                end += 1
            files = [f for k in keys[start:end] for f in self.parts[k][1]]
            yield keys[start][0], keys[start][1], keys[end - 1][1], pa.concat_tables(
                feather.read_table(f) for f in files)
            start = end

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _store_new(store: Store, spill: _Spill, step: Step) -> tuple[int, int, int]:
    """Store the spilled rows that the lake lacks: (stored, duplicates, erased)."""
    stored = duplicates = erased = 0
    stones = store.tombstones.all()
    for site, first, last, batch in spill.batches():
        fresh = batch
        for stone in (s for s in stones if s.site_id == site and s.start <= last and first <= s.end):
            cut = datetime.fromtimestamp(stone.at, UTC).replace(tzinfo=None)
            ts = fresh.column("timestamp")
            days = pc.cast(ts, pa.date32())
            covered = pc.and_(pc.and_(pc.greater_equal(days, pa.scalar(stone.start, pa.date32())),
                                      pc.less_equal(days, pa.scalar(stone.end, pa.date32()))),
                              pc.less_equal(ts, pa.scalar(cut, pa.timestamp("us"))))
            fresh = fresh.filter(pc.invert(covered))
        erased += batch.num_rows - fresh.num_rows
        missing = _missing(store, site, first, last, fresh) if fresh.num_rows else fresh
        duplicates += fresh.num_rows - missing.num_rows
        if missing.num_rows:
            rows = list(zip(*(col.to_pylist() for col in missing.columns), strict=True))
            # The erasures already applied above; one recorded from now on is applied by the batch.
            store.write_batch(rows, applied=set(stones))()
            stored += missing.num_rows
        step(batch.num_rows)
    return stored, duplicates, erased


def _missing(store: Store, site: str, first: date, last: date, batch: pa.Table) -> pa.Table:
    """The rows of ``batch`` that the lake's partitions [first, last] of ``site`` do not hold (as a
    multiset: a row the batch holds twice and the lake once is missing once)."""
    columns = ", ".join(_quoted(c) for c in COLUMN_NAMES)
    with store.reading(site, first, last) as reader:
        reader.register(_INCOMING, batch)
        src, params = reader.source("all")
        return reader.execute(f"SELECT {columns} FROM {_INCOMING} EXCEPT ALL SELECT {columns} FROM "
                              f"({src}) WHERE site_id = ?", [*params, site]).cast(SCHEMA)


def count_rows(store: Store, site: str, lower: datetime, upper: datetime) -> int:
    """How many rows (engagement reports included) ``site`` has in ``[lower, upper)``."""
    first, last = lower.date(), (upper - timedelta(microseconds=1)).date()
    with store.reading(site, first, last) as reader:
        src, params = reader.source("all")
        table = reader.execute(f"SELECT count(*) AS n FROM ({src}) WHERE site_id = ? AND timestamp >= ? "
                               "AND timestamp < ?", [*params, site, lower, upper])
    return int(table.column("n")[0].as_py())


def export_batches(store: Store, site: str, lower: datetime, upper: datetime) -> Iterator[pa.Table]:
    """Every row of ``site`` in ``[lower, upper)`` with every lake column, engagement reports included,
    in time order: one table per UTC day, each read under the lake lock."""
    first, last = lower.date(), (upper - timedelta(microseconds=1)).date()
    for day in (d for d in store.lake.dates(site) if first <= d <= last):
        with store.reading(site, day, day) as reader:
            src, params = reader.source("all")
            table = reader.execute(
                f"SELECT * FROM ({src}) WHERE site_id = ? AND timestamp >= ? AND timestamp < ? "
                "ORDER BY timestamp, event_name, pathname, visitor_id",
                [*params, site, max(lower, datetime.combine(day, datetime.min.time())), upper])
        if table.num_rows:
            yield table.cast(SCHEMA)
