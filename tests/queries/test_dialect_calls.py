"""The functions, aggregates and casts of the ClickHouse dialect: each construct the query modules write,
run by DuckDB and, translated, by ClickHouse (chdb) over the same rows, with the edges that differ
between the two engines when translated naively (NULLs, ties, empty groups, UTF-8, half-way values)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from mallard._queries.dialect import UnsupportedSql, to_clickhouse

from .dialect_check import both, clickhouse, duck

pytestmark = pytest.mark.slow  # ClickHouse (chdb)

T0 = datetime(2024, 3, 30, 23, 59, 59, 999_999)
# Ties on t and p, with NULLs in every column an ordering key or an argument reads.
ROWS = pa.table({
    "k": ["a", "a", "a", "a", "b", "b", "c"],
    "t": [1, 1, 1, 2, 5, 5, 9],
    "p": ["/x", "/x", "/x", "/y", "/", "/", "/ü"],
    "h": ["z.example", None, "a.example", "b.example", None, None, "ÀÉ.example"],
    "v": [None, "B", "A", "C", None, "D", None],
    "n": ["pageview", "pageview", "signup", "pageview", "signup", "signup", "pageview"],
    "x": [1.5, 2.5, None, 4.0, 0.5, 1.5, 3.0],
    "ts": pa.array([T0, T0, datetime(2024, 3, 31, 1, 0), datetime(2024, 4, 1, 0, 0), datetime(2024, 1, 7),
                    datetime(2024, 12, 31, 23, 0), datetime(2024, 2, 29, 12, 30, 1, 5)], pa.timestamp("us")),
    "props": ['{"plan":"pro","n":3,"b":true,"z":null}', '{"plan":"fr\\u00e9e"}', None, "[1, 2]", "{}",
              '{"plan":"x y","k2":"v"}', '{"n":1.5}'],
    "vid": ["aabbccddeeff0011" * 4, "AABBCCDDEEFF0011" * 4, "not-hex-" * 8, "short", "ü" * 64, "abc", "x"],
})
TABLES = {"r": ROWS}


@pytest.mark.parametrize("select", [
    # first/last by a struct key with ties on t and p: the NULL field sorts last (DuckDB's structs)
    "arg_min(v, {'t': t, 'p': p, 'h': h}) AS a, arg_max(v, {'t': t, 'p': p, 'h': h}) AS b",
    # arg_min skips a NULL argument; arg_min_null does not
    "arg_min(h, {'t': t, 'p': p}) AS a, arg_min_null(h, {'t': t, 'p': p, 'v': v}) AS b",
    "arg_max_null(v, {'t': t, 'c': n <> 'pageview', 'p': p, 'v': v}) AS a",
    # FILTER: NULL when no row passes (but counts, lists)
    "count(*) FILTER (WHERE n = 'pageview') AS c, sum(t) FILTER (WHERE n = 'nothing') AS s, "
    "avg(x) FILTER (WHERE n = 'signup') AS a, arg_min(p, {'t': t, 'p': p}) FILTER (WHERE n = 'none') AS f",
    "arg_min_null(h, {'t': t, 'p': p, 'h': h}) FILTER (WHERE n = 'pageview') AS a, "
    "arg_max_null(h, {'t': t, 'p': p, 'h': h}) FILTER (WHERE n = 'nothing') AS b",
    "count(DISTINCT v) AS d, count(DISTINCT {'k': k, 't': t}) AS s, "
    "coalesce(bool_or(n = 'signup'), false) AS o",
    "median(x::DOUBLE) AS m, avg(x) AS a, round_even(avg(t), 0)::INTEGER AS r",
])
def test_aggregates(select: str) -> None:
    both(f"SELECT k, {select} FROM r GROUP BY k ORDER BY k", tables=TABLES)
    both(f"SELECT {select} FROM r", tables=TABLES)
    both(f"SELECT {select} FROM r WHERE false", tables=TABLES)  # over no rows


@pytest.mark.parametrize(("expr", "params"), [
    ("lower(h)", []), ("length(p)", []), ("contains(lower(h), lower(?))", ["àé"]),
    ("starts_with(p, '/x')", []), ("suffix(h, '.example')", []), ("regexp_matches(p, ?)", ["^/[xy]$"]),
    ("regexp_matches(h, ?, 'i')", ["^Z"]), ("regexp_full_match(p, '/[a-z]')", []),
    ("rtrim(regexp_replace(h, '^([a-z]+)\\.(.*)$', '\\2/\\1'), '/')", []), ("nullif(v, 'B')", []),
    ("array_to_string(string_split(h, '.')[1:2], '.')", []), ("left(h, 3)", []),
])
def test_text(expr: str, params: list[str]) -> None:
    both(f"SELECT {expr} AS e FROM r ORDER BY t, p, h NULLS LAST, v NULLS LAST", params, TABLES)


@pytest.mark.parametrize("key", ["plan", "n", "b", "z", "missing", "k2"])
def test_json_value(key: str) -> None:
    """A string's text, another value's JSON text, NULL for a JSON null or a missing key."""
    both("SELECT json_extract_string(props, ?) AS v FROM r ORDER BY t, p, h NULLS LAST, v NULLS LAST",
         ['$."' + key + '"'], TABLES)


def test_json_keys() -> None:
    both("SELECT key, count(*) FROM (SELECT unnest(CASE WHEN json_valid(props) THEN json_keys(props) END) "
         "AS key FROM r WHERE props IS NOT NULL) GROUP BY key ORDER BY key", tables=TABLES)


def test_visitor_keys() -> None:
    """sessions.visitor_key: the hex digits of a 64-digit id as a number, else the MD5-based number,
    bit for bit as DuckDB computes them (stored keys are compared with keys computed by either)."""
    from mallard._queries.sessions import visitor_key

    both(f"SELECT vid, {visitor_key('vid')} AS key FROM r ORDER BY vid", tables=TABLES)


@pytest.mark.parametrize("unit", ["hour", "day", "week", "month"])
def test_time_buckets(unit: str) -> None:
    both(f"SELECT strftime(date_trunc('{unit}', ts), '%Y-%m-%d %H:00') AS b, count(*) FROM r "
         "GROUP BY ALL ORDER BY b", tables=TABLES)


def test_times() -> None:
    both("SELECT epoch_us(ts) AS us, ts + to_microseconds(t) AS later, ts::DATE AS d, "
         "date_diff('day', CAST(date_trunc('week', ts) AS DATE), CAST(ts AS DATE)) // 7 AS w, "
         "CAST(date_trunc('week', ts) AS DATE) AS monday FROM r ORDER BY ts", tables=TABLES)


def test_casts() -> None:
    both("SELECT (t = 1)::INTEGER AS i, t::BIGINT AS b, x::DECIMAL(18,2) AS d, NULL::VARCHAR AS s, "
         "t::UBIGINT AS u, t / 2 AS half, t // 2 AS whole FROM r ORDER BY t, p", tables=TABLES)


def test_lists() -> None:
    both("SELECT list_contains(?, k) AS c, array_length(list_sort(list(DISTINCT t))) AS n FROM r "
         "GROUP BY k ORDER BY k", [["a", "c"]], TABLES)
    both("SELECT list_contains(?, ts::DATE) AS c FROM r ORDER BY ts", [[date(2024, 3, 31)]], TABLES)


def test_a_null_list_is_empty() -> None:
    """The one value the dialect does not keep: ClickHouse has no NULL array, so a NULL list is the
    empty one (the query model reads no list that can be NULL as such: revenue's currencies and
    rollups' keys are read as sets)."""
    lists = "list_sort(list(DISTINCT coalesce(v, '')) FILTER (WHERE x IS NOT NULL)) AS l"
    both(f"SELECT k, {lists} FROM r GROUP BY k ORDER BY k", tables=TABLES)
    assert duck(f"SELECT {lists} FROM r WHERE false", tables=TABLES) == [(None,)]
    assert clickhouse(f"SELECT {lists} FROM r WHERE false", tables=TABLES) == [([],)]
    assert duck("SELECT NULL::UBIGINT[] AS l") == [(None,)]
    assert clickhouse("SELECT NULL::UBIGINT[] AS l") == [([],)]


def test_hash_keys_group_alike() -> None:
    """``hash`` is another function in ClickHouse, but equal inputs get equal keys (all the model
    asks of it)."""
    assert duck("SELECT count(DISTINCT hash(k, v IS NULL)) FROM r", tables=TABLES) == \
        clickhouse("SELECT count(DISTINCT hash(k, v IS NULL)) FROM r", tables=TABLES)


def test_revenue_struct() -> None:
    """Revenue metrics (a struct of the amount and the currencies): the same Revenue per row once read
    (a row without revenue has no currency list in DuckDB, an empty one in ClickHouse)."""
    from mallard._queries.revenue import finish, metric_sql

    rows = pa.table({"g": ["a", "a", "b", "c", "c"],
                     "revenue_amount": pa.array([Decimal("1.50"), None, None, Decimal("2"), Decimal("3")],
                                                pa.decimal128(12, 2)),
                     "revenue_currency": ["EUR", None, None, "USD", None]})
    for name in ("total_revenue", "average_revenue"):
        sql = f"SELECT g, {metric_sql(name)} AS m FROM r GROUP BY g ORDER BY g"
        answers = [[{"g": g, name: m} for g, m in run(sql, tables={"r": rows})] for run in (duck, clickhouse)]
        warnings = [finish(a, [name], lambda row: "GBP" if row["g"] == "b" else None) for a in answers]
        assert answers[0] == answers[1] and warnings[0] == warnings[1]
        assert answers[0][0][name] is not None and answers[0][2][name] is None  # c mixes USD and none


@pytest.mark.parametrize("sql", ["SELECT md5(k) FROM r", "SELECT list_reverse(l) FROM r",
                                 "SELECT date_trunc('quarter', ts) FROM r",
                                 "SELECT regexp_matches(p, 'x', 'g') FROM r"])
def test_an_untranslated_function_is_refused(sql: str) -> None:
    """A construct the query model does not write fails loudly, never runs with other semantics."""
    with pytest.raises(UnsupportedSql):
        to_clickhouse(sql, [], lambda name: None)
