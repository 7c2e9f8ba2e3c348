"""The stored sessions relation (docs/storage.md) against sessions computed from raw events.

Generated traffic over six days (sessions across midnights, daily ids chained by ``visitor_id_prev``,
sessions longer than a day, visit attributes that change within a session) is written, its settled days'
sessions are stored, then the lake changes under them: late events into stored days, compaction,
erasure. After each step:

* the session rows a query reads (stored where fresh, computed for the rest: ``stored.gather``) equal,
  row for row, the sessions of the site's whole event history (``sessions.relation`` over every event,
  the definition) that start on the days asked;
* every session metric and event metric, by every visit dimension, filtered by a visit attribute and by
  an event condition, and as a time series, is the same from a store with sessions (and events
  attributed to them: attributed.py; and the visit rows: visits.py) as from a copy of its events alone
  (every answer computed from raw events; that path is checked against ClickHouse in
  test_sessions_chdb.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mallard._events import Event
from mallard._queries import Queries, backfill, freshness, stored
from mallard._queries.registry import DIMENSIONS
from mallard._queries.sessions import COLUMNS, relation
from mallard._queries.sql import Sql
from mallard._settings import Settings
from mallard._store import Store
from mallard._store.reader import READ_PARQUET

from .conftest import spoil

SITE = "stored.test"
GAP_S = 1800
GAP = timedelta(seconds=GAP_S)
FIRST = date(2024, 4, 28)
DAYS = [FIRST + timedelta(days=i) for i in range(6)]
LAST = DAYS[-1]
TODAY = LAST + timedelta(days=30)  # every day is settled
POOLS: dict[str, list[str | None]] = {
    "referrer_source": ["Google", "Bing", "ChatGPT", "(direct)", None],
    "referrer": ["https://a.example/x", None], "click_id": ["gclid", None, None],
    "hostname": ["a.example", "b.example", None],
    "utm_source": ["nl", "ads", None], "utm_medium": ["email", "cpc", None],
    "utm_campaign": ["spring", None],
    "utm_content": ["banner", None], "utm_term": ["ducks", None], "browser": ["Chrome", "Firefox"],
    "browser_version": ["120.0", "121.0"], "os": ["Linux", "iOS"], "os_version": ["17", None],
    "device_type": ["desktop", "mobile"], "screen_size": ["1920", "390", None],
    "country_code": ["DE", "US", None], "region": ["Bavaria", None], "city": ["Munich", None],
}
PATHS = ("/", "/a", "/b", "/pricing")
NAMES = ("pageview", "pageview", "pageview", "signup")
VISIT_DIMS = sorted(d for d, dim in DIMENSIONS.items() if dim.level == "visit")
ALL_METRICS = ["visitors", "pageviews", "events", "visits", "bounce_rate", "visit_duration",
               "views_per_visit"]
RANGES = [(DAYS[1], DAYS[3]), (DAYS[2], DAYS[2]), (DAYS[0], LAST)]


def _event(person: str, when: datetime, name: str, path: str, attrs: dict[str, str | None],
           long_ids: bool) -> Event:
    """As the tracker stores it: a daily id, and yesterday's id during the first window of a day."""
    day = when.date()
    carries = when - datetime.combine(day, datetime.min.time()) <= GAP

    def vid(d: date) -> str:
        text = f"{person}-{d}"
        return (text.encode().hex() * 8)[:64] if long_ids else text  # 64 hex digits, like mallard's

    return Event(site_id=SITE, visitor_id=vid(day), timestamp=when, event_name=name, pathname=path,
                 visitor_id_prev=vid(day - timedelta(days=1)) if carries else None,
                 revenue_amount=Decimal("9.50") if name == "signup" else None, **attrs)


@st.composite
def traffic(draw: st.DrawFn, tag: str = "p") -> list[Event]:
    """1-6 people; each a run of events with gaps around the session window, some across midnights
    and some longer than a day (an event every 25 minutes)."""
    out: list[Event] = []
    long_ids = draw(st.booleans())
    attrs = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in POOLS.items()})
    for p in range(draw(st.integers(1, 6))):
        day = draw(st.sampled_from(DAYS))
        t = datetime.combine(day, datetime.min.time()) + timedelta(
            seconds=draw(st.sampled_from([-GAP_S, -60, -1, 0, 1, 600, 12 * 3600, 86_399])))
        marathon = draw(st.integers(0, 9)) == 0
        n = 70 if marathon else draw(st.integers(1, 7))
        for i in range(n):
            if i:
                t += timedelta(seconds=1500 if marathon else draw(st.sampled_from(
                    [0, 1, GAP_S - 1, GAP_S, GAP_S + 1, 3 * 3600])))
            if not FIRST <= t.date() <= LAST:
                break
            out.append(_event(f"{tag}{p}", t, draw(st.sampled_from(NAMES)), draw(st.sampled_from(PATHS)),
                              draw(attrs), long_ids))
    return out


# -- the two answers -------------------------------------------------------------------------------
def _queries(data_dir: Path, store: Store | None = None) -> Queries:
    store = store or Store(data_dir, read_only=True)
    return Queries(store, Settings(data_dir=data_dir), clock=lambda: datetime(2024, 6, 1))


def _raw_copy(data_dir: Path, target: Path) -> Path:
    """The events of ``data_dir`` alone (no stored sessions): every answer computed from events."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(data_dir / "events", target / "events")
    return target


def _answers(q: Queries, dims: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lo, hi in RANGES:
        rng = {"start_date": lo, "end_date": hi}
        out[f"main {lo}"] = q.query(SITE, metrics=ALL_METRICS, **rng).rows
        for dim in dims:
            out[f"{dim} {lo}"] = q.query(SITE, metrics=ALL_METRICS, dimensions=[dim], **rng).rows
            # event metrics alone (the Sources panel): the visit rows where the dimension is rolled
            out[f"{dim} events {lo}"] = q.query(SITE, metrics=["visitors", "pageviews", "events"],
                                                dimensions=[dim], **rng).rows
        out[f"source|source {lo}"] = q.query(SITE, metrics=["visitors", "pageviews"],
                                             dimensions=["visit:source"],
                                             filters=[["is_not", "visit:source", ["Bing"]]], **rng).rows
        visit = [["is", "visit:source", ["Google"]]]
        out[f"series|source {lo}"] = q.query(SITE, metrics=["visitors", "pageviews", "visits"],
                                              dimensions=["time:day"], filters=visit, **rng).rows
        out[f"pages|source {lo}"] = q.query(SITE, metrics=["visitors", "pageviews"],
                                             dimensions=["event:page"], filters=visit, **rng).rows
        out[f"sessions|page {lo}"] = q.query(SITE, metrics=["visits", "bounce_rate", "visit_duration"],
                                              filters=[["is", "event:page", ["/pricing"]]], **rng).rows
        out[f"revenue {lo}"] = q.query(SITE, metrics=["visitors", "total_revenue"],
                                        dimensions=["visit:country"], **rng).rows
        places = [*visit, ["is", "visit:country", ["DE"]]]  # visit columns beyond the attribution ones
        out[f"main|source+country {lo}"] = q.query(SITE, metrics=ALL_METRICS, filters=places, **rng).rows
        out[f"series|source+country {lo}"] = q.query(SITE, metrics=["visitors", "pageviews", "visits"],
                                                      dimensions=["time:day"], filters=places, **rng).rows
        both = [*visit, ["is", "event:page", ["/pricing", "/a"]]]  # a session's source and its events
        for name, f in (("source", visit), ("source+page", both)):  # identities selected: selection.py
            out[f"flow|{name} {lo}"] = q.flow(SITE, "/", filters=f, **rng).to_dict()
            out[f"retention|{name} {lo}"] = q.retention(SITE, weeks=2, filters=f, **rng).to_dict()
    return out


def _rows_by_definition(store: Store) -> list[tuple[Any, ...]]:
    """Every session of the site's whole event history, by the definition (sessions.relation)."""
    files = store.lake.files(SITE, None, None)
    if not files:
        return []
    events = Sql(f"SELECT * FROM {READ_PARQUET} WHERE site_id = ?", (files, SITE))
    sql = Sql("SELECT * FROM (") + relation(GAP_S, events) + ") ORDER BY ALL"
    return [tuple(r) for r in store.connection().execute(sql.text, sql.params).fetchall()]


def _rows_gathered(store: Store) -> tuple[list[tuple[Any, ...]], stored.SessionRows]:
    got = stored.gather(store, store.reading, SITE, FIRST, LAST, GAP_S)
    con = store.connection()
    if got.live is not None:
        con.register(got.view, got.live)
    try:
        rel = got.relation()
        cols = ", ".join(COLUMNS)
        sql = Sql(f"SELECT {cols} FROM (") + rel + ") ORDER BY ALL"
        rows = [tuple(r) for r in con.execute(sql.text, sql.params).fetchall()]
    finally:
        if got.live is not None:
            con.unregister(got.view)
    return rows, got


def _events_of(store: Store) -> tuple[tuple[Any, ...], ...]:
    """Every event row of the lake, in order: what the raw answers depend on."""
    files = store.lake.files(SITE, None, None)
    if not files:
        return ()
    sql = f"SELECT * FROM {READ_PARQUET} ORDER BY ALL"
    return tuple(tuple(r) for r in store.connection().execute(sql, [files]).fetchall())


#: The raw answers of the last step checked, by its events and dimensions: a step that leaves the events
#: as they were (a compaction, a build) is compared with them without answering them again.
_RAW: dict[tuple[Any, ...], dict[str, Any]] = {}


def _raw_answers(store: Store, work: Path, dims: list[str]) -> dict[str, Any]:
    key = (_events_of(store), tuple(dims))
    if key not in _RAW:
        raw = _queries(_raw_copy(store.data_dir, work / "raw"))
        try:
            answers = _answers(raw, dims)
        finally:
            raw.close()
        _RAW.clear()
        _RAW[key] = answers
    return _RAW[key]


def _check(store: Store, work: Path, step: str, dims: list[str]) -> None:
    q = _queries(store.data_dir, store)
    rows = _rows_gathered(store)[0]
    assert rows == _rows_by_definition(store), f"{step}: session rows differ from the definition"
    mine, theirs = _answers(q, dims), _raw_answers(store, work, dims)
    for key in theirs:
        assert mine[key] == theirs[key], f"{step}: {key}"


def compact_and_erase(store: Store, workdir: Path, dims: list[str], compact: bool,
                      erase: date | None) -> None:
    """Compact the lake, then erase a day (each when asked), checking every answer after each; an
    erased day leaves no derived partition that read it."""
    if compact:
        store.compact(min_files=2, target_bytes=1 << 30)
        _check(store, workdir, "compacted", dims)
    if erase is not None:
        store.erase(SITE, erase, erase)
        _check(store, workdir, "erased", dims)
        for derived in (store.session_files, store.attributed_files, store.visit_files):
            assert not any(p.first <= erase <= p.last for p in derived.listing(SITE).values())


@pytest.mark.slow
@pytest.mark.heavy
@pytest.mark.timeout(900)  # 10 examples of build, late events, compact and erase: minutes on a busy host
@settings(max_examples=10, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(first=traffic("p"), late=traffic("q"), erase=st.sampled_from([None, *DAYS]),
       compact=st.booleans(), dims=st.lists(st.sampled_from(VISIT_DIMS), min_size=2, max_size=4,
                                            unique=True))
def test_stored_sessions_equal_the_raw_answer(workdir: Path, first: list[Event], late: list[Event],
                                               erase: date | None, compact: bool,
                                               dims: list[str]) -> None:
    """Each step: the gathered rows equal the definition; every answer equals the raw one (the
    dimensions drawn among the visit dimensions; test_every_visit_dimension covers them all)."""
    data = workdir / "data"
    if data.exists():
        shutil.rmtree(data)
    store = Store(data)
    try:
        if first:
            store.write_batch(first)()
        built = backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60).built
        assert built == len(store.lake.dates(SITE))  # every day with events is stored
        _check(store, workdir, "built", dims)
        used = _rows_gathered(store)[1]
        assert not used.live_days, "fresh partitions are read, not recomputed"
        assert sorted(store.attributed_files.listing(SITE)) == store.lake.dates(SITE)
        assert sorted(store.visit_files.listing(SITE)) == store.lake.dates(SITE)

        if late:  # late events into stored days: those days and their neighbours go stale
            store.write_batch(late)()
            stale = {e.timestamp.date() for e in late}
            live = _rows_gathered(store)[1].live_days
            assert stale & set(store.lake.dates(SITE)) <= live
            _check(store, workdir, "late", dims)
        compact_and_erase(store, workdir, dims, compact, erase)
        backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60)
        _check(store, workdir, "rebuilt", dims)
    finally:
        store.close()


def _fixed_traffic(minutes: tuple[int, ...], n: int) -> list[Event]:
    """One person per start (minutes from the second day's midnight), ``n`` events 20 minutes apart,
    cycling through names, paths and every pool of attributes."""
    starts = [datetime.combine(DAYS[1], datetime.min.time()) + timedelta(minutes=m) for m in minutes]
    return [_event(f"v{i}", t + timedelta(minutes=j * 20), NAMES[(i + j) % 4], PATHS[j % 4],
                   {k: v[(i + j) % len(v)] for k, v in POOLS.items()}, bool(i % 2))
            for i, t in enumerate(starts) for j in range(n)]


@pytest.mark.slow
def test_every_visit_dimension(workdir: Path) -> None:
    """All visit dimensions at once, on fixed traffic: stored and raw answers agree."""
    events = _fixed_traffic((-20, -5, 10, 50, 600, 1430), 4)
    store = Store(workdir / "data")
    try:
        store.write_batch(events)()
        assert backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60).built == 3
        _check(store, workdir, "built", VISIT_DIMS)
    finally:
        store.close()


@pytest.mark.slow
def test_two_writer_processes_and_a_builder(workdir: Path) -> None:
    """Two real processes write events of the same visitors into the same days while this one stores
    sessions over and over: whatever it stored is either fresh and equal to the definition, or detected
    as stale; at the end, rebuilt, every answer equals the raw one."""
    data = workdir / "data"
    store = Store(data)
    root = Path(__file__).resolve().parents[2]
    writers = [subprocess.Popen([sys.executable, "-m", "tests.procs.session_writer", str(data), str(seed),
                                 "40"], cwd=root, stdout=subprocess.PIPE, text=True)
               for seed in (1, 2)]
    try:
        rounds = 0
        deadline = time.monotonic() + 300  # a hang guard: the writers take seconds
        while any(w.poll() is None for w in writers) or rounds < 2:
            backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60)
            rows = _rows_gathered(store)[0]
            # The listing may change between the two readings: compare only when it did not.
            before = store.lake.files(SITE, None, None)
            definition = _rows_by_definition(store)
            if store.lake.files(SITE, None, None) == before and _rows_gathered(store)[0] == rows:
                assert rows == definition, f"round {rounds}"
            rounds += 1
            assert time.monotonic() < deadline, f"the writers did not finish ({rounds} rounds)"
        outs = [w.communicate(timeout=60)[0] for w in writers]
        assert all(w.returncode == 0 for w in writers), outs
        assert all(o.startswith("done ") and int(o.split()[1]) > 0 for o in outs), outs
        backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60)
        assert not _rows_gathered(store)[1].live_days
        _check(store, workdir, "after the writers", VISIT_DIMS[:6])
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
            w.communicate()  # reaps it and closes its pipe
        store.close()


def test_a_pass_near_written_partitions_builds_only_their_neighbours(workdir: Path) -> None:
    """Maintenance's pass after a flush looks at the days whose sessions or attributed events can depend
    on what was written (the day before, the day, the two days after), not at the whole lake; a
    settled-day cutoff holds; a day's attributed events wait for the sessions of the day before."""
    store = Store(workdir / "data")
    try:
        store.write_batch([_event(f"n{i}", datetime.combine(d, datetime.min.time()) + timedelta(hours=9),
                                  "pageview", "/", {}, False) for i, d in enumerate(DAYS)])()
        near = backfill.build_settled(store, GAP_S, today=TODAY, near=[(SITE, DAYS[2])])
        assert (near.built, near.complete) == (4, True)
        assert sorted(store.session_files.listing(SITE)) == DAYS[1:5]
        assert sorted(store.attributed_files.listing(SITE)) == DAYS[2:5]  # not DAYS[1]: DAYS[0] has none
        cutoff = backfill.build_settled(store, GAP_S, today=DAYS[4])  # DAYS[3] is not settled yet
        assert cutoff.built == 2 and sorted(store.session_files.listing(SITE)) == DAYS[0:5]
        assert sorted(store.attributed_files.listing(SITE)) == DAYS[0:5]
        with store.exclusive("sessions.lock"):  # another process is building
            assert not backfill.build_settled(store, GAP_S, today=TODAY).complete
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("read_only", [False, True])
def test_an_unreadable_sessions_file_is_not_fatal(workdir: Path, read_only: bool) -> None:
    """A damaged stored sessions file: the answer is computed from events (the same as raw), and a
    writable store deletes the file, so that maintenance builds it again."""
    events = [_event(f"u{i}", datetime.combine(d, datetime.min.time()) + timedelta(hours=9, minutes=m),
                     "pageview", PATHS[m % 4], {"referrer_source": "Google"}, True)
              for i, d in enumerate(DAYS) for m in (0, 10, 50)]
    data = workdir / "data"
    store = Store(data)
    try:
        store.write_batch(events)()
        backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60)
        raw = _queries(_raw_copy(data, workdir / "raw"))
        expected = _answers(raw, ["visit:source", "visit:entry_page"])
        raw.close()
        victim = spoil(store.session_files.listing(SITE)[DAYS[2]].path)
    finally:
        store.close()
    reader = Store(data, read_only=read_only)
    try:
        q = _queries(data, reader)
        assert _answers(q, ["visit:source", "visit:entry_page"]) == expected
        assert victim.exists() == read_only
    finally:
        reader.close()


@pytest.mark.slow
def test_sessions_stored_in_the_previous_format_are_rebuilt(workdir: Path) -> None:
    """Sessions files of the previous format (format 1: no ``channel``, ``entry_page_hostname``,
    ``exit_page_hostname``; a fingerprint of the files and the window alone, as the previous version
    wrote them) are never read: queries compute their days from events, and a build pass replaces them
    with files of the current format."""
    events = _fixed_traffic((-20, 10, 600, 1430), 3)
    store = Store(workdir / "data")
    try:
        store.write_batch(events)()
        days = store.lake.dates(SITE)
        for day in days:  # what the previous version stored
            done = stored.compute(store, store.reading, SITE, {day}, GAP_S)
            old = done.table.drop_columns(["channel", "entry_page_hostname", "exit_page_hostname"])
            assert store.session_files.publish(SITE, day, old, done.files, done.first, done.last, GAP_S)
        assert set(store.session_files.listing(SITE)) == set(days)
        rows, used = _rows_gathered(store)
        assert used.live_days == set(days), "a file of the previous format was read"
        assert rows == _rows_by_definition(store)
        _check(store, workdir, "previous format", ["visit:channel", "visit:entry_page_hostname",
                                                   "visit:exit_page_hostname", "visit:source"])
        assert backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60).built == len(days)
        rows, used = _rows_gathered(store)
        assert not used.live_days and rows == _rows_by_definition(store)
        for part in store.session_files.listing(SITE).values():
            assert {"channel", "entry_page_hostname", "exit_page_hostname"} <= set(
                pq.read_schema(part.path).names)
    finally:
        store.close()


@pytest.mark.slow
def test_requests_that_miss_the_same_open_days_at_once_compute_them_once(workdir: Path) -> None:
    """Four threads ask the live cache for the same unstored days at the same moment: one computes,
    the others wait for it and get the very same rows; a later change of the lake's files is a new
    computation. A computation that fails is not waited on forever: the next caller computes."""
    import threading

    store = Store(workdir / "data")
    try:
        store.write_batch(_fixed_traffic((-20, 10, 600), 3))()
        cache = freshness.LiveCache()
        version = stored._sessions.version(GAP_S)
        days = {DAYS[1]}
        calls: list[int] = []
        go = threading.Barrier(4)

        def run() -> freshness.Computed:
            calls.append(1)
            time.sleep(0.3)  # long enough for the other three to arrive while it runs
            return stored.compute(store, store.reading, SITE, days, GAP_S)

        got: list[freshness.Computed] = []

        def ask() -> None:
            go.wait(timeout=30)
            got.append(cache.computed("k", store, version, set(), run))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(calls) == 1 and len(got) == 4 and all(g is got[0] for g in got)
        assert got[0].table.num_rows > 0
        store.write_batch(_fixed_traffic((15,), 2))()  # a new file on those days: stale
        assert cache.computed("k", store, version, set(), run) is not got[0] and len(calls) == 2

        def fail() -> freshness.Computed:
            raise RuntimeError("the query was interrupted")

        with pytest.raises(RuntimeError):
            cache.computed("other", store, version, set(), fail)
        assert cache.computed("other", store, version, set(), run).table.num_rows > 0
    finally:
        store.close()


def test_requests_that_miss_the_same_fact_at_once_establish_it_once() -> None:
    """The parts of a dashboard view check the same rollups at the same moment: one establishes the
    fact, the others wait and get its value; one that fails leaves it to the next caller."""
    import threading

    cache = freshness.LiveCache()
    calls: list[int] = []
    go = threading.Barrier(4)

    def establish() -> bool:
        calls.append(1)
        time.sleep(0.3)  # long enough for the other three to arrive while it runs
        return False

    got: list[bool] = []

    def ask() -> None:
        go.wait(timeout=30)
        got.append(cache.fact("k", establish))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert calls == [1] and got == [False] * 4
    assert cache.fact("k", establish) is False and calls == [1]

    def fail() -> bool:
        raise RuntimeError("the query was interrupted")

    with pytest.raises(RuntimeError):
        cache.fact("other", fail)
    assert cache.fact("other", lambda: True) is True
