"""Export and import files of events: Parquet, CSV or JSON lines, on local disk or at any pyarrow
filesystem URI (``s3://bucket/key`` with the ``s3_*`` settings, ``gs://…``, ``hdfs://…``, ``file://…``).

A file holds one row per stored row with every lake column (docs/storage.md), so an export imports back
losslessly. In CSV, NULL is an empty unquoted field and an empty text a quoted one (``""``), and a text
that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return), or that starts with ``'``, is written with one more ``'`` in front, which import removes. JSON
lines hold one object per line: timestamps and amounts as text, NULL as ``null``.

Local files are written under a hidden name and renamed into place, so a reader (or a scheduled import)
never sees half a file; an object store's upload becomes visible only once complete.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Final, Protocol

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ._errors import InvalidEventError, StorageError
from ._events import COLUMN_NAMES, COLUMNS
from ._progress import Progress, Step, silent
from ._store.s3 import Bucket, is_object_url
from ._store.transfer import Imported, import_batches

if TYPE_CHECKING:
    from ._settings import Settings
    from ._store import Store

__all__ = ["FORMATS", "Imported", "format_of", "import_file", "read_batches", "write_file"]

FORMATS: Final = ("parquet", "csv", "json")
_SUFFIXES: Final = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".json": "json",
                    ".jsonl": "json", ".ndjson": "json"}
_FORMULA: Final = r"^[=+\-@\t\r']"
_TEXT: Final = frozenset(c.name for c in COLUMNS if c.sql_type == "VARCHAR")
_JSON_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "VARCHAR": (str,), "TIMESTAMP": (str,), "DECIMAL(12,2)": (str, int, float),
    "SMALLINT": (int,), "BIGINT": (int,), "BOOLEAN": (bool,)}
_SQL_TYPES: Final = {c.name: c.sql_type for c in COLUMNS}
#: Rows (Parquet) and bytes (CSV, JSON lines) read per batch of an import.
READ_ROWS: Final = 100_000
READ_BYTES: Final = 32 << 20


def format_of(location: str, given: str | None) -> str:
    """``given``, else the format that ``location``'s suffix names."""
    if given:
        return given
    for suffix, fmt in _SUFFIXES.items():
        if location.lower().endswith(suffix):
            return fmt
    raise InvalidEventError(f"cannot tell the format of {location!r} from its name: give --format "
                            f"({', '.join(FORMATS)}).", code="invalid_import")


def _filesystem(location: str, settings: Settings) -> tuple[pafs.FileSystem, str]:
    """The filesystem of ``location`` and its path there."""
    if is_object_url(location):  # the s3_* settings, as for a lake on object storage
        bucket = Bucket.from_settings(settings.replace(lake_url=location.rstrip("/")))
        return bucket.fs, bucket.key("")
    if "://" in location:
        try:
            fs, path = pafs.FileSystem.from_uri(location)
        except (pa.ArrowInvalid, OSError, ValueError) as exc:
            raise StorageError(f"Cannot use {location}: {exc}") from None
        return fs, path
    return pafs.LocalFileSystem(), os.path.abspath(location)


class _Writer(Protocol):
    def write(self, table: pa.Table) -> None: ...
    def close(self) -> None: ...


class _Parquet:
    def __init__(self, stream: pa.NativeFile) -> None:
        self._stream = stream
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._stream, table.schema, compression="zstd")
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class _Csv:
    def __init__(self, stream: pa.NativeFile) -> None:
        self._stream = stream
        self._writer: pacsv.CSVWriter | None = None

    def write(self, table: pa.Table) -> None:
        for i, field in enumerate(table.schema):
            if pa.types.is_string(field.type):  # neutralise formulas (reversibly, see the docstring)
                col = table.column(i)
                escaped = pc.if_else(pc.match_substring_regex(col, _FORMULA),
                                     pc.binary_join_element_wise("'", col, ""), col)
                table = table.set_column(i, field, escaped)
        if self._writer is None:
            self._writer = pacsv.CSVWriter(self._stream, table.schema,
                                           write_options=pacsv.WriteOptions(quoting_style="needed"))
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class _JsonLines:
    def __init__(self, stream: pa.NativeFile) -> None:
        self._stream = stream

    def write(self, table: pa.Table) -> None:
        self._stream.write(b"".join(orjson.dumps(row, default=str, option=orjson.OPT_APPEND_NEWLINE)
                                    for row in table.to_pylist()))

    def close(self) -> None:
        pass


_WRITERS: Final[dict[str, Callable[[pa.NativeFile], _Writer]]] = {
    "parquet": _Parquet, "csv": _Csv, "json": _JsonLines}


def write_file(tables: Iterable[pa.Table], location: str, fmt: str, settings: Settings, *,
               progress: Step = lambda n: None) -> int:
    """Write ``tables`` (one schema) as one ``fmt`` file at ``location``; returns the rows written."""
    fs, path = _filesystem(location, settings)
    local = isinstance(fs, pafs.LocalFileSystem)
    if local:  # the file's directories are made, as an object store's key needs none
        directory, name = os.path.split(path)
        target = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise _storage(exc, location, settings, "write") from None
    else:
        target = path
    rows = 0
    try:
        with fs.open_output_stream(target, compression=None) as stream:
            writer = _WRITERS[fmt](stream)
            for table in tables:
                writer.write(table)
                rows += table.num_rows
                progress(table.num_rows)
            writer.close()
        if local:
            os.replace(target, path)
    except BaseException as exc:
        if local or rows:
            with contextlib.suppress(OSError):
                fs.delete_file(target)
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            raise _storage(exc, location, settings, "write") from None
        raise
    return rows


def _storage(exc: OSError, location: str, settings: Settings, doing: str) -> StorageError:
    if is_object_url(location):
        bucket = Bucket.from_settings(settings.replace(lake_url=location.rstrip("/")))
        return bucket.error(exc, f"{doing} the file")
    return StorageError(f"Cannot {doing} {location}: {exc.strerror or exc}.")


def read_batches(location: str, fmt: str, settings: Settings) -> tuple[Iterator[pa.Table], int | None]:
    """The rows of the file at ``location`` in batches, as they are written there (CSV and JSON values as
    text), before :func:`~mallard._store.transfer.coerce` checks them; and how many rows the file holds
    when it says (Parquet). Read as they are consumed: a batch in memory at a time."""
    fs, path = _filesystem(location, settings)
    try:
        if fmt == "parquet":
            try:
                parquet = pq.ParquetFile(fs.open_input_file(path))
            except pa.ArrowInvalid as exc:
                raise _unreadable(location, "Parquet", exc) from None
            return _guarded(_parquet(parquet), location, "Parquet", settings), parquet.metadata.num_rows
        stream = fs.open_input_stream(path, compression=None)
    except FileNotFoundError:
        raise StorageError(f"Cannot read {location}: no such file.") from None
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise _storage(exc, location, settings, "read") from None
    if fmt == "csv":
        return _guarded(_csv(stream), location, "CSV", settings), None
    return _guarded(_json_lines(stream, location), location, "JSON-lines", settings), None


def _guarded(batches: Iterator[pa.Table], location: str, kind: str, settings: Settings
             ) -> Iterator[pa.Table]:
    try:
        yield from batches
    except pa.ArrowInvalid as exc:
        raise _unreadable(location, kind, exc) from None
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise _storage(exc, location, settings, "read") from None


def _parquet(parquet: pq.ParquetFile) -> Iterator[pa.Table]:
    with parquet:
        if not parquet.metadata.num_rows:  # the columns are checked all the same
            yield parquet.schema_arrow.empty_table()
        for batch in parquet.iter_batches(batch_size=READ_ROWS):
            yield pa.Table.from_batches([batch])


def _unreadable(location: str, kind: str, exc: Exception) -> InvalidEventError:
    return InvalidEventError(f"{location}: not a readable {kind} file ({exc}). Nothing was imported.",
                             code="invalid_import")


def _csv(stream: pa.NativeFile) -> Iterator[pa.Table]:
    with stream:
        reader = pacsv.open_csv(stream, read_options=pacsv.ReadOptions(block_size=READ_BYTES),
                                convert_options=pacsv.ConvertOptions(
                                    column_types={name: pa.string() for name in COLUMN_NAMES},
                                    strings_can_be_null=True, quoted_strings_can_be_null=False))
        empty = True
        for batch in reader:
            table, empty = pa.Table.from_batches([batch]), False
            for i, name in enumerate(table.column_names):
                if name in _TEXT:
                    col = table.column(i)
                    table = table.set_column(i, name, pc.if_else(pc.starts_with(col, "'"),
                                                                 pc.utf8_slice_codeunits(col, 1), col))
            yield table
        if empty:  # a header alone: its columns are checked all the same
            yield reader.schema.empty_table()


def _json_lines(stream: pa.NativeFile, location: str) -> Iterator[pa.Table]:
    number, rest, empty = 0, b"", True
    with stream:
        while True:
            chunk = stream.read(READ_BYTES)
            data, rest = rest + chunk, b""
            if chunk:  # whole lines only; the rest goes with the next chunk
                cut = data.rfind(b"\n") + 1
                data, rest = data[:cut], data[cut:]
            lines = data.splitlines()
            rows = _json_rows(lines, number, location)
            number += len(lines)
            if rows or (empty and not chunk):
                names = [n for n in COLUMN_NAMES if any(n in row for row in rows)]
                yield pa.table({n: pa.array([row.get(n) for row in rows], pa.string()) for n in names})
                empty = False
            if not chunk:
                return


def _json_rows(lines: list[bytes], before: int, location: str) -> list[dict[str, str | None]]:
    """The objects of ``lines`` (lines ``before`` + 1… of the file), their values as text."""
    rows: list[dict[str, str | None]] = []
    for number, line in enumerate(lines, before + 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise _bad_line(location, number, f"not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise _bad_line(location, number, "not a JSON object")
        for key, value in row.items():
            sql_type = _SQL_TYPES.get(key)
            if sql_type is None:
                raise _bad_line(location, number, f"unknown column {key!r}; the columns are those of "
                                                  f"the lake schema: {', '.join(COLUMN_NAMES)}")
            if value is not None and ((isinstance(value, bool) and sql_type != "BOOLEAN")
                                      or not isinstance(value, _JSON_TYPES[sql_type])):
                raise _bad_line(location, number, f"column {key!r}: a JSON {type(value).__name__} where "
                                                  f"{sql_type} is expected (got {_short(value)})")
            if value is not None and not isinstance(value, str):
                row[key] = orjson.dumps(value).decode()
        rows.append(row)
    return rows


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad_line(location: str, number: int, what: str) -> InvalidEventError:
    return InvalidEventError(f"{location}: line {number}: {what}. Nothing was imported.",
                             code="invalid_import")


def import_file(store: Store, location: str, fmt: str, settings: Settings, *, site: str | None = None,
                bounds: tuple[datetime, datetime] | None = None, progress: Progress = silent) -> Imported:
    """Import the ``fmt`` file at ``location``: :func:`~mallard._store.transfer.import_batches` of its
    rows, read a batch at a time."""
    batches, total = read_batches(location, fmt, settings)
    return import_batches(store, batches, location, site=site, bounds=bounds, total=total,
                          progress=progress)
