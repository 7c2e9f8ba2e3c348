"""Run one DuckDB statement on DuckDB and, translated (mallard/_queries/dialect.py), on ClickHouse
(chdb), over the same Arrow tables: the two answers of the dialect's tests."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from mallard._queries.clickhouse import ClickHouse, _as_duckdb
from mallard._queries.dialect import Relation, to_clickhouse

_ENGINE = ClickHouse()


def duck(sql: str, params: Sequence[object] = (), tables: Mapping[str, pa.Table] | None = None
         ) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    for name, table in (tables or {}).items():
        con.register(name, table)
    return _rows(con.sql(sql, params=list(params)).to_arrow_table())


def clickhouse(sql: str, params: Sequence[object] = (), tables: Mapping[str, pa.Table] | None = None
               ) -> list[tuple[Any, ...]]:
    given = dict(tables or {})
    translated = to_clickhouse(sql, params, lambda name: Relation(f"SELECT * FROM Python({name})")
                               if name in given else None)
    return _rows(_as_duckdb(_ENGINE.run(translated, given)))


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(zip(*columns, strict=True)) if columns else []


def same(a: object, b: object) -> bool:
    """Equal answers: floats to 1e-9 (sums in another order), a number equal whatever its type."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)) and math.isclose(
            float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def both(sql: str, params: Sequence[object] = (), tables: Mapping[str, pa.Table] | None = None
         ) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` on DuckDB, after checking that ClickHouse gives the same."""
    expected = duck(sql, params, tables)
    got = clickhouse(sql, params, tables)
    assert same(got, expected), f"\nDuckDB:     {expected}\nClickHouse: {got}"
    return expected


def temporary_tables() -> int:
    """The temporary tables left in the connection ``clickhouse()`` runs on."""
    clickhouse("SELECT 1")  # connected
    listed = _ENGINE._conn.query("SELECT count() FROM system.tables WHERE is_temporary", "CSV")
    return int(str(listed).strip())
