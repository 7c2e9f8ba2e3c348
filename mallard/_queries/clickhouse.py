"""The ClickHouse engine: the query model's statements run in-process by chdb over the same lake.

``Settings.engine = "clickhouse"`` (``mallard.open(path, engine="clickhouse")``) gives every reading of
:class:`~mallard._queries.Queries` a :class:`ClickHouseReader` (readings.py): the same consistent view
as DuckDB's reader (the file list taken under the shared lake lock, the process's buffered events),
whose statements are translated (dialect.py) and run by chdb. ClickHouse reads the lake's Parquet files
itself, with the lake's schema (a column a file lacks is NULL, the site is its partition directory's,
as DuckDB reads them); buffered events and the derived rows computed for a query (session and rollup
rows) are Arrow tables chdb reads in place through its ``Python()`` table function. Answers come back
as Arrow tables with DuckDB's types (naive UTC times, signed counts), so every caller reads them as it
reads DuckDB's, and derived rows computed here are read again beside the stored ones.

The lake's files are read where they are: on disk, or on S3-compatible object storage with a
``lake_url`` (clickhouse_lake.py). A damaged lake file is diagnosed and left out as on DuckDB (the
reader's quarantine); a stored derived file that cannot be read fails as a StorageError, which the
callers answer from events.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import pyarrow as pa
import pyarrow.compute as pc

from .._errors import ConfigurationError, StorageError
from .._events import COLUMNS, ENGAGEMENT, Column
from .clickhouse_lake import LakeFiles, lake_files
from .dialect_params import Bound, bind

if TYPE_CHECKING:
    from .._settings import Settings
    from .._store.reader import Reader, Rows
    from .dialect import Relation, Translated

__all__ = ["ClickHouse", "ClickHouseReader", "engine_for"]

_TYPES: Final = {"VARCHAR": "String", "TIMESTAMP": "DateTime64(6, 'UTC')", "SMALLINT": "Int16",
                 "BIGINT": "Int64", "BOOLEAN": "Bool", "DECIMAL(12,2)": "Decimal(12, 2)"}
_LAKE: Final = "__mallard_lake_"


def _typed(column: Column) -> str:
    kind = _TYPES[column.sql_type]
    return f"Nullable({kind})" if column.nullable else kind


#: The lake's columns as ClickHouse reads a file (nullable as the lake's schema says; the site: the
#: partition directory's, ``:`` written ``%3A`` there).
_STRUCTURE: Final = ", ".join(f"`{c.name}` {_typed(c)}" for c in COLUMNS if c.name != "site_id")
_SITE: Final = "replaceAll(extract(_path, '/site_id=([^/]*)/'), '%3A', ':')"
_FROM_FILE: Final = ", ".join(f"{_SITE} AS site_id" if c.name == "site_id" else f"`{c.name}`"
                              for c in COLUMNS)
_FROM_TABLE: Final = ", ".join(f"CAST(`{c.name}` AS {_typed(c)}) AS `{c.name}`" for c in COLUMNS)
_ROWS: Final = {"events": f" WHERE event_name <> '{ENGAGEMENT}'",
                "engagement": f" WHERE event_name = '{ENGAGEMENT}'", "all": ""}
#: ClickHouse's error codes of a file it cannot read: CANNOT_READ_ALL_DATA, CANNOT_OPEN_FILE,
#: FILE_DOESNT_EXIST, INCORRECT_DATA, CANNOT_EXTRACT_TABLE_STRUCTURE, STD_EXCEPTION (Arrow's); and
#: S3_ERROR of an object that is not there. S3_ERROR's other causes (access, the network) are the
#: store's, not a file's: a StorageError without a diagnosis.
_FILE_ERRORS: Final = frozenset({33, 76, 107, 117, 636, 1001})
_S3_ERROR: Final = 499
_MISSING_OBJECT: Final = "HTTP response code: 404"
_CODE: Final = re.compile(r"Code: (\d+)\.")
_ATTEMPTS: Final = 3
# chdb's Python() table function finds an object by its name in the calling frame: each statement runs
# in a frame whose namespace holds the statement's tables (this code, compiled once, runs there).
_RUN: Final = compile("result = conn.query(sql, 'Arrowtable', params=params)", "<mallard.clickhouse>",
                      "exec")


def engine_for(settings: Settings) -> ClickHouse | None:
    """The ClickHouse engine when ``settings`` choose it (None: DuckDB runs the statements).

    Raises:
        ConfigurationError: chdb or sqlglot (the ``clickhouse`` extra) is not installed, or the data
            directory's path (the ``lake_url``'s prefix) holds a character ClickHouse reads as a wildcard.
    """
    if settings.engine != "clickhouse":
        return None
    files = lake_files(settings)
    try:
        import chdb  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(f"engine = clickhouse needs chdb and sqlglot ({exc.name} is missing): "
                                 "pip install 'mallard-metrics[clickhouse]'.") from None
    return ClickHouse(files)


class ClickHouse:
    """One chdb connection, shared by the threads of a :class:`~mallard._queries.Queries`: chdb runs one
    statement of a connection at a time. ``files``: where it reads the lake's files."""

    def __init__(self, files: LakeFiles | None = None) -> None:
        self.files = files or LakeFiles()
        self._lock = threading.Lock()
        self._conn: Any = None

    def run(self, statement: Translated, tables: dict[str, pa.Table]) -> pa.Table:
        """Run ``statement`` (its setup, itself, its teardown) with ``tables`` for ``Python()``."""
        import chdb

        params = {name: b.text for name, b in statement.params.items()}
        failure: Exception | None = None
        with self._lock:
            if self._conn is None:
                self._conn = chdb.connect(":memory:")  # type: ignore[no-untyped-call]
                for sql in self.files.session_settings():
                    self._conn.query(sql)
            namespace: dict[str, Any] = {"conn": self._conn, "params": params, **tables}
            try:
                for sql in (*statement.setup, statement.sql):
                    namespace["sql"] = sql
                    exec(_RUN, namespace)  # a constant statement: see _RUN
            except Exception as exc:
                # TRICKY: after a failed statement, chdb 4.4 answers the connection's next one with a
                # broken Arrow message; a throwaway statement takes it
                with contextlib.suppress(Exception):
                    self._conn.query("SELECT 1", "CSV")
                failure = self.files.scrub(exc)
                if failure is exc:
                    raise
            finally:
                for sql in statement.teardown:
                    self._conn.query(sql)
            if failure is not None:  # raised here: the original, which quotes a credential, is no context
                raise failure
            result: pa.Table = namespace["result"]
        return result

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def wrap(self, reading: AbstractContextManager[Reader]) -> Iterator[ClickHouseReader]:
        """A :class:`ClickHouseReader` over the DuckDB ``reading``."""
        with reading as reader:
            yield ClickHouseReader(reader, self)


class ClickHouseReader:
    """A reading (:class:`~mallard._store.reader.Reader`) whose statements chdb runs."""

    def __init__(self, inner: Reader, engine: ClickHouse) -> None:
        self._inner = inner
        self._engine = engine
        self._tables: dict[str, pa.Table] = {}
        self.site_id = inner.site_id
        self.views: list[str] = []

    # -- the reading, as the DuckDB reader gives it ------------------------------------------------
    @property
    def files(self) -> tuple[str, ...]:
        return self._inner.files

    def buffered_dates(self) -> set[date]:
        return self._inner.buffered_dates()

    def buffered_since(self) -> datetime | None:
        return self._inner.buffered_since()

    @property
    def buffered_mark(self) -> int | None:
        return self._inner.buffered_mark

    def mark_for(self, first: date, last: date) -> int | None:
        return self._inner.mark_for(first, last)

    def register(self, name: str, table: pa.Table) -> None:
        """Make ``table`` a relation ``name`` of this reading's statements."""
        self._tables[name] = table
        self.views.append(name)

    def source(self, rows: Rows = "events") -> tuple[str, list[object]]:
        """A relation with the full, typed lake schema (see :meth:`Reader.source`): a name that each
        statement's translation replaces by the reading's files and buffered events."""
        return f"SELECT * FROM {_LAKE}{rows}", []

    # -- statements --------------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        """Run ``sql`` (DuckDB's SQL, ``?`` bound to ``params``) in ClickHouse, leaving out a damaged lake
        file as the DuckDB reader does.

        Raises:
            StorageError: the lake (or a stored derived file) cannot be read, or the object store
                that holds it refused a request or cannot be reached.
            UnsupportedSql: ``sql`` holds a construct the ClickHouse dialect does not translate.
        """
        from .dialect import to_clickhouse

        for attempt in range(1, _ATTEMPTS + 1):
            # the file list may have shrunk
            translated = to_clickhouse(sql, params, self._relation, self._engine.files)
            try:
                return _as_duckdb(self._engine.run(translated, self._tables))
            except Exception as exc:
                failure = _failure(exc)
                if failure is None:
                    raise
                if failure == "store" or attempt == _ATTEMPTS or not self._inner.exclude_bad(exc):
                    raise StorageError(f"ClickHouse cannot read the lake: {str(exc).splitlines()[0]}") \
                        from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _relation(self, name: str) -> Relation | None:
        from .dialect import Relation

        if name in self._tables:
            return Relation(f"SELECT * FROM Python({name})")
        if name.startswith(_LAKE):
            return self._lake(name[len(_LAKE):])
        return None

    def _lake(self, rows: str) -> Relation:
        """The lake's rows this reading reads (``rows``: see :meth:`source`), its files and buffered
        events as one typed relation."""
        from .dialect import Relation

        params: dict[str, Bound] = {}
        parts = []
        files = list(self._inner.files)
        if files:
            def bound(text: str) -> str:
                name = f"lake{len(params)}"
                params[name] = bind(text)
                return f"{{{name}:String}}"

            parts.append(self._engine.files.read(files, _STRUCTURE, bound, _FROM_FILE))
        buffered = self._inner.buffered_table()
        if buffered is not None:
            name = f"__mallard_buffered_{id(self)}"
            self._tables[name] = buffered
            parts.append(f"SELECT {_FROM_TABLE} FROM Python({name})")
        if not parts:
            parts.append(f"SELECT '' AS site_id, * FROM null('{_quoted(_STRUCTURE)}')")
        return Relation(f"SELECT * FROM ({' UNION ALL '.join(parts)}){_ROWS[rows]}", params)


def _quoted(text: str) -> str:
    """``text`` inside a ClickHouse string literal."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _failure(exc: BaseException) -> Literal["file", "store"] | None:
    """What ``exc`` says of the lake: a file may be damaged or gone (worth a diagnosis), the object
    store refused or could not be reached, or neither (None)."""
    text = str(exc)
    found = _CODE.search(text)
    code = int(found.group(1)) if found else None
    if code in _FILE_ERRORS or (code == _S3_ERROR and _MISSING_OBJECT in text):
        return "file"
    return "store" if code == _S3_ERROR else None


def _as_duckdb(table: pa.Table) -> pa.Table:
    """chdb's Arrow table with DuckDB's types: naive UTC times, signed integers (a count is UInt64 in
    ClickHouse, BIGINT in DuckDB; a UInt64 past 2^63 - 1, a visitor key, stays unsigned)."""
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            column = pc.cast(column, pa.timestamp(kind.unit))
        elif pa.types.is_unsigned_integer(kind) and (
                not pa.types.is_uint64(kind) or column.null_count == len(column)
                or pc.max(column).as_py() < 2 ** 63):
            column = pc.cast(column, pa.int64())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)
