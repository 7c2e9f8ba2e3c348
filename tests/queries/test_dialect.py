"""DuckDB statements translated for ClickHouse (dialect.py): placeholders, settings, shared CTEs."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mallard._queries.dialect import SETTINGS, Relation, to_clickhouse

from .dialect_check import both, temporary_tables


def _none(name: str) -> Relation | None:
    return None


def test_placeholders_are_named_in_order() -> None:
    """Each ``?`` (not one inside a string or a quoted name) is a typed parameter, in order."""
    out = to_clickhouse("SELECT '?' AS \"?\", ?, ? FROM t WHERE a = ?", ["x", 2, None], _none)
    assert "{p0: String}" in out.sql and "{p1: Int64}" in out.sql and "'?'" in out.sql
    assert "p2" not in out.params and "NULL" in out.sql  # NULL is written, not bound
    assert {k: v.text for k, v in out.params.items()} == {"p0": "x", "p1": "2"}
    with pytest.raises(ValueError, match="placeholders"):
        to_clickhouse("SELECT ?", [1, 2], _none)


def test_every_statement_runs_with_the_settings() -> None:
    out = to_clickhouse("SELECT 1", [], _none)
    assert out.sql.endswith(", ".join(f"{k} = {v}" for k, v in SETTINGS.items()))
    assert not out.setup and not out.teardown


@pytest.mark.slow  # ClickHouse (chdb)
def test_a_cte_read_twice_is_computed_once() -> None:
    """A CTE read by several others becomes a temporary table for the statement (dropped after it),
    as DuckDB materialises it; one DuckDB is told to inline stays written out."""
    t = pa.table({"k": [1, 2, 2, 3], "v": [10, 20, 30, 40]})
    sql = ("WITH src AS NOT MATERIALIZED (SELECT * FROM t), "
           "g AS (SELECT k, sum(v) AS s FROM src GROUP BY k), h AS (SELECT * FROM g WHERE s > 10), "
           "i AS (SELECT k FROM g JOIN h USING (k)) SELECT (SELECT count(*) FROM g) AS a, "
           "(SELECT count(*) FROM h) AS b, (SELECT sum(k) FROM i) AS c, (SELECT max(k) FROM src) AS d")
    out = to_clickhouse(sql, [], lambda name: Relation("SELECT * FROM Python(t)") if name == "t" else None)
    assert len(out.setup) == 2 and "_g " in out.setup[0] and "_h " in out.setup[1]
    assert all("src" not in s.split(" AS ", 1)[0] for s in out.setup)
    both(sql, tables={"t": t})
    assert temporary_tables() == 0
