"""Funnels and sequence conversion (§5.2, §5.4): hand-computed cases, validation, injection safety, and a
differential test against ClickHouse's ``windowFunnel(window, 'strict_once')`` run in chdb."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mallard._errors import InvalidQueryError
from mallard._events import Event
from mallard._queries import Queries
from mallard._queries.funnels import (
    Step,
    compile_funnel,
    funnel,
    parse_steps,
    parse_window,
    sequences,
)
from mallard._queries.periods import DateRange
from mallard._queries.sql import Sql
from mallard._store import Store

from . import chdb_oracle
from .conftest import QueriesFactory, spoil
from .data import OTHER_SITE, SITE, event

DAY = DateRange(date(2024, 5, 1), date(2024, 5, 1))
TWO_DAYS = DateRange(date(2024, 5, 1), date(2024, 5, 2))
T0 = "2024-05-01 10:00:00"
MakeQueries = Callable[..., Queries]


def at(seconds: float, micros: int = 0) -> str:
    """The timestamp ``seconds`` (+ ``micros`` µs) after 2024-05-01 10:00:00, as text."""
    t = datetime(2024, 5, 1, 10) + timedelta(seconds=seconds, microseconds=micros)
    return t.isoformat(sep=" ")


def reached(result: dict[str, Any]) -> list[int]:
    return [row["visitors"] for row in result["steps"]]


# -- hand-computed cases ---------------------------------------------------------------------------
def test_cumulative_counts_and_rates(make_queries: MakeQueries) -> None:
    """Three visitors: a full chain, a chain with all steps tied in reverse order, and step 1 only."""
    q = make_queries([
        event("v1", at(0), "pageview", "/"), event("v1", at(5), "pageview", "/pricing"),
        event("v1", at(10), "signup", "/pricing"),
        event("v2", at(0), "signup", "/"), event("v2", at(0), "pageview", "/pricing"),
        event("v2", at(0), "pageview", "/"),
        event("v3", at(0), "pageview", "/"),
    ])
    r = funnel(q.access, SITE, DAY, ["page:/", "page:/pricing", "event:signup"], 10)
    assert r["steps"] == [
        {"step": 1, "label": "page:/", "visitors": 3, "conversion_rate": 1.0, "step_conversion_rate": 1.0,
         "median_seconds": None},
        {"step": 2, "label": "page:/pricing", "visitors": 2, "conversion_rate": 2 / 3,
         "step_conversion_rate": 2 / 3, "median_seconds": 2.5},  # v1 5 s, v2 0 s
        {"step": 3, "label": "event:signup", "visitors": 2, "conversion_rate": 2 / 3,
         "step_conversion_rate": 1.0, "median_seconds": 5.0},  # v1 10 s, v2 0 s
    ]
    assert r["total_visitors"] == 3
    assert r["level_counts"] == [{"level": 0, "visitors": 0}, {"level": 1, "visitors": 1},
                                 {"level": 2, "visitors": 0}, {"level": 3, "visitors": 2}]
    assert (r["window_seconds"], r["identity"]) == (10, "visitor_id")
    assert r.to_json() == r.rows == r["steps"]  # the HTTP route answers the step rows


def test_window_is_inclusive_to_the_microsecond(make_queries: MakeQueries) -> None:
    """A last step exactly ``window`` after step 1 counts; one microsecond later it does not."""
    q = make_queries([
        event("edge", at(0), "pageview", "/a"), event("edge", at(10), "pageview", "/b"),
        event("past", at(0), "pageview", "/a"), event("past", at(10, 1), "pageview", "/b"),
    ])
    assert reached(funnel(q.access, SITE, DAY, ["page:/a", "page:/b"], 10)) == [2, 1]
    assert reached(funnel(q.access, SITE, DAY, ["page:/a", "page:/b"], 11)) == [2, 2]


def test_window_runs_from_step_one_and_later_entries_count(make_queries: MakeQueries) -> None:
    """A0 B8 C15 reaches 2 in a 10 s window; A0 A10 B15 C19 reaches 3 from the second entry."""
    q = make_queries([
        event("x", at(0), "pageview", "/a"), event("x", at(8), "pageview", "/b"),
        event("x", at(15), "pageview", "/c"),
        event("y", at(0), "pageview", "/a"), event("y", at(10), "pageview", "/a"),
        event("y", at(15), "pageview", "/b"), event("y", at(19), "pageview", "/c"),
    ])
    r = funnel(q.access, SITE, DAY, ["page:/a", "page:/b", "page:/c"], 10)
    assert reached(r) == [2, 2, 1]
    assert r["level_counts"][2:] == [{"level": 2, "visitors": 1}, {"level": 3, "visitors": 1}]


def test_repeated_steps_need_distinct_events(make_queries: MakeQueries) -> None:
    """``[/a, /a]`` needs two pageviews of /a (strict_once); two at the same instant are enough."""
    q = make_queries([
        event("one", at(0), "pageview", "/a"),
        event("tie", at(0), "pageview", "/a"), event("tie", at(0), "pageview", "/a"),
        event("apart", at(0), "pageview", "/a"), event("apart", at(3), "pageview", "/b"),
        event("apart", at(5), "pageview", "/a"),
    ])
    assert reached(funnel(q.access, SITE, DAY, ["page:/a", "page:/a"], 60)) == [3, 2]
    assert reached(funnel(q.access, SITE, DAY, ["page:/a", "page:/b", "page:/a"], 60)) == [3, 1, 1]
    assert reached(funnel(q.access, SITE, DAY, ["page:/a", "page:/b", "page:/a"], 4)) == [3, 1, 0]


def test_equal_timestamps_never_hurt(make_queries: MakeQueries) -> None:
    """Steps on one instant count in any order; a repeated step is not "used up" by a tie elsewhere."""
    q = make_queries([
        event("v", at(0), "signup", "/"), event("v", at(0), "pageview", "/a"),
        event("v", at(0), "pageview", "/a"), event("v", at(0), "pageview", "/b"),
    ])
    steps = ["page:/a", "event:signup", "page:/a", "page:/b", "page:/a"]
    assert reached(funnel(q.access, SITE, DAY, steps, 1)) == [1, 1, 1, 1, 0]


def test_page_steps_match_pageviews_only_and_event_steps_custom_events(make_queries: MakeQueries) -> None:
    """A custom event on /a is not ``page:/a``; a custom-event-only visitor is in the population."""
    q = make_queries([
        event("custom", at(0), "signup", "/a"), event("custom", at(1), "buy", "/a"),
        event("single", at(0), "pageview", "/a"),
    ])
    r = funnel(q.access, SITE, DAY, ["page:/a", "event:buy"], 60)
    assert (reached(r), r["total_visitors"]) == ([1, 0], 2)
    assert reached(funnel(q.access, SITE, DAY, ["event:signup", "event:buy"], 60)) == [1, 1]
    assert r["level_counts"][0] == {"level": 0, "visitors": 1}


def test_other_sites_and_out_of_range_events_do_not_exist(make_queries: MakeQueries) -> None:
    """Only ``site``'s events in the range count: no chain through another site or another day."""
    q = make_queries([
        event("v", at(0), "pageview", "/a"), event("v", at(1), "pageview", "/b", site=OTHER_SITE),
        event("w", "2024-04-30 23:59:59.999999", "pageview", "/a"), event("w", "2024-05-01 00:00:00",
                                                                          "pageview", "/b"),
        event("z", at(0), "pageview", "/a", site=OTHER_SITE),
    ])
    r = funnel(q.access, SITE, DAY, ["page:/a", "page:/b"], 3600)
    assert (reached(r), r["total_visitors"]) == ([1, 0], 2)
    assert reached(funnel(q.access, OTHER_SITE, DAY, ["page:/a", "page:/b"], 3600)) == [1, 0]


def test_empty_scope(make_queries: MakeQueries) -> None:
    """No events: zero counts and zero rates, not a division error."""
    q = make_queries([event("v", at(0), "pageview", "/a", site=OTHER_SITE)])
    r = funnel(q.access, SITE, DAY, ["page:/a", "page:/b"], 60)
    assert [(s["visitors"], s["conversion_rate"], s["step_conversion_rate"]) for s in r["steps"]] == [
        (0, 0.0, 0.0), (0, 0.0, 0.0)]
    assert sequences(q.access, SITE, DAY, ["page:/a", "page:/b"])["conversion_rate"] == 0.0


def test_identity_user_id_and_salt_change(make_queries: MakeQueries) -> None:
    """user_id joins events across days and ids; visitor_id_prev joins a salt change; else visitor ids."""
    q = make_queries([
        event("d1", "2024-05-01 23:50:00", "pageview", "/a", user_id="u1"),
        event("d2", "2024-05-02 09:00:00", "signup", "/", user_id="u1"),
        event("n1", "2024-05-01 23:55:00", "pageview", "/a"),
        event("n2", "2024-05-02 00:05:00", "signup", "/", visitor_id_prev="n1"),
        event("m1", "2024-05-01 23:55:00", "pageview", "/a"),
        event("m2", "2024-05-02 00:05:00", "signup", "/"),
    ])
    r = funnel(q.access, SITE, TWO_DAYS, ["page:/a", "event:signup"], 86_400)
    assert (reached(r), r["total_visitors"], r["identity"]) == ([3, 2], 4, "mixed")
    only_user = funnel(q.access, SITE, TWO_DAYS, ["page:/a"], 60, filters=[["is", "event:name", ["signup"]]])
    assert only_user["total_visitors"] == 3
    q2 = make_queries([event("d1", at(0), "pageview", "/a", user_id="u1")])
    assert funnel(q2.access, SITE, DAY, ["page:/a"], 60)["identity"] == "user_id"


def test_filters_select_identities(make_queries: MakeQueries) -> None:
    """A filter keeps identities with a matching session; their funnel uses all their events."""
    q = make_queries([
        event("g", at(0), "pageview", "/a", referrer_source="Google"), event("g", at(5), "pageview", "/b"),
        event("t", at(0), "pageview", "/a", referrer_source="Twitter"), event("t", at(5), "pageview", "/b"),
        event("n", at(0), "pageview", "/x"),
    ])
    steps = ["page:/a", "page:/b"]
    google = [["is", "visit:source", ["Google"]]]
    assert reached(funnel(q.access, SITE, DAY, steps, 60, filters=google)) == [1, 1]
    r = funnel(q.access, SITE, DAY, steps, 60, filters="event:page==/b")
    assert (reached(r), r["total_visitors"]) == ([2, 2], 2)
    r = funnel(q.access, SITE, DAY, steps, 60, filters=[["is", "visit:entry_page", ["/x"]]])
    assert (reached(r), r["total_visitors"]) == ([0, 0], 1)


def _midnight_session() -> list[Event]:
    """"late" arrives from Google at 23:50 the day before and goes on past midnight (yesterday's id as
    visitor_id_prev during the first window of the day, as the tracker stores it); "plain" arrives on
    the day with no referrer."""
    return [
        event("late-0430", "2024-04-30 23:50:00", "pageview", "/", referrer_source="Google"),
        event("late-0501", "2024-05-01 00:05:00", "pageview", "/a", visitor_id_prev="late-0430"),
        event("late-0501", "2024-05-01 00:10:00", "pageview", "/b", visitor_id_prev="late-0430"),
        event("plain", "2024-05-01 09:00:00", "pageview", "/a"),
        event("plain", "2024-05-01 09:01:00", "pageview", "/b"),
    ]


def test_a_filter_reads_the_whole_session(make_queries: MakeQueries) -> None:
    """A visit filter reads the session as event metrics by a visit filter do: the whole session each
    event in scope belongs to, with the source of its first event, even when it began before the range
    (a session cut at the range's start had none)."""
    q = make_queries(_midnight_session())
    google = [["is", "visit:source", ["Google"]]]
    r = funnel(q.access, SITE, DAY, ["page:/a", "page:/b"], 600, filters=google)
    assert (reached(r), r["total_visitors"]) == ([1, 1], 1)
    pages = q.query(SITE, metrics=["visitors"], dimensions=["event:page"], filters=google,
                    start_date=DAY.start, end_date=DAY.end).rows
    assert pages == [{"event:page": "/a", "visitors": 1}, {"event:page": "/b", "visitors": 1}]
    r = funnel(q.access, SITE, DAY, ["page:/a", "page:/b"], 600, filters=[["is", "visit:entry_page", ["/"]]])
    assert reached(r) == [1, 1]  # its entry page is yesterday's


@pytest.mark.parametrize("damage", [False, True])
def test_a_filtered_funnel_reads_stored_sessions(tmp_path: Path, damage: bool) -> None:
    """With the sessions stored (or one of their files damaged: deleted and computed from events), a
    filtered funnel gives the same answer."""
    from mallard._queries import backfill
    from mallard._settings import Settings

    store = Store(tmp_path / "data")
    try:
        store.write_batch(_midnight_session())()
        assert backfill.build_settled(store, 1800, today=date(2024, 6, 1)).built == 2
        if damage:
            victim = spoil(store.session_files.listing(SITE)[date(2024, 4, 30)].path)
        q = Queries(store, Settings(data_dir=tmp_path / "data"))
        google = [["is", "visit:source", ["Google"]]]
        r = funnel(q.access, SITE, DAY, ["page:/a", "page:/b"], 600, filters=google)
        assert (reached(r), r["total_visitors"]) == ([1, 1], 1)
        if damage:
            assert not victim.exists()
    finally:
        store.close()


def test_sequences_have_no_window(make_queries: MakeQueries) -> None:
    """A sequence converts across any distance; conversion is among all visitors and among step 1."""
    q = make_queries([
        event("v", "2024-05-01 00:00:00", "pageview", "/a"), event("v", "2024-05-02 23:59:59", "buy", "/"),
        event("w", at(0), "buy", "/"), event("w", at(1), "pageview", "/a"),
        event("x", at(0), "pageview", "/z"),
    ])
    r = sequences(q.access, SITE, TWO_DAYS, ["page:/a", "event:buy"])
    assert (r["converting_visitors"], r["total_visitors"], r["conversion_rate"]) == (1, 3, 1 / 3)
    assert (r["step1_visitors"], r["step1_conversion_rate"]) == (2, 0.5)
    assert r["steps"] == ["page:/a", "event:buy"]


def test_buffered_events_count(tmp_path: Path) -> None:
    """Events tracked through Mallard and not yet flushed are part of the funnel."""
    import mallard

    with mallard.Mallard(data_dir=tmp_path) as m:
        for seconds, path in ((0, "/a"), (30, "/b")):
            outcome = m.track("pageview", site=SITE, url=f"https://{SITE}{path}", ip="192.0.2.1",
                              user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 "
                                         "Firefox/125.0",
                              timestamp=datetime(2024, 5, 1, 10) + timedelta(seconds=seconds))
            assert outcome.accepted, outcome
        assert reached(funnel(m.queries.access, SITE, DAY, ["page:/a", "page:/b"], 60)) == [1, 1]


# -- validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [
    [], ["event:pageview"], ["page:/"] * 33, ["/a"], ["url:/a"], ["page:"], ["event:  "],
    ["page:" + "x" * 2049], [1], "page:/a,,page:/b",
])
def test_invalid_steps(steps: Any) -> None:
    """Bad step lists raise InvalidQueryError with the rule."""
    with pytest.raises(InvalidQueryError) as exc:
        parse_steps(steps)
    assert exc.value.code == "invalid_steps"


def test_steps_text_form_and_limits() -> None:
    """The API's comma-separated text is split and trimmed; 1 and 32 steps are accepted."""
    assert parse_steps(" page:/ , event:Sign up") == (Step("page", "/"), Step("event", "Sign up"))
    assert len(parse_steps(["page:/"] * 32)) == 32
    with pytest.raises(InvalidQueryError):
        parse_steps(["page:/"], min_steps=2)


@pytest.mark.parametrize(("text", "seconds"), [
    ("1 day", 86_400), ("2 days", 172_800), ("1 week", 604_800), ("90 minutes", 5400), ("1 hour", 3600),
    ("1 second", 1), ("45", 45), (" 3 Hours ", 10_800), ("52 weeks", 52 * 604_800), ("366 days", 31_622_400),
    (3600, 3600),
])
def test_parse_window(text: str | int, seconds: int) -> None:
    """Windows are ``N unit`` or plain seconds."""
    assert parse_window(text) == seconds


@pytest.mark.parametrize("text", ["1 day; DROP TABLE events", "", "0", "0 days", "367 days", "1 month",
                                  "1.5 hours", "-1", "day", "1 fortnight", "1e3", "１", True, None, 0])
def test_parse_window_rejects(text: Any) -> None:
    """Anything else (and windows outside 1 s .. 366 days) is an InvalidQueryError."""
    with pytest.raises(InvalidQueryError) as exc:
        parse_window(text)
    assert exc.value.code == "invalid_window"


@pytest.mark.parametrize("window", [0, -1, 366 * 86_400 + 1, True, 1.5])
def test_funnel_rejects_bad_window(queries: Queries, window: Any) -> None:
    """funnel() validates its window."""
    with pytest.raises(InvalidQueryError):
        funnel(queries.access, SITE, DAY, ["page:/"], window)


def test_sequences_need_two_steps(queries: Queries) -> None:
    """A one-step sequence is rejected."""
    with pytest.raises(InvalidQueryError):
        sequences(queries.access, SITE, DAY, ["page:/"])


# -- injection safety ------------------------------------------------------------------------------
HOSTILE = ["it's", "'; DROP TABLE events; --", '"; DROP TABLE events; --', "?", "$1", "\\", "%_",
           "🦆/ünï", "/" + "é" * 1999, "a,b", "\x00"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_step_values_are_bound(make_queries: MakeQueries, value: str) -> None:
    """Quotes, SQL, unicode and 2,000-character values are matched literally, never spliced into SQL."""
    name = value.replace(",", ";")
    q = make_queries([event("v", at(0), "pageview", value), event("v", at(1), name, "/")])
    r = funnel(q.access, SITE, DAY, [f"page:{value}", f"event:{name}"], 60)
    assert reached(r) == [1, 1]
    assert reached(funnel(q.access, SITE, DAY, [f"page:{value}x"], 60)) == [0]
    sql = compile_funnel(SITE, DAY, parse_steps([f"page:{value}", f"event:{name}"]), 1,
                         source=Sql("SELECT 1"))
    assert value in sql.params
    if len(value) > 1:
        assert value not in sql.text


def test_steps_api_form_with_commas_is_an_error_not_a_crash(queries: Queries) -> None:
    """Text form splitting can produce bad steps: a clear error."""
    with pytest.raises(InvalidQueryError):
        funnel(queries.access, SITE, DAY, "page:/a,DROP", 60)


# -- differential test against ClickHouse ----------------------------------------------------------
KINDS = [("pageview", "/a"), ("pageview", "/a"), ("pageview", "/b"), ("signup", "/a"), ("buy", "/b"),
         ("pageview", "/x"), ("other", "/b")]
STEPS = ["page:/a", "page:/a", "page:/b", "event:signup", "event:buy"]
STARTS = [datetime(2024, 5, 1), datetime(2024, 5, 1, 23, 59, 59), datetime(2024, 4, 30, 23, 59, 59),
          datetime(2024, 5, 2, 23, 59, 58), datetime(2024, 5, 1, 12)]


@st.composite
def clickstreams(draw: st.DrawFn) -> tuple[list[Event], int]:
    """Events of up to 5 visitors whose gaps straddle the window (0, 1 µs, W − 1 µs, W, W + 1 µs, …)."""
    window = draw(st.sampled_from([1, 2, 10, 3600]))
    w = window * 1_000_000
    gaps = [0, 0, 1, w - 1, w, w + 1, w // 2, 2 * w]
    out: list[Event] = []
    for v in range(draw(st.integers(1, 6))):
        t = draw(st.sampled_from(STARTS))
        user = draw(st.sampled_from(["none", "all", "some"]))
        salt_change = draw(st.booleans())
        # either gaps between consecutive events, or offsets from the first event (window edges)
        cumulative = draw(st.booleans())
        start = t
        offsets = draw(st.lists(st.sampled_from(gaps), min_size=1, max_size=10))
        for i, gap in enumerate(offsets if cumulative else sorted(offsets)):
            t = t + timedelta(microseconds=gap) if cumulative else start + timedelta(microseconds=gap)
            name, path = draw(st.sampled_from(KINDS))
            later = salt_change and i >= 2
            uid = {"none": None, "all": f"u{v}", "some": f"u{v}" if draw(st.booleans()) else None}[user]
            out.append(Event(
                site_id=draw(st.sampled_from([SITE, SITE, SITE, OTHER_SITE])),
                visitor_id=f"v{v}b" if later else f"v{v}", timestamp=t, event_name=name, pathname=path,
                visitor_id_prev=f"v{v}" if later else None, user_id=uid))
    return out, window


def write_shuffled(data_dir: Path, events: list[Event], seed: int) -> Path:
    """Write ``events`` in 1–3 shuffled batches (several files per partition, rows out of order)."""
    rnd = random.Random(seed)
    rows = events[:]
    rnd.shuffle(rows)
    cuts = sorted(rnd.sample(range(1, len(rows)), min(len(rows) - 1, rnd.randint(0, 2))))
    store = Store(data_dir)
    try:
        for lo, hi in zip([0, *cuts], [*cuts, len(rows)], strict=True):
            store.write_batch(rows[lo:hi])()
    finally:
        store.close()
    return data_dir


def _edge(rows: list[tuple[str, int, str, str]]) -> list[Event]:
    """Events ``(visitor, µs after 2024-05-01 23:59:59, name, path)``."""
    base = datetime(2024, 5, 1, 23, 59, 59)
    return [Event(site_id=SITE, visitor_id=v, timestamp=base + timedelta(microseconds=us), event_name=name,
                  pathname=path) for v, us, name, path in rows]


# Window edges and ties, always run (random clickstreams hit them only now and then).
EDGES = _edge([("e", 0, "pageview", "/a"), ("e", 2_000_000, "pageview", "/b"),
               ("f", 0, "pageview", "/a"), ("f", 2_000_001, "pageview", "/b"), ("f", 2_000_001, "buy", "/"),
               ("g", 5, "buy", "/"), ("g", 5, "pageview", "/b"), ("g", 5, "pageview", "/a")])


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(data=(EDGES, 2), steps=["page:/a", "page:/b", "event:buy"], seed=0)
@example(data=(EDGES, 2), steps=["page:/a", "page:/a"], seed=1)
@given(data=clickstreams(), steps=st.lists(st.sampled_from(STEPS), min_size=1, max_size=4),
       seed=st.integers(0, 2**32))
def test_matches_clickhouse_window_funnel(tmp_path_factory: pytest.TempPathFactory,
                                          open_queries: QueriesFactory,
                                          data: tuple[list[Event], int], steps: list[str], seed: int) -> None:
    """funnel() and sequences() equal chdb's windowFunnel(window, 'strict_once') on the same Parquet files."""
    events, window = data
    data_dir = write_shuffled(tmp_path_factory.mktemp("funnel"), events, seed)
    q = open_queries(data_dir)
    lower, upper = TWO_DAYS.bounds()
    expected = chdb_oracle.levels(data_dir, SITE, lower, upper, steps, window * 1_000_000)
    r = funnel(q.access, SITE, TWO_DAYS, steps, window)
    assert reached(r) == chdb_oracle.funnel_counts(expected, len(steps))
    assert r["total_visitors"] == len(expected)
    assert r["level_counts"] == [{"level": k, "visitors": sum(1 for lv in expected.values() if lv == k)}
                                 for k in range(len(steps) + 1)]
    if len(steps) >= 2:
        whole = chdb_oracle.levels(data_dir, SITE, lower, upper, steps, None)
        s = sequences(q.access, SITE, TWO_DAYS, steps)
        assert s["converting_visitors"] == sum(1 for lv in whole.values() if lv == len(steps))
        assert s["total_visitors"] == len(whole)


def test_time_to_convert_is_the_median_of_each_identitys_shortest_time(make_queries: MakeQueries) -> None:
    """median_seconds of step i: over the identities that reached it, the median of each one's shortest
    time from a step-1 event to step i (b's later entry at 100 s gives it 30 s, not 130 s)."""
    q = make_queries([event("a", at(0), path="/a"), event("a", at(60), path="/b"),
                      event("a", at(200), "buy"), event("b", at(0), path="/a"),
                      event("b", at(100), path="/a"), event("b", at(130), path="/b"),
                      event("c", at(0), path="/a")])
    r = funnel(q.access, SITE, TWO_DAYS, ["page:/a", "page:/b", "event:buy", "event:never"], 3600)
    assert [s["median_seconds"] for s in r["steps"]] == [None, 45.0, 200.0, None]


def _shortest_times(events: list[Event], steps: list[str],
                    window_us: int) -> dict[tuple[str, str], list[int]]:
    """By brute force: per identity (user id, else the first visitor id of its chain), the shortest
    time in µs from a step-1 event to step i over every chain of distinct events within the window."""
    lower, upper = TWO_DAYS.bounds()
    mine: dict[tuple[str, str], list[Event]] = {}
    for e in events:
        if e.site_id == SITE and lower <= e.timestamp < upper:
            key = ("u", e.user_id) if e.user_id else ("v", e.visitor_id_prev or e.visitor_id)
            mine.setdefault(key, []).append(e)

    def fits(e: Event, step: str) -> bool:
        kind, _, value = step.partition(":")
        if kind == "page":
            return e.event_name == "pageview" and e.pathname == value
        return e.event_name == value

    out: dict[tuple[str, str], list[int]] = {}
    for key, evs in mine.items():
        best: dict[int, int] = {}

        def extend(i: int, t1: datetime, prev: datetime, used: frozenset[int], evs: list[Event] = evs,
                   best: dict[int, int] = best) -> None:
            best[i] = min(best.get(i, 2**62), (prev - t1) // timedelta(microseconds=1))
            if i == len(steps):
                return
            for j, e in enumerate(evs):
                if j not in used and fits(e, steps[i]) and e.timestamp >= prev and (
                        (e.timestamp - t1) // timedelta(microseconds=1) <= window_us):
                    extend(i + 1, t1, e.timestamp, used | {j})

        for j, e in enumerate(evs):
            if fits(e, steps[0]):
                extend(1, e.timestamp, e.timestamp, frozenset({j}))
        out[key] = [best[i] for i in sorted(best)]
    return out


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(data=(EDGES, 2), steps=["page:/a", "page:/b", "event:buy"], seed=0)
@given(data=clickstreams(), steps=st.lists(st.sampled_from(STEPS), min_size=2, max_size=3),
       seed=st.integers(0, 2**32))
def test_time_to_convert_matches_brute_force(tmp_path_factory: pytest.TempPathFactory,
                                             open_queries: QueriesFactory,
                                             data: tuple[list[Event], int], steps: list[str],
                                             seed: int) -> None:
    """median_seconds equals the median of the brute-force shortest times on generated clickstreams."""
    events, window = data
    q = open_queries(write_shuffled(tmp_path_factory.mktemp("ttc"), events, seed))
    got = [s["median_seconds"] for s in funnel(q.access, SITE, TWO_DAYS, steps, window)["steps"]]
    times = _shortest_times(events, steps, window * 1_000_000)
    want: list[float | None] = [None]
    for i in range(1, len(steps)):
        reached_i = [t[i] for t in times.values() if len(t) > i]
        want.append(statistics.median(reached_i) / 1e6 if reached_i else None)
    assert got == pytest.approx(want)
