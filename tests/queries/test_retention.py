"""Weekly retention (behavioral-analytics.md §5.3): hand-computed cohorts, identity and caveat, validation,
and a differential test against ClickHouse's ``retention()`` run by chdb over the same Parquet files."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mallard._errors import InvalidQueryError
from mallard._events import Event
from mallard._queries import DateRange, Queries
from mallard._queries.retention import caveat_text, first_unreachable_week, retention
from mallard._settings import Settings
from mallard._store import Store

from .chdb_flow_oracle import (
    RANGE_ENDS,
    RANGE_STARTS,
    SITES,
    ch_retention,
    clickstreams,
    lake_glob,
    write_shuffled,
)
from .data import OTHER_SITE, SITE, event

MakeQueries = Callable[..., Queries]
APRIL = DateRange(date(2024, 4, 1), date(2024, 4, 28))  # four ISO weeks, Mondays 04-01 … 04-22
TODAY = datetime(2024, 4, 20, 12, tzinfo=UTC)  # a Saturday


def visits() -> list[Event]:
    """The hand-made events of the retention tests (see each identity's comment)."""
    return [
        # u1: cohort 04-01, back in weeks 1 and 2 (a new daily visitor id each day)
        event("v1a", "2024-04-01 10:00:00", user_id="u1"),
        event("v1b", "2024-04-09 10:00:00", "signup", "/s", user_id="u1"),  # custom events count
        event("v1c", "2024-04-20 10:00:00", user_id="u1"),
        # u2: cohort 04-01 (a Wednesday), back in week 2 only; twice on one instant
        event("v2a", "2024-04-03 08:00:00", user_id="u2"),
        event("v2a", "2024-04-03 08:00:00", "/b", user_id="u2"),
        event("v2b", "2024-04-16 08:00:00", user_id="u2"),
        # u3: first seen before the range: in no cohort
        event("v3a", "2024-03-20 08:00:00", user_id="u3"),
        event("v3b", "2024-04-02 08:00:00", user_id="u3"),
        # u4: first seen on Sunday 04-14 at the last microsecond (cohort 04-08), next Monday is week 1;
        # its event at the range's end (week 3) is outside; history on another site does not count
        event("v4x", "2024-03-01 08:00:00", site=OTHER_SITE, user_id="u4"),
        event("v4a", "2024-04-14 23:59:59.999999", user_id="u4"),
        event("v4b", "2024-04-15 00:00:00", user_id="u4"),
        event("v4c", "2024-04-29 00:00:00", user_id="u4"),
        # anonymous: one daily id, cohort 04-08; the same person's next day is another identity
        event("anon-0410", "2024-04-10 09:00:00"),
        event("anon-0410", "2024-04-10 09:30:00"),
        # first seen after the range: in no cohort
        event("v6", "2024-04-29 00:00:00", user_id="u6"),
    ]


@pytest.fixture
def q(make_queries: MakeQueries) -> Queries:
    """Queries over ``visits()``; today is Saturday 2024-04-20."""
    return make_queries(visits(), now=TODAY)


def test_retention_cohorts(q: Queries) -> None:
    """Counts, rates and completeness per ISO-week cohort, by hand."""
    result = retention(q.access, SITE, APRIL, 4)
    assert result["cohorts"] == [
        {"cohort_date": "2024-04-01", "visitors": 2, "retained": [2, 1, 2, 0],
         "rates": [1.0, 0.5, 1.0, 0.0], "complete": [True, True, False, False]},
        {"cohort_date": "2024-04-08", "visitors": 2, "retained": [2, 1, 0, 0],
         "rates": [1.0, 0.5, 0.0, 0.0], "complete": [True, False, False, False]},
    ]
    assert (result["weeks"], result["identity"]) == (4, "mixed")


def test_retention_caveat_for_daily_ids(q: Queries) -> None:
    """Anonymous daily ids make weeks >= 1 structurally zero, and the caveat says so."""
    caveat = retention(q.access, SITE, APRIL, 4)["caveat"]
    assert caveat is not None
    assert "changes every day" in caveat and "weeks 1 to 3 are always 0" in caveat


def test_retention_caveat_for_long_salt_periods(make_queries: MakeQueries) -> None:
    """With a 30-day salt, anonymous weeks 1..3 are reachable: the caveat only calls them lower bounds."""
    q = make_queries(visits(), now=TODAY, visitor_salt_rotation_days=30)
    caveat = retention(q.access, SITE, APRIL, 4)["caveat"]
    assert caveat is not None
    assert "every 30 days" in caveat and "lower bounds" in caveat and "always 0" not in caveat


def test_retention_only_user_ids(make_queries: MakeQueries) -> None:
    """Without anonymous members the identity is user_id and there is no caveat."""
    q = make_queries([e for e in visits() if e.user_id is not None], now=TODAY)
    result = retention(q.access, SITE, APRIL, 4)
    assert (result["identity"], result["caveat"]) == ("user_id", None)
    assert [c["visitors"] for c in result["cohorts"]] == [2, 1]


def test_retention_only_daily_ids(make_queries: MakeQueries) -> None:
    """A person seen on two days with daily ids forms two one-day identities: weeks >= 1 stay 0."""
    q = make_queries([event("p-0401", "2024-04-01 10:00:00"), event("p-0408", "2024-04-08 10:00:00")],
                     now=TODAY)
    result = retention(q.access, SITE, APRIL, 2)
    assert result["identity"] == "visitor_id"
    assert [(c["cohort_date"], c["retained"]) for c in result["cohorts"]] == [
        ("2024-04-01", [1, 0]), ("2024-04-08", [1, 0])]
    assert result["caveat"] is not None and "week 1 is always 0" in result["caveat"]


def test_retention_one_week_and_empty(q: Queries) -> None:
    """weeks=1 needs no caveat (week 0 is the cohort itself); a range without members is empty."""
    result = retention(q.access, SITE, APRIL, 1)
    assert [c["retained"] for c in result["cohorts"]] == [[2], [2]]
    assert result["caveat"] is None
    empty = retention(q.access, SITE, DateRange(date(2025, 1, 1), date(2025, 1, 31)), 4)
    assert empty.to_dict() == {"cohorts": [], "weeks": 4, "identity": "visitor_id", "caveat": None}


def test_retention_complete_follows_today(make_queries: MakeQueries) -> None:
    """A week is complete once it has ended by today and by the range's end."""
    later = make_queries(visits(), now=datetime(2024, 6, 1, tzinfo=UTC))
    cohorts = retention(later.access, SITE, APRIL, 4)["cohorts"]
    assert [c["complete"] for c in cohorts] == [[True] * 4, [True, True, True, False]]


def test_retention_other_site(q: Queries) -> None:
    """Another site's events form that site's cohorts only."""
    result = retention(q.access, OTHER_SITE, DateRange(date(2024, 3, 1), date(2024, 3, 31)), 2)
    assert [(c["cohort_date"], c["visitors"]) for c in result["cohorts"]] == [("2024-02-26", 1)]


def test_retention_filters_select_identities(q: Queries) -> None:
    """A filter keeps the identities with a matching session in the range; their cohorts and weeks use
    all their events (u1 signed up in week 1, and is counted from its first visit)."""
    result = retention(q.access, SITE, APRIL, 4, filters=[["is", "event:name", ["signup"]]])
    assert [(c["cohort_date"], c["retained"]) for c in result["cohorts"]] == [("2024-04-01", [1, 1, 1, 0])]
    entry = retention(q.access, SITE, APRIL, 4, filters=[["is", "visit:entry_page", ["/"]]])
    assert [(c["cohort_date"], c["retained"]) for c in entry["cohorts"]] == [
        ("2024-04-01", [2, 1, 2, 0]), ("2024-04-08", [2, 1, 0, 0])]


def test_retention_of_identified_users_only(q: Queries) -> None:
    """identity="user_id" leaves the anonymous identities out of every cohort (and needs no caveat)."""
    result = retention(q.access, SITE, APRIL, 4, identity="user_id")
    assert [(c["cohort_date"], c["visitors"], c["retained"]) for c in result["cohorts"]] == [
        ("2024-04-01", 2, [2, 1, 2, 0]), ("2024-04-08", 1, [1, 1, 0, 0])]
    assert (result["identity"], result["caveat"]) == ("user_id", None)
    with pytest.raises(InvalidQueryError, match="identity must be") as info:
        retention(q.access, SITE, APRIL, 4, identity="users")
    assert info.value.code == "invalid_identity"


@pytest.mark.parametrize("weeks", [0, 53, -1, "x", "4", True, 2.5, None])
def test_retention_rejects_bad_weeks(q: Queries, weeks: Any) -> None:
    """weeks must be an integer 1..52."""
    with pytest.raises(InvalidQueryError, match="weeks must be an integer between 1 and 52") as info:
        retention(q.access, SITE, APRIL, weeks)
    assert info.value.code == "invalid_weeks"


def test_retention_rejects_bad_site(q: Queries) -> None:
    """The site id is validated like everywhere else."""
    with pytest.raises(InvalidQueryError):
        retention(q.access, "'; DROP TABLE events; --", APRIL, 4)


@pytest.mark.parametrize(("rotation", "first"), [(1, 1), (2, 2), (8, 2), (9, 3), (30, 6)])
def test_first_unreachable_week(rotation: int, first: int) -> None:
    """An id living R days can reach week k iff R >= 7k - 5 (first seen on a Sunday)."""
    assert first_unreachable_week(rotation) == first
    assert rotation >= 7 * (first - 1) - 5 and rotation < 7 * first - 5
    assert caveat_text(1, rotation) is None


# -- differential: ClickHouse retention() over the same Parquet files ---------------------------------
def reference_identity(events: list[Event], site: str, lower: datetime, upper: datetime) -> set[str]:
    """The kinds ('u', 'v') of the identities first seen in [lower, upper) on ``site``."""
    first: dict[tuple[str, str], datetime] = {}
    for e in events:
        if e.site_id == site and e.timestamp < upper:
            key = ("u", e.user_id) if e.user_id is not None else ("v", e.visitor_id)
            first[key] = min(first.get(key, e.timestamp), e.timestamp)
    return {kind for (kind, _), fs in first.items() if fs >= lower}


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(events=clickstreams(), site=st.sampled_from(SITES), seed=st.integers(0, 2**16),
       start=st.sampled_from(RANGE_STARTS), end=st.sampled_from(RANGE_ENDS), weeks=st.integers(1, 6),
       today=st.sampled_from([date(2024, 4, 17), date(2024, 4, 29), date(2024, 6, 1)]))
def test_retention_matches_clickhouse(events: list[Event], site: str, seed: int, start: date, end: date,
                                      weeks: int, today: date) -> None:
    """Cohorts, sizes and retained counts equal §5.3's ClickHouse query; identity and complete follow."""
    rng = DateRange(start, end)
    lower, upper = rng.bounds()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = write_shuffled(Path(tmp), events, seed)
        store = Store(data_dir, read_only=True)
        try:
            now = datetime.combine(today, datetime.min.time(), UTC)
            q = Queries(store, Settings(data_dir=data_dir), clock=lambda: now)
            mine = retention(q.access, site, rng, weeks)
        finally:
            store.close()
        theirs = ch_retention(lake_glob(data_dir), site, lower, upper, weeks)
    assert [(c["cohort_date"], c["visitors"], c["retained"]) for c in mine["cohorts"]] == theirs
    for c in mine["cohorts"]:
        monday = date.fromisoformat(c["cohort_date"])
        assert monday.weekday() == 0
        assert c["rates"] == [r / c["visitors"] for r in c["retained"]]
        assert c["complete"] == [monday + timedelta(days=7 * (k + 1)) <= min(today, end + timedelta(days=1))
                                 for k in range(weeks)]
    kinds = reference_identity(events, site, lower, upper)
    assert mine["identity"] == {frozenset("uv"): "mixed", frozenset("u"): "user_id"}.get(
        frozenset(kinds), "visitor_id")
    assert (mine["caveat"] is not None) == ("v" in kinds and weeks >= 2)
