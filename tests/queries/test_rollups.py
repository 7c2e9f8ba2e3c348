"""The per-day rollups (docs/storage.md#rollups) against the same questions answered from raw events.

Generated traffic over five days (daily visitor ids; sometimes an event tracked with another day's
timestamp, so that one id occurs on two days) is written, its settled days' rollups are stored, then the
lake changes under them: late events, compaction, erasure. After each step every unfiltered question the
rollups answer (totals, a daily and a monthly series, every rolled dimension; visitors, pageviews, events,
revenue, views per visitor) equals plain SQL over the events; when an id occurs on two days of a range
the rollups are not used for it.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mallard._events import Event
from mallard._queries import Queries, backfill, rollups
from mallard._queries.periods import DateRange
from mallard._queries.registry import DIMENSIONS
from mallard._settings import Settings
from mallard._store import Store
from mallard._store.reader import READ_PARQUET

from .conftest import spoil

SITE = "rollups.test"
FIRST = date(2024, 4, 28)
DAYS = [FIRST + timedelta(days=i) for i in range(5)]
LAST = DAYS[-1]
TODAY = LAST + timedelta(days=30)  # every day is settled
RANGES = [(DAYS[0], LAST), (DAYS[1], DAYS[3]), (DAYS[2], DAYS[2])]
METRICS = ["visitors", "pageviews", "events", "total_revenue", "views_per_visitor"]
POOLS: dict[str, list[str | None]] = {
    "pathname": ["/", "/a", "/pricing"], "hostname": ["a.example", None],
    "browser": ["Chrome", "Firefox", None], "browser_version": ["120.0", None], "os": ["Linux", "iOS"],
    "os_version": ["17", None], "device_type": ["desktop", "mobile"], "screen_size": ["390", None],
    "country_code": ["DE", "US", None], "region": ["Bavaria", None], "city": ["Munich", None],
    # custom properties: keys with values, a null value, a key no query can name, JSON that is no object
    "props": [None, '{"plan":"pro"}', '{"plan":"free","seats":3}', '{"plan":null}', '{"seats":"3"}',
              '{"odd\\"key":"x","plan":"pro"}', "[1,2]"],
}
#: Filters on a property that drop the events without it (the rollups answer) or keep them (events).
PROP_FILTERS: list[list[Any]] = [
    [["is_not", "event:props:plan", ["(unknown)"]]], [["is", "event:props:plan", ["pro", "free"]]],
    [["contains", "event:props:plan", ["R"], {"case_sensitive": False}]],
    [["and", [["is_not", "event:props:plan", ["free"]], ["is_not", "event:props:plan", ["(unknown)"]]]]],
    [["is_not", "event:props:plan", ["free"]]], [["not", ["is", "event:props:plan", ["(unknown)"]]]],
]


@st.composite
def traffic(draw: st.DrawFn, tag: str) -> list[Event]:
    """People with a few events each, on their day's id; one in four also has an event on another day
    under the same id (as an event tracked with a ``timestamp`` of another day is)."""
    out: list[Event] = []
    for p in range(draw(st.integers(1, 8))):
        day = draw(st.sampled_from(DAYS))
        vid = f"{tag}{p}-{day}"
        stray = draw(st.sampled_from([None, None, None, *DAYS]))
        for i in range(draw(st.integers(1, 4))):
            when = datetime.combine(stray if stray and i == 0 else day, datetime.min.time()) + timedelta(
                seconds=draw(st.sampled_from([0, 1, 3600, 86_399])))
            name = draw(st.sampled_from(["pageview", "pageview", "signup"]))
            attrs = {k: draw(st.sampled_from(v)) for k, v in POOLS.items()}
            out.append(Event(site_id=SITE, visitor_id=vid, timestamp=when, event_name=name,
                             revenue_amount=Decimal("4.25") if name == "signup" else None,
                             **attrs))  # type: ignore[arg-type]
    return out


def _queries(store: Store) -> Queries:
    return Queries(store, Settings(data_dir=store.data_dir), clock=lambda: datetime(2024, 6, 1))


def _from_events(store: Store, lo: date, hi: date, column: str | None, bucket: str | None,
                 tz: str = "UTC") -> list[Any]:
    """The answer by plain SQL over the site's event files."""
    files = store.lake.files(SITE, None, None)
    if not files:
        return []
    keys = [f"strftime(date_trunc('{bucket}', timestamp), '%Y-%m-%d')"] if bucket else []
    if column:
        keys.append(f"coalesce({column}, '(unknown)')")
    select = ", ".join([*keys, "count(DISTINCT visitor_id)",
                        "count(*) FILTER (WHERE event_name = 'pageview')", "count(*)", "sum(revenue_amount)",
                        "coalesce(count(*) FILTER (WHERE event_name = 'pageview') / "
                        "nullif(count(DISTINCT visitor_id), 0), 0)"])
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""
    sql = (f"SELECT {select} FROM {READ_PARQUET} WHERE site_id = ? AND timestamp >= ? AND timestamp < ?"
           + group)
    lower, upper = DateRange(lo, hi, tz).bounds()
    rows = store.connection().execute(sql, [files, SITE, lower, upper]).fetchall()
    return sorted(tuple(r) for r in rows if r[len(keys) + 2])


def _answer(q: Queries, lo: date, hi: date, dim: str | None, bucket: str | None,
            tz: str = "UTC") -> list[Any]:
    dims = ([f"time:{bucket}"] if bucket else []) + ([dim] if dim else [])
    rows = q.query(SITE, metrics=METRICS, dimensions=dims, start_date=lo, end_date=hi, timezone=tz).rows
    # revenue (tracked here without a currency, so in XXX) is a Revenue: its amount is compared
    out = [tuple(r[d] for d in dims) + tuple(getattr(r[m], "value", r[m]) for m in METRICS) for r in rows]
    return sorted(r for r in out if r[len(dims) + 2])  # zero-filled buckets, an empty total: no events


def _check(store: Store, step: str, q: Queries | None = None) -> None:
    q = q or _queries(store)
    for lo, hi in RANGES:
        for dim in [None, *rollups.DIMENSIONS]:
            column = DIMENSIONS[dim].column if dim else None
            assert _answer(q, lo, hi, dim, None) == _from_events(store, lo, hi, column, None), \
                f"{step}: {dim} {lo}..{hi}"
        for bucket in ("day", "month"):
            assert _answer(q, lo, hi, None, bucket) == _from_events(store, lo, hi, None, bucket), \
                f"{step}: by {bucket} {lo}..{hi}"
        for tz in ("Asia/Tokyo", "America/New_York"):  # days that are not UTC days: ends from events
            for dim in (None, "event:page", "visit:country"):
                column = DIMENSIONS[dim].column if dim else None
                assert _answer(q, lo, hi, dim, None, tz) == _from_events(store, lo, hi, column, None, tz), \
                    f"{step}: {dim} {lo}..{hi} in {tz}"


def _props_from_events(store: Store, lo: date, hi: date, filters: list[Any]) -> list[Any]:
    """The breakdown by ``event:props:plan`` under ``filters`` (of the PROP_FILTERS shapes), by plain
    SQL over the site's event files."""
    value = "json_extract_string(props, '$.\"plan\"')"
    kept = {json.dumps(PROP_FILTERS[0]): f"{value} IS NOT NULL",
            json.dumps(PROP_FILTERS[1]): f"{value} IN ('pro', 'free')",
            json.dumps(PROP_FILTERS[2]): f"contains(lower({value}), 'r')",
            json.dumps(PROP_FILTERS[3]): f"{value} IS NOT NULL AND {value} <> 'free'",
            json.dumps(PROP_FILTERS[4]): f"coalesce({value} <> 'free', true)",
            json.dumps(PROP_FILTERS[5]): f"{value} IS NOT NULL"}[json.dumps(filters)]
    files = store.lake.files(SITE, None, None)
    if not files:
        return []
    sql = (f"SELECT coalesce({value}, '(unknown)'), count(DISTINCT visitor_id), "
           "count(*) FILTER (WHERE event_name = 'pageview'), count(*) "
           f"FROM (SELECT * FROM {READ_PARQUET} WHERE site_id = ? AND timestamp >= ? AND timestamp < ? "
           "AND (props IS NULL OR json_valid(props))) "
           f"WHERE {kept} GROUP BY 1")
    lower, upper = DateRange(lo, hi).bounds()
    return sorted(tuple(r) for r in store.connection().execute(sql, [files, SITE, lower, upper]).fetchall())


def _keys_from_events(store: Store, lo: date, hi: date) -> list[Any]:
    """The property keys with their visitors and events, by plain SQL over the site's event files."""
    files = store.lake.files(SITE, None, None)
    if not files:
        return []
    sql = (f"SELECT key, count(DISTINCT visitor_id), count(*) FROM (SELECT visitor_id, "
           f"unnest(json_keys(props)) AS key FROM {READ_PARQUET} WHERE site_id = ? AND timestamp >= ? "
           "AND timestamp < ? AND json_valid(props)) GROUP BY key")
    lower, upper = DateRange(lo, hi).bounds()
    return sorted(tuple(r) for r in store.connection().execute(sql, [files, SITE, lower, upper]).fetchall())


def _check_props(store: Store, step: str) -> None:
    q = _queries(store)
    for lo, hi in RANGES:
        for filters in PROP_FILTERS:
            rows = q.query(SITE, metrics=["visitors", "pageviews", "events"], dimensions=["event:props:plan"],
                           filters=filters, start_date=lo, end_date=hi).rows
            got = sorted((r["event:props:plan"], r["visitors"], r["pageviews"], r["events"]) for r in rows)
            assert got == _props_from_events(store, lo, hi, filters), f"{step}: {filters} {lo}..{hi}"
        keys = q.properties(SITE, start_date=lo, end_date=hi, limit=100).rows
        got_keys = sorted((r["key"], r["visitors"], r["events"]) for r in keys)
        assert got_keys == _keys_from_events(store, lo, hi), f"{step}: property keys {lo}..{hi}"


def _day_local(store: Store, lo: date, hi: date) -> bool:
    sql = (f"SELECT count(*) = 0 FROM (SELECT visitor_id FROM {READ_PARQUET} WHERE site_id = ? AND "
           "timestamp::DATE BETWEEN ? AND ? GROUP BY visitor_id HAVING count(DISTINCT timestamp::DATE) > 1)")
    files = store.lake.files(SITE, None, None)
    return not files or bool(store.connection().execute(sql, [files, SITE, lo, hi]).fetchall()[0][0])


def _rollup_rows(store: Store, lo: date, hi: date) -> rollups.RollupRows | None:
    """The rows a query of the visitors by page over [lo, hi] reads (None: it reads the events)."""
    with store.reading(SITE, lo, hi) as reader:
        got = rollups.for_query(store, store.reading, reader, SITE, datetime.combine(lo, datetime.min.time()),
                                datetime.combine(hi + timedelta(days=1), datetime.min.time()), "event:page",
                                cache=None)
        return got if got is not None and rollups.day_local(reader, got) else None


@pytest.mark.slow
@pytest.mark.heavy
@pytest.mark.timeout(900)  # 12 examples of build, compact, erase and rebuild: up to ~400 s on a busy host
@settings(max_examples=12, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(first=traffic("p"), late=traffic("q"), erase=st.sampled_from([None, *DAYS]), compact=st.booleans())
def test_rollups_equal_the_raw_answer(workdir: Path, first: list[Event], late: list[Event],
                                      erase: date | None, compact: bool) -> None:
    data = workdir / "data"
    if data.exists():
        shutil.rmtree(data)
    store = Store(data)
    try:
        store.write_batch(first)()
        backfill.build_settled(store, 1800, today=TODAY, budget_secs=60)
        assert sorted(store.rollup_files.listing(SITE)) == store.lake.dates(SITE)
        _check(store, "built")
        _check_props(store, "built")
        for lo, hi in RANGES:  # the rollups serve exactly the ranges with days whose ids are day-local
            got = _rollup_rows(store, lo, hi)
            days = [d for d in store.lake.dates(SITE) if lo <= d <= hi]
            assert (got is not None) == (bool(days) and _day_local(store, lo, hi)), (lo, hi)
            assert got is None or not got.live_days, "fresh partitions are read, not recomputed"
        store.write_batch(late)()  # late events: their days go stale
        stale = {e.timestamp.date() for e in late}
        got = _rollup_rows(store, FIRST, LAST)
        assert got is None or stale <= got.live_days
        for lo, hi in RANGES:  # the same with days computed now (checked apart from the stored ones)
            kept = [d for d in store.lake.dates(SITE) if lo <= d <= hi and d not in stale]
            assert (_rollup_rows(store, lo, hi) is not None) == (bool(kept) and _day_local(store, lo, hi))
        _check(store, "late")
        _check_props(store, "late")
        if compact:
            store.compact(min_files=2, target_bytes=1 << 30)
            _check(store, "compacted")
            _check_props(store, "compacted")
        if erase is not None:
            store.erase(SITE, erase, erase)
            assert erase not in store.rollup_files.listing(SITE)
            _check(store, "erased")
            _check_props(store, "erased")
        backfill.build_settled(store, 1800, today=TODAY, budget_secs=60)
        _check(store, "rebuilt")
        _check_props(store, "rebuilt")
    finally:
        store.close()


def _steady(store: Store) -> None:
    store.write_batch([Event(site_id=SITE, visitor_id=f"v{i}-{d}", event_name="pageview", pathname="/",
                             timestamp=datetime.combine(d, datetime.min.time()) + timedelta(hours=i))
                       for d in DAYS for i in range(3)])()


@pytest.mark.slow
def test_a_stale_day_is_computed_and_an_id_on_two_days_turns_the_rollups_off(workdir: Path) -> None:
    store = Store(workdir / "data")
    try:
        _steady(store)
        backfill.build_settled(store, 1800, today=TODAY)
        got = _rollup_rows(store, FIRST, LAST)
        assert got is not None and len(got.files) == 5 and not got.live_days
        # a range in Tokyo: its end days' parts are computed, the UTC days inside it read
        lower, upper = DateRange(DAYS[1], DAYS[3], "Asia/Tokyo").bounds()
        with store.reading(SITE, DAYS[0], DAYS[3]) as reader:
            tokyo = rollups.for_query(store, store.reading, reader, SITE, lower, upper, "", cache=None)
        assert tokyo is not None and tokyo.live_days == {DAYS[0], DAYS[3]} and len(tokyo.files) == 2
        q = _queries(store)
        assert q.main(SITE, start_date=DAYS[1], end_date=DAYS[3], timezone="Asia/Tokyo")[
            "unique_visitors"] == 9  # 15:00 UTC to 15:00 UTC: hours 0-2 of DAYS[1..3]
        assert q.main(SITE, start_date=FIRST, end_date=LAST)["unique_visitors"] == 15
        # a new visitor on day 2: that day is computed, the others still read
        store.write_batch([Event(site_id=SITE, visitor_id="new", event_name="pageview", pathname="/b",
                                 timestamp=datetime.combine(DAYS[2], datetime.min.time()))])()
        got = _rollup_rows(store, FIRST, LAST)
        assert got is not None and got.live_days == {DAYS[2]} and len(got.files) == 4
        assert q.main(SITE, start_date=FIRST, end_date=LAST)["unique_visitors"] == 16
        # day 0's visitor v0 again on day 3 (a tracked timestamp): one visitor over both days
        store.write_batch([Event(site_id=SITE, visitor_id=f"v0-{FIRST}", event_name="pageview",
                                 pathname="/", timestamp=datetime.combine(DAYS[3], datetime.min.time()))])()
        assert _rollup_rows(store, FIRST, LAST) is None
        assert _rollup_rows(store, DAYS[1], DAYS[3]) is not None  # day 0 is not in this range
        assert q.main(SITE, start_date=FIRST, end_date=LAST)["unique_visitors"] == 16
        assert q.breakdown(SITE, "pages", start_date=FIRST, end_date=LAST).rows[0] == {
            "value": "/", "visitors": 15, "pageviews": 16}
    finally:
        store.close()


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize("asked", ["breakdown", "properties"])
def test_an_unreadable_rollup_file_is_not_fatal(workdir: Path, read_only: bool, asked: str) -> None:
    """A breakdown (the query engine) and the property list (properties.py) answer from events, and the
    file is deleted unless the store is read-only."""
    data = workdir / "data"
    store = Store(data)
    try:
        _steady(store)
        store.write_batch([Event(site_id=SITE, visitor_id="p1", event_name="Signup", pathname="/",
                                 timestamp=datetime.combine(DAYS[1], datetime.min.time()),
                                 props='{"plan":"pro"}')])()
        backfill.build_settled(store, 1800, today=TODAY)
        victim = spoil(store.rollup_files.listing(SITE)[DAYS[1]].path)
    finally:
        store.close()
    reader = Store(data, read_only=read_only)
    try:
        q = _queries(reader)
        if asked == "breakdown":
            assert q.breakdown(SITE, "pages", start_date=FIRST, end_date=LAST).rows == [
                {"value": "/", "visitors": 16, "pageviews": 15}]
        else:
            assert q.properties(SITE, start_date=FIRST, end_date=LAST).rows == [
                {"key": "plan", "visitors": 1, "events": 1}]
        assert victim.exists() == read_only
    finally:
        reader.close()


def test_retention_deletes_rollups(workdir: Path) -> None:
    store = Store(workdir / "data")
    try:
        _steady(store)
        backfill.build_settled(store, 1800, today=TODAY)
        store.apply_retention(2, DAYS[3])  # keeps DAYS[1] and later
        assert sorted(store.rollup_files.listing(SITE)) == DAYS[1:]
    finally:
        store.close()


def test_ids_living_longer_than_a_day_do_not_try_the_rollups(workdir: Path) -> None:
    """With ``visitor_salt_rotation_days`` > 1 an id spans days by construction: queries read the
    events without looking at the rollups (a damaged one is not even noticed)."""
    store = Store(workdir / "data")
    try:
        _steady(store)
        backfill.build_settled(store, 1800, today=TODAY)
        victim = spoil(store.rollup_files.listing(SITE)[DAYS[1]].path)
        q = Queries(store, Settings(data_dir=store.data_dir, visitor_salt_rotation_days=7))
        assert q.main(SITE, start_date=FIRST, end_date=LAST)["unique_visitors"] == 15
        assert victim.exists()
        assert _queries(store).main(SITE, start_date=FIRST, end_date=LAST)["unique_visitors"] == 15
        assert not victim.exists()  # daily ids: read, found damaged, deleted
    finally:
        store.close()
