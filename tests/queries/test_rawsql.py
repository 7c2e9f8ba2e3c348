"""``Queries.sql``: your own SQL over ``events`` and ``sessions``; the sessions relation is the stored rows
where fresh plus the computed ones, equal to sessions computed from every event, with the documented
columns; under ``Mallard.queries`` both relations include the buffered events."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import mallard
from mallard._queries import Queries
from mallard._queries import sessions as _sessions
from mallard._queries.backfill import build_settled
from mallard._queries.sql import Sql
from mallard._store import Store

from .conftest import spoil
from .data import DAY1, DAY2, OTHER_SITE, SITE, dataset, event, noise, write_lake

COLUMNS = ["site_id", *_sessions.COLUMNS]
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


def _sorted(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda r: (r["start_time"], r["visitor_keys"]))


def _from_events(q: Queries, site: str) -> list[dict[str, Any]]:
    """The sessions of every event of ``site``, computed in one statement (the reference definition)."""
    ref = _sessions.relation(1800, Sql("SELECT * FROM events WHERE site_id = ? AND event_name <> "
                                       "'engagement'", (site,)))
    return _sorted(q.sql(ref.text, ref.params))


def _relation(q: Queries, site: str) -> list[dict[str, Any]]:
    table = q.sql("SELECT * EXCLUDE (site_id) FROM sessions WHERE site_id = ?", [site])
    return _sorted(table)


def test_the_sessions_relation_has_the_documented_columns(queries: Queries) -> None:
    table = queries.sql("SELECT * FROM sessions")
    assert table.column_names == COLUMNS
    assert table.schema.field("visitor_keys").type == pa.list_(pa.uint64())
    counted = queries.sql("SELECT site_id, count(*) AS n FROM sessions GROUP BY ALL").to_pylist()
    by_site = {r["site_id"]: r["n"] for r in counted}
    # the 7 sessions of the hand-made days, the one of 04-30, and the other site's one
    assert by_site == {SITE: 8, OTHER_SITE: 1}


def test_sessions_are_those_computed_from_every_event(queries: Queries) -> None:
    assert _relation(queries, SITE) == _from_events(queries, SITE)
    two_days = queries.sql("SELECT count(*) AS visits, sum(pageviews) AS pageviews, "
                           "sum(duration_us) // 1000000 AS seconds FROM sessions "
                           "WHERE site_id = ? AND start_time >= ? AND start_time < ?",
                           [SITE, date(2024, 5, 1), date(2024, 5, 3)]).to_pylist()[0]
    assert two_days == {"visits": 7, "pageviews": 11, "seconds": 4500}  # data.py's totals
    main = queries.main(SITE, start_date=DAY1, end_date=DAY2)
    assert main.total_sessions == two_days["visits"]


def test_stored_days_and_computed_days_make_one_relation(tmp_path: Path,
                                                         open_queries: Callable[..., Queries]) -> None:
    """Days whose sessions are stored are read from sessions/; a day changed since, and the open days,
    are computed: the union equals the computation from every event."""
    data_dir = write_lake(tmp_path / "lake", [*dataset(), *noise()])
    store = Store(data_dir)
    try:
        assert build_settled(store, 1800, today=date(2024, 5, 10)).built >= 2
        # a late event of 05-01 makes that day's stored partition stale (computed instead)
        store.write_batch([event("late", f"{DAY1} 15:00:00", path="/late")])()
    finally:
        store.close()
    assert list((data_dir / "sessions").rglob("*.parquet"))
    q = open_queries(data_dir)
    assert _relation(q, SITE) == _from_events(q, SITE)
    assert q.sql("SELECT count(*) AS n FROM sessions WHERE entry_page = '/late'").to_pylist() == [{"n": 1}]
    raw = open_queries(shutil.copytree(data_dir / "events", tmp_path / "raw" / "events").parent)
    assert _relation(raw, SITE) == _relation(q, SITE)


def test_an_unreadable_stored_sessions_file_is_computed_from_events(
        tmp_path: Path, open_queries: Callable[..., Queries]) -> None:
    """A damaged stored sessions file: the relation equals the computation from every event; a
    read-only reader (this one) leaves the file for the writer's maintenance."""
    data_dir = write_lake(tmp_path / "lake", [*dataset(), *noise()])
    store = Store(data_dir)
    try:
        assert build_settled(store, 1800, today=date(2024, 5, 10)).built >= 2
        victim = spoil(next(iter(store.session_files.listing(SITE).values())).path)
    finally:
        store.close()
    q = open_queries(data_dir)
    assert _relation(q, SITE) == _from_events(q, SITE)
    assert victim.exists()


def test_an_empty_lake_has_a_typed_empty_relation(tmp_path: Path,
                                                  open_queries: Callable[..., Queries]) -> None:
    (tmp_path / "empty").mkdir()
    q = open_queries(tmp_path / "empty")
    table = q.sql("SELECT * FROM sessions")
    assert table.num_rows == 0 and table.column_names == COLUMNS
    assert q.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 0}]


def test_one_site_scopes_both_relations(queries: Queries) -> None:
    rows = queries.sql("SELECT (SELECT count(*) FROM sessions) AS s, (SELECT count(*) FROM events) AS e",
                       site=OTHER_SITE).to_pylist()
    assert rows == [{"s": 1, "e": 1}]


def test_statements_with_their_own_ctes_and_the_word_in_a_string(queries: Queries) -> None:
    own = queries.sql("WITH sessions AS (SELECT 1 AS x) SELECT x, 'sessions' AS word FROM sessions")
    assert own.to_pylist() == [{"x": 1, "word": "sessions"}]
    joined = queries.sql(
        "WITH firsts AS (SELECT entry_page, count(*) AS n FROM sessions WHERE site_id = ? GROUP BY ALL) "
        "SELECT f.entry_page, f.n, count(e.*) AS views FROM firsts f JOIN events e "
        "ON e.pathname = f.entry_page AND e.site_id = ? AND e.event_name = 'pageview' "
        "GROUP BY ALL ORDER BY f.entry_page", [SITE, SITE])
    assert {r["entry_page"]: r["n"] for r in joined.to_pylist()} == {"/": 3, "/docs": 1, "/pricing": 1,
                                                                     "/x": 1, "/old": 1}
    with pytest.raises(mallard.InvalidQueryError, match="SQL error"):
        queries.sql("SELECT no_such_column FROM sessions")


def test_sql_right_after_track_sees_the_buffer_and_open_sees_the_flush(tmp_path: Path) -> None:
    """The documented path: ``m.queries.sql`` includes what this process buffered; another reader
    (``mallard.open``) sees it once flushed."""
    now = datetime.now(UTC)
    with mallard.Mallard(data_dir=tmp_path / "d", flush_interval_secs=3600) as m:
        for path in ("/", "/pricing"):
            assert m.track("pageview", site=SITE, url=f"https://{SITE}{path}", ip="203.0.113.9",
                           user_agent=UA, timestamp=now)
        counts = "SELECT (SELECT count(*) FROM events) AS e, (SELECT count(*) FROM sessions) AS s, " \
                 "(SELECT sum(pageviews) FROM sessions) AS p"
        assert m.queries.sql(counts).to_pylist() == [{"e": 2, "s": 1, "p": 2}]
        analyst = mallard.open(tmp_path / "d")
        assert analyst.sql(counts).to_pylist() == [{"e": 0, "s": 0, "p": None}]
        m.flush()
        assert analyst.sql(counts).to_pylist() == [{"e": 2, "s": 1, "p": 2}]
        analyst.close()
