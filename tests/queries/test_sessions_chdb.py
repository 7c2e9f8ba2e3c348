"""Sessions (§5.1): hand-computed cases and a differential test of ``Queries.sessions()`` and entry/exit
page visits against ClickHouse window-function sessions run in chdb on the same Parquet files."""

from __future__ import annotations

import math
import zlib
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mallard._events import Event
from mallard._queries import Queries
from mallard._queries.periods import DateRange

from . import chdb_sessions_oracle as oracle
from .conftest import QueriesFactory
from .data import OTHER_SITE, SITE
from .test_funnels import MakeQueries, write_shuffled

pytestmark = pytest.mark.slow  # ClickHouse (chdb) as the oracle

GAP = 1800 * 1_000_000  # the default session window, in µs
MIDNIGHT = datetime(2024, 5, 2)
PATHS = ("/", "/a", "/b", "/B", "/é", "/z/🦆", "/it's")
CUSTOM = ("signup", "download")


def us(micros: int) -> datetime:
    """The instant ``micros`` µs after 2024-05-02 00:00:00 (negative: before)."""
    return MIDNIGHT + timedelta(microseconds=micros)


HOSTS = ("a.example", "b.example", None)


def tracked(person: str, when: datetime, name: str = "pageview", path: str = "/", *, site: str = SITE,
            prev: bool = True) -> Event:
    """An event as the tracker stores it: the id is ``<person>-<UTC date>``; during the first session
    window of a day (≤ 30 min after midnight) it also carries yesterday's id if ``prev``."""
    midnight = datetime.combine(when.date(), datetime.min.time())
    carries = prev and when - midnight <= timedelta(microseconds=GAP)
    day = when.date()
    # the page's host: one of two, or none (a relative URL), mixed by person and time
    host = HOSTS[zlib.crc32(f"{person}{when.isoformat()}".encode()) % len(HOSTS)]
    return Event(site_id=site, visitor_id=f"{person}-{day}", timestamp=when, event_name=name, pathname=path,
                 hostname=host, visitor_id_prev=f"{person}-{day - timedelta(days=1)}" if carries else None)


def pages(q: Queries, site: str, rng: DateRange, dimension: str) -> dict[str, int]:
    r = q.query(site, metrics=["visits"], dimensions=[dimension], start_date=rng.start, end_date=rng.end)
    return {row[dimension]: int(row["visits"]) for row in r.rows}


def stats(q: Queries, site: str, rng: DateRange) -> dict[str, float]:
    return q.sessions(site, start_date=rng.start, end_date=rng.end).to_dict()


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


DAY2 = DateRange(date(2024, 5, 2), date(2024, 5, 2))
DAYS12 = DateRange(date(2024, 5, 1), date(2024, 5, 2))
DAYS123 = DateRange(date(2024, 5, 1), date(2024, 5, 3))


# -- hand-computed cases ---------------------------------------------------------------------------
def test_gap_edges_ties_and_bounces(make_queries: MakeQueries) -> None:
    """A gap of exactly 30 min stays, 30 min + 1 µs splits, ties never split and order pages by pathname."""
    t = 10 * 3600 * 1_000_000  # 10:00 on 2024-05-02
    q = make_queries([
        tracked("a", us(t), path="/b"), tracked("a", us(t + GAP), path="/x"),          # A1: 2 pv, 1800 s
        tracked("a", us(t + 2 * GAP + 1), path="/c"),                                    # A2: 1 pv
        tracked("a", us(t + 2 * GAP + 1), "signup", "/c"),                               # (tie, custom)
        tracked("b", us(t + 5), path="/z"), tracked("b", us(t + 5), path="/m"),          # B: tie, 2 pv
        tracked("b", us(t + 5), "signup", "/a"), tracked("b", us(t + 5 + GAP), "download", "/q"),
        tracked("c", us(t), "signup", "/"), tracked("c", us(t + GAP + 1), "signup", "/"),  # C1, C2: no pv
        tracked("d", us(t), path="/only", site=OTHER_SITE),
    ])
    # sessions: A1 (2 pv, 1800 s), A2 (1 pv, 0 s: bounce), B (2 pv, 1800 s), C1 (0 pv), C2 (0 pv)
    s = stats(q, SITE, DAY2)
    assert s["total_sessions"] == 5
    assert close(s["avg_session_duration_secs"], 3600 / 5)
    assert close(s["avg_pages_per_session"], 5 / 5)
    assert close(s["bounce_rate"], 1 / 5)
    assert pages(q, SITE, DAY2, "visit:entry_page") == {"/b": 1, "/c": 1, "/m": 1, "(unknown)": 2}
    assert pages(q, SITE, DAY2, "visit:exit_page") == {"/x": 1, "/c": 1, "/z": 1, "(unknown)": 2}
    assert stats(q, OTHER_SITE, DAY2) == {"total_sessions": 1, "avg_session_duration_secs": 0.0,
                                          "avg_pages_per_session": 1.0, "bounce_rate": 1.0}


def test_midnight_with_and_without_previous_id(make_queries: MakeQueries) -> None:
    """visitor_id_prev joins a session across midnight (also the new id's events after 00:30); without
    it, or after a gap over 30 min, the session splits."""
    q = make_queries([
        tracked("j", us(-10 * 60_000_000), path="/1"), tracked("j", us(10 * 60_000_000), path="/2"),
        tracked("j", us(35 * 60_000_000), path="/3"),  # no prev (after 00:30), same visitor id: joined
        tracked("n", us(-10 * 60_000_000), path="/1", prev=False),
        tracked("n", us(10 * 60_000_000), path="/2", prev=False),
        tracked("g", us(-GAP // 2), path="/1"), tracked("g", us(GAP // 2 + 1), path="/2"),
        tracked("g", us(GAP // 2 + 1 + 60_000_000), path="/3"),  # gap > 30 min: 2 sessions
        tracked("e", us(-GAP // 2), path="/1"), tracked("e", us(GAP // 2), path="/2"),  # exactly 30 min
    ])
    # j: 1 session /1 → /3, 45 min; n: 2 bounces; g: /1 (bounce), /2 → /3 (60 s); e: /1 → /2, 30 min
    s = stats(q, SITE, DAYS12)
    assert s["total_sessions"] == 6
    assert close(s["avg_session_duration_secs"], (2700 + 0 + 0 + 0 + 60 + 1800) / 6)
    assert close(s["avg_pages_per_session"], 10 / 6)
    assert close(s["bounce_rate"], 3 / 6)
    assert pages(q, SITE, DAYS12, "visit:entry_page") == {"/1": 4, "/2": 2}
    assert pages(q, SITE, DAYS12, "visit:exit_page") == {"/3": 2, "/1": 2, "/2": 2}
    # Day 2 alone: the sessions starting on it, n's second and g's second (j's and e's started the day
    # before: the previous id names the actor, so their events after midnight do not start one).
    s2 = stats(q, SITE, DAY2)
    assert (s2["total_sessions"], s2["bounce_rate"]) == (2, 0.5)


def test_session_across_two_midnights(make_queries: MakeQueries) -> None:
    """A visitor active around two consecutive midnights keeps one session across each salt change."""
    hour = 3600 * 1_000_000
    q = make_queries([
        tracked("p", us(-10 * 60_000_000), path="/1"), tracked("p", us(10 * 60_000_000), path="/2"),
        tracked("p", us(24 * hour - 10 * 60_000_000), path="/3"),
        tracked("p", us(24 * hour + 10 * 60_000_000), path="/4"),
    ])
    # /1 → /2 crosses the first midnight, /3 → /4 the second: two sessions of 20 min, none a bounce.
    s = stats(q, SITE, DAYS123)
    assert (s["total_sessions"], s["bounce_rate"]) == (2, 0.0)
    assert close(s["avg_session_duration_secs"], 1200.0)
    assert pages(q, SITE, DAYS123, "visit:entry_page") == {"/1": 1, "/3": 1}


# -- differential test against ClickHouse ----------------------------------------------------------
STARTS = (us(-14 * 3600 * 1_000_000), us(-GAP), us(-GAP - 1), us(-GAP // 3), us(-1), us(0), us(1),
          us(GAP - 1), us(GAP), us(12 * 3600 * 1_000_000), us(24 * 3600 * 1_000_000 - GAP // 2),
          us(-24 * 3600 * 1_000_000 - 60_000_000))
GAPS = (0, 0, 0, 1, GAP - 1, GAP, GAP, GAP + 1, GAP + 1, 60_000_000, 600_000_000, 2 * GAP)
RANGES = (DAYS12, DAYS123, DAY2, DateRange(date(2024, 5, 1), date(2024, 5, 1)),
          DateRange(date(2024, 4, 30), date(2024, 5, 3)))


@st.composite
def clickstreams(draw: st.DrawFn) -> list[Event]:
    """Events of 1–7 people on two sites: ties, gaps of 30 min ± 1 µs, one-event and custom-only people,
    sessions across midnight with or without ``visitor_id_prev`` (set as the tracker does)."""
    out: list[Event] = []
    for p in range(draw(st.integers(1, 7))):
        kind = draw(st.sampled_from(["mixed", "mixed", "single", "custom"]))
        prev = draw(st.booleans())
        t = draw(st.sampled_from(STARTS))
        n = 1 if kind == "single" else draw(st.integers(1, 8))
        for i in range(n):
            if i:
                t += timedelta(microseconds=draw(st.sampled_from(GAPS)))
            name = draw(st.sampled_from(CUSTOM if kind == "custom" else ("pageview", "pageview", *CUSTOM)))
            if kind == "single":
                name = draw(st.sampled_from(("pageview", *CUSTOM)))
            out.append(tracked(f"p{p}", t, name, draw(st.sampled_from(PATHS)),
                               site=draw(st.sampled_from([SITE, SITE, SITE, OTHER_SITE])), prev=prev))
    return out


# Always run: every edge at once on one site (random streams hit each only now and then).
EDGES = [
    tracked("t", us(-1), path="/b"), tracked("t", us(-1), "signup", "/a"), tracked("t", us(-1), path="/B"),
    tracked("t", us(GAP - 1), path="/é"), tracked("t", us(2 * GAP), path="/z/🦆"),
    tracked("t", us(3 * GAP), "download", "/"), tracked("t", us(3 * GAP + 1), path="/b"),
    tracked("t", us(3 * GAP + 1), path="/a"), tracked("t", us(3 * GAP + 1), path="/a"),
    tracked("t", us(3 * GAP + 1), "signup", "/z/🦆"), tracked("t", us(3 * GAP + 2), "signup", "/é"),
    tracked("n", us(-60_000_000), path="/", prev=False), tracked("n", us(60_000_000), path="/a", prev=False),
    tracked("o", us(5), path="/it's"), tracked("c", us(7), "download", "/"),
    tracked("c", us(7 + GAP), "signup", "/b"),
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(events=EDGES, rng=DAYS12, seed=0)
@example(events=EDGES, rng=DAY2, seed=1)
@given(events=clickstreams(), rng=st.sampled_from(RANGES), seed=st.integers(0, 2**32))
def test_matches_clickhouse_sessions(tmp_path_factory: pytest.TempPathFactory, open_queries: QueriesFactory,
                                     events: list[Event], rng: DateRange, seed: int) -> None:
    """sessions() and visits by entry/exit page equal ClickHouse window-function sessions in chdb."""
    data_dir = write_shuffled(tmp_path_factory.mktemp("sessions"), events, seed)
    q = open_queries(data_dir)
    lower, upper = rng.bounds()
    expected = oracle.figures(data_dir, (SITE, OTHER_SITE), lower, upper)
    for site, want in expected.items():
        got = stats(q, site, rng)
        assert got["total_sessions"] == want.total_sessions, oracle.sessions(data_dir, site, lower, upper)
        for key in ("avg_session_duration_secs", "avg_pages_per_session", "bounce_rate"):
            assert close(got[key], getattr(want, key)), (key, got, want)
        assert pages(q, site, rng, "visit:entry_page") == want.entry_pages
        assert pages(q, site, rng, "visit:exit_page") == want.exit_pages
        assert pages(q, site, rng, "visit:entry_page_hostname") == want.entry_hosts
        assert pages(q, site, rng, "visit:exit_page_hostname") == want.exit_hosts
