"""The structural rewrites of the ClickHouse dialect (unions, names, windows, lookups, local times, the
chain of visitor ids, stored files): each run by DuckDB and, translated, by ClickHouse (chdb)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mallard._errors import StorageError
from mallard._queries.dialect import UnsupportedSql, to_clickhouse
from mallard._queries.sessions import ctes
from mallard._queries.sql import Sql, with_ctes
from mallard._queries.vocabulary import Words

from .dialect_check import both

pytestmark = pytest.mark.slow  # ClickHouse (chdb)

EVENTS = pa.table({
    "who": ["a", "a", "a", "b", "b", "c", None],
    "t": [3, 1, 1, 7, 8, 2, 4],
    "page": ["/b", "/a", "/c", "/a", "/a", "/x", "/y"],
    "keys": pa.array([[5, 6], [], [7], [8, 9, 10], [11], [12], [13]], pa.list_(pa.uint64())),
})
T = {"e": EVENTS}


def test_union_by_name_and_a_unions_order() -> None:
    both("SELECT 1 AS a, 'x' AS b UNION ALL BY NAME SELECT 'y' AS b, 2 AS a "
         "UNION ALL BY NAME SELECT b, a FROM (SELECT page AS b, t AS a FROM e) ORDER BY a DESC, b LIMIT 4",
         tables=T)
    both("SELECT 0 AS part, NULL AS next, count(*) AS n, count(*) FILTER (WHERE page IS NULL) AS none "
         "FROM e UNION ALL SELECT * FROM (SELECT 1 AS part, page AS next, count(*) AS n, 0 AS none FROM e "
         "GROUP BY page ORDER BY n DESC, next LIMIT 2) ORDER BY part, n DESC, next", tables=T)


def test_names() -> None:
    """An alias never hides an input column of the same name (DuckDB), but ORDER BY prefers output
    names; a qualified column keeps its name through a join."""
    both("SELECT NULL AS page, count(*) FILTER (WHERE page IS NULL) AS n FROM e", tables=T)
    both("SELECT coalesce(x.page, '(unknown)') AS page, count(*) AS c FROM (SELECT NULLIF(page, '/a') AS "
         "page FROM e) x GROUP BY ALL ORDER BY c DESC, page", tables=T)
    both("SELECT l.who, r.who FROM (SELECT who, page FROM e) l JOIN (SELECT who, page FROM e) r "
         "USING (page) ORDER BY 1, 2", tables=T)


def test_windows() -> None:
    """Named windows; lag and lead are NULL past either end (of a column that is never NULL too: not
    its type's default); ties in the order stay ties."""
    both("SELECT who, t, page, lag(page) OVER w AS before, lead(page) OVER w AS after, "
         "lag(coalesce(t, 0)) OVER w AS t_before, lead(coalesce(page, '')) OVER w AS never_null, "
         "row_number() OVER w AS rk, sum(t) OVER (PARTITION BY who ORDER BY t, page ROWS BETWEEN "
         "UNBOUNDED PRECEDING AND CURRENT ROW) AS running FROM e WINDOW w AS (PARTITION BY who ORDER BY t, "
         "page) ORDER BY who, t, page", tables=T)
    both("SELECT who, page FROM e QUALIFY row_number() OVER (PARTITION BY who ORDER BY t DESC, page) = 1 "
         "ORDER BY who", tables=T)


def test_unnest_with_subscripts() -> None:
    both("SELECT who, t, unnest(keys) AS k, generate_subscripts(keys, 1) AS i FROM e ORDER BY who, t, i",
         tables=T)
    both("SELECT who, k FROM (SELECT who, unnest(keys) AS k FROM e) ORDER BY k", tables=T)


@pytest.mark.parametrize("names", [(("/a", "A"), ("/b", None)),
                                   tuple((f"/{i}", f"page {i}") for i in range(40))])
def test_vocabulary_lookup(names: tuple[tuple[str, str | None], ...]) -> None:
    """vocabulary.Words: a CASE, or past 32 names a lookup in a VALUES table (transform())."""
    if any(shown is None for _, shown in names) and len(names) > 32:
        pytest.skip("no missing names in a lookup table")
    label = Words(names, empty="(none)").label(Sql("page"))
    both("SELECT t, " + label.text + " AS shown FROM e ORDER BY t, page", label.params, T)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"])
def test_local_time_buckets(zone: str) -> None:
    """Wall-clock buckets, across daylight saving time: the two 02:00 hours of an autumn night are
    one bucket, as DuckDB's naive local times make them."""
    times = pa.table({"ts": pa.array([datetime(2024, 10, 27, h, m) for h in range(6) for m in (0, 59)]
                                     + [datetime(2024, 3, 31, h, 30) for h in range(4)], pa.timestamp("us"))})
    for unit in ("hour", "day", "week", "month"):
        both(f"SELECT strftime(date_trunc('{unit}', timezone(?, timezone('UTC', ts))), '%Y-%m-%d %H:00') "
             "AS b, count(*) FROM t GROUP BY ALL ORDER BY b", [zone], {"t": times})


def test_chain_of_visitor_ids(tmp_path: Path) -> None:
    """sessions.py's actor: the first id of a chain of previous ids (up to 32 links), as hash lookups
    folded in ClickHouse instead of 32 self-joins; thousands of links in several files, which
    ClickHouse reads in any order (the lookups must not depend on it)."""
    chain = [f"d{i}" for i in range(40)]  # d39 <- d38 <- ... <- d0: longer than 32 links
    pairs = [(f"v{i}-b", f"v{i}-a") for i in range(20_000)] + [(f"w{i}-c", f"w{i}-b") for i in range(5_000)] \
        + [(f"w{i}-b", f"w{i}-a") for i in range(5_000)] + [("x1", "x0"), ("x2", "x1"), ("y", None)]
    pairs += [(d, p) for d, p in zip(chain, [None, *chain[:-1]], strict=True)]
    files = []
    for n in range(8):
        part = pairs[n::8]
        schema = pa.schema([("visitor_id", pa.string()), ("visitor_id_prev", pa.string())])
        pq.write_table(pa.table({"visitor_id": [v for v, _ in part], "visitor_id_prev": [p for _, p in part]},
                                schema=schema), tmp_path / f"{n}.parquet")
        files.append(str(tmp_path / f"{n}.parquet"))
    actors = ctes(1800, attributes=(), flags=(), source="scoped")[0]
    # actors read twice: computed into a temporary table (dialect.py), as in a filtered funnel
    sql = with_ctes([("scoped", Sql("SELECT * FROM read_parquet(?)", (files,))), actors], Sql(
        "SELECT visitor_id, actor FROM actors WHERE visitor_id IN (SELECT visitor_id FROM actors) "
        "ORDER BY visitor_id"))
    assert "l31" in sql.text
    both(sql.text, sql.params)


def test_json_paths() -> None:
    props = pa.table({"props": ['{"a b":"x","n":2}', '{"n":null}', None], "key": ["a b", "n", "n"]})
    both("SELECT json_extract_string(props, ?) AS v FROM p", ['$."a b"'], {"p": props})
    both("SELECT json_extract_string(props, '$.\"' || key || '\"') AS v FROM p", tables={"p": props})


def test_stored_files(tmp_path: Path) -> None:
    """``read_parquet`` of stored files, with the hive partition columns as the path names them (text)."""
    paths = []
    for site, day, n in (("a%3Ab", date(2024, 5, 1), 1), ("a%3Ab", date(2024, 5, 2), 2),
                         ("c", date(2024, 5, 1), 3)):
        directory = tmp_path / f"site_id={site}" / f"date={day}"
        directory.mkdir(parents=True)
        pq.write_table(pa.table({"n": [n, n * 10]}), directory / "part.parquet")
        paths.append(str(directory / "part.parquet"))
    both("SELECT site_id, \"date\"::DATE AS day, n FROM read_parquet(?, hive_partitioning=true, "
         "hive_types_autocast=false) ORDER BY n", [paths])
    both("SELECT * EXCLUDE (site_id, \"date\") FROM read_parquet(?, hive_partitioning=true, "
         "hive_types_autocast=false) ORDER BY n", [paths[:1]])
    both("SELECT n FROM read_parquet(?) ORDER BY n", [paths])
    odd = tmp_path / "a,b{c}"  # ClickHouse reads ',', '{' and '}' in a path as a pattern, unescapable
    odd.mkdir()
    pq.write_table(pa.table({"n": [7]}), odd / "x.parquet")
    with pytest.raises(StorageError, match="wildcard"):
        to_clickhouse("SELECT n FROM read_parquet(?)", [[str(odd / "x.parquet")]], lambda name: None)


def test_unsupported_structures() -> None:
    with pytest.raises(UnsupportedSql):
        to_clickhouse("SELECT lag(t, 2) OVER (ORDER BY t) FROM e", [], lambda name: None)
    with pytest.raises(UnsupportedSql):
        to_clickhouse("SELECT timezone('UTC', t) FROM e", [], lambda name: None)
