"""Periods and date ranges: names against a fixed today, inclusive ends, time zones and DST."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from mallard._errors import InvalidQueryError
from mallard._queries import Queries, bucket_labels
from mallard._queries.periods import PERIODS, DateRange, resolve

from .data import SITE, event

TODAY = date(2024, 5, 2)  # a Thursday in a leap year


@pytest.mark.parametrize(("period", "start", "days"), [
    ("day", TODAY, 1),
    ("today", TODAY, 1),
    ("7d", date(2024, 4, 25), 8),  # today − 7 .. today
    ("30d", date(2024, 4, 2), 31),
    ("90d", date(2024, 2, 2), 91),  # 2024-05-02 − 90 days crosses Feb 29
    ("12mo", date(2023, 5, 3), 366),  # today − 365 .. today
    ("month", date(2024, 5, 1), 2),
    ("year", date(2024, 1, 1), 123),  # 31 + 29 + 31 + 30 + 2
    ("all", date(2024, 3, 1), 63),  # from first_day: 31 (March) + 30 (April) + 2
    (None, date(2024, 4, 2), 31),  # default 30d
    (" 7d ", date(2024, 4, 25), 8),  # surrounding spaces are ignored
])
def test_named_periods(period: str | None, start: date, days: int) -> None:
    rng = resolve(period, today=TODAY, first_day=date(2024, 3, 1))
    assert (rng.start, rng.end, rng.days, rng.tz) == (start, TODAY, days, "UTC")


def test_every_period_name_resolves() -> None:
    for name in PERIODS:
        assert resolve(name, today=TODAY).end == TODAY


def test_all_without_data_or_with_future_first_day_is_today() -> None:
    assert resolve("all", today=TODAY, first_day=None) == DateRange(TODAY, TODAY)
    assert resolve("all", today=TODAY, first_day=date(2024, 6, 1)) == DateRange(TODAY, TODAY)


def test_all_starts_on_the_local_date_of_the_first_utc_partition() -> None:
    """first_day is a UTC partition date; west of UTC its first hours are the previous local day."""
    rng = resolve("all", today=TODAY, tz="America/New_York", first_day=date(2024, 5, 1))
    assert rng.start == date(2024, 4, 30)
    assert resolve("all", today=TODAY, tz="Europe/Berlin", first_day=date(2024, 5, 1)).start \
        == date(2024, 5, 1)


def test_period_first_days_of_month_and_year() -> None:
    assert resolve("month", today=date(2024, 3, 1)) == DateRange(date(2024, 3, 1), date(2024, 3, 1))
    assert resolve("year", today=date(2024, 1, 1)) == DateRange(date(2024, 1, 1), date(2024, 1, 1))


def test_unknown_period_names_the_valid_ones() -> None:
    with pytest.raises(InvalidQueryError) as info:
        resolve("6mo", today=TODAY)
    assert info.value.code == "invalid_period"
    for name in ("'day'", "'7d'", "'30d'", "'90d'", "'12mo'", "'month'", "'year'", "'all'",
                 "start_date and end_date"):
        assert name in info.value.message


def test_explicit_dates_win_over_the_period_and_are_inclusive() -> None:
    rng = resolve("7d", "2024-02-28", "2024-03-01", today=TODAY)
    assert (rng.start, rng.end, rng.days) == (date(2024, 2, 28), date(2024, 3, 1), 3)
    assert rng.bounds() == (datetime(2024, 2, 28), datetime(2024, 3, 2))  # upper bound exclusive
    assert resolve(None, date(2024, 1, 1), date(2024, 1, 1), today=TODAY).days == 1


def test_one_explicit_date_alone_is_ignored() -> None:
    assert resolve("day", "2024-01-01", None, today=TODAY) == DateRange(TODAY, TODAY)
    assert resolve("day", None, "2024-01-01", today=TODAY) == DateRange(TODAY, TODAY)


@pytest.mark.parametrize(("start", "end", "message"), [
    ("2024-05-02", "2024-05-01", "end_date must be on or after start_date"),
    ("20240501", "2024-05-02", "Invalid start_date format. Use YYYY-MM-DD."),
    ("2024-05-01", "2024-13-01", "Invalid end_date format. Use YYYY-MM-DD."),
    ("2023-01-01", "2024-01-03", "must not exceed 366 days"),
])
def test_bad_explicit_dates(start: str, end: str, message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        resolve(None, start, end, today=TODAY, max_days=366)


@pytest.mark.parametrize(("tz", "day", "lower", "upper", "hours"), [
    ("UTC", date(2024, 5, 2), datetime(2024, 5, 2), datetime(2024, 5, 3), 24),
    ("Europe/Berlin", date(2024, 5, 2), datetime(2024, 5, 1, 22), datetime(2024, 5, 2, 22), 24),
    ("America/New_York", date(2024, 5, 2), datetime(2024, 5, 2, 4), datetime(2024, 5, 3, 4), 24),
    ("Asia/Kolkata", date(2024, 5, 2), datetime(2024, 5, 1, 18, 30), datetime(2024, 5, 2, 18, 30), 24),
    # DST: spring forward (23 h) and fall back (25 h)
    ("Europe/Berlin", date(2024, 3, 31), datetime(2024, 3, 30, 23), datetime(2024, 3, 31, 22), 23),
    ("Europe/Berlin", date(2024, 10, 27), datetime(2024, 10, 26, 22), datetime(2024, 10, 27, 23), 25),
    ("America/New_York", date(2024, 3, 10), datetime(2024, 3, 10, 5), datetime(2024, 3, 11, 4), 23),
    ("America/New_York", date(2024, 11, 3), datetime(2024, 11, 3, 4), datetime(2024, 11, 4, 5), 25),
])
def test_bounds_are_naive_utc_local_midnights(tz: str, day: date, lower: datetime, upper: datetime,
                                              hours: int) -> None:
    rng = DateRange(day, day, tz)
    assert rng.bounds() == (lower, upper)
    assert (upper - lower).total_seconds() == hours * 3600
    assert rng.partition_dates() == (lower.date(), (upper - timedelta(microseconds=1)).date())
    assert rng.to_dict() == {"start_date": day.isoformat(), "end_date": day.isoformat(), "timezone": tz}


@pytest.mark.parametrize(("tz", "day", "count"), [
    ("UTC", date(2024, 5, 2), 24),
    ("Europe/Berlin", date(2024, 3, 31), 23),
    ("America/New_York", date(2024, 3, 10), 23),
])
def test_hour_labels_of_a_day(tz: str, day: date, count: int) -> None:
    labels = bucket_labels(DateRange(day, day, tz), "time:hour")
    assert len(labels) == count == len(set(labels))
    assert labels[0] == f"{day} 00:00" and labels[-1] == f"{day} 23:00"


@pytest.mark.parametrize(("tz", "day"), [("Europe/Berlin", date(2024, 10, 27)),
                                         ("America/New_York", date(2024, 11, 3))])
def test_fall_back_day_has_24_wall_clock_hour_buckets(tz: str, day: date) -> None:
    """Buckets are local wall-clock hours: the repeated hour of a fall-back day is one bucket."""
    labels = bucket_labels(DateRange(day, day, tz), "time:hour")
    assert len(labels) == 24
    assert labels == [f"{day.isoformat()} {h:02d}:00" for h in range(24)]


def test_day_week_and_month_labels() -> None:
    rng = DateRange(date(2024, 1, 31), date(2024, 3, 5))
    days = bucket_labels(rng, "time:day")
    assert (days[0], days[-1], len(days)) == ("2024-01-31", "2024-03-05", 35)  # 1 + 29 + 5
    weeks = bucket_labels(rng, "time:week")  # Mondays: Jan 29 .. Mar 4
    assert weeks == ["2024-01-29", "2024-02-05", "2024-02-12", "2024-02-19", "2024-02-26", "2024-03-04"]
    assert bucket_labels(rng, "time:month") == ["2024-01-01", "2024-02-01", "2024-03-01"]


def test_too_many_buckets_are_refused() -> None:
    with pytest.raises(InvalidQueryError, match="Too many time buckets"):
        bucket_labels(DateRange(date(2000, 1, 1), date(2024, 1, 1)), "time:day")


# -- periods applied to data ---------------------------------------------------------------------
def test_queries_today_follows_the_time_zone(make_queries: Callable[..., Queries]) -> None:
    """At 2024-05-02 23:30 UTC it is already the 3rd in Berlin and still the 2nd in New York."""
    q = make_queries([], now=datetime(2024, 5, 2, 23, 30, tzinfo=UTC))
    assert q.today() == date(2024, 5, 2)
    assert q.today("Europe/Berlin") == date(2024, 5, 3)
    assert q.today("America/New_York") == date(2024, 5, 2)


def test_period_edges_on_data(make_queries: Callable[..., Queries]) -> None:
    """Each event at an edge of 7d / explicit ranges is counted exactly where it belongs."""
    q = make_queries([
        event("too-old", "2024-04-24 23:59:59.999999"),  # the day before today − 7
        event("first", "2024-04-25 00:00:00"),  # today − 7, first instant
        event("last", "2024-05-02 23:59:59.999999"),  # today, last instant
    ])

    def visitors(**kwargs: object) -> int:
        return int(q.query(SITE, **kwargs).rows[0]["visitors"])  # type: ignore[arg-type]

    assert visitors(period="7d") == 2  # first, last
    assert visitors(period="day") == 1  # last
    assert visitors(start_date="2024-04-24", end_date="2024-04-24") == 1  # end date is inclusive
    assert visitors(start_date="2024-04-24", end_date="2024-04-25") == 2
    assert visitors(period="all") == 3
    assert visitors(period="month") == 1
    assert visitors(period="12mo") == 3


def test_time_zone_moves_events_between_days(make_queries: Callable[..., Queries]) -> None:
    """2024-05-01 22:30 UTC is May 2nd in Berlin and May 1st in New York."""
    q = make_queries([event("v", "2024-05-01 22:30:00")])
    for tz, day, count in [("UTC", "2024-05-01", 1), ("Europe/Berlin", "2024-05-01", 0),
                           ("Europe/Berlin", "2024-05-02", 1), ("America/New_York", "2024-05-01", 1)]:
        rows = q.query(SITE, start_date=day, end_date=day, timezone=tz).rows
        assert rows[0]["visitors"] == count, (tz, day)


def test_period_all_in_a_time_zone_west_of_utc(make_queries: Callable[..., Queries]) -> None:
    """The first stored event (02:00 UTC = 22:00 the evening before in New York) is in 'all'."""
    q = make_queries([event("v", "2024-05-01 02:00:00")])
    assert q.query(SITE, period="all", timezone="America/New_York").rows[0]["visitors"] == 1
    assert q.query(SITE, period="all").rows[0]["visitors"] == 1
