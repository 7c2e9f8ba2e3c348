"""``POST /api/v2/query``: periods as Plausible counts them and the ``include`` options, through the HTTP API
(``Api.handle`` in process) with a frozen clock, every number checked against plain DuckDB SQL over the
Parquet files the test wrote.

Expected ranges are written out by hand from Plausible's definitions (lib/plausible/stats/query_parser.ex):
``Nd`` the N days before today (today excluded), ``Nmo`` the N calendar months before this one, ``month``
and ``year`` the whole calendar month and year, ``24h`` the 24 hours up to now, a datetime pair an exact
span. Clocks sit around a leap day, month ends and both DST changes of Europe/Berlin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import orjson
import pytest

import mallard
from mallard._errors import InvalidQueryError
from mallard._http import Api, Request
from mallard._queries.include import change
from mallard._queries.periods import v1_period

from ..queries.data import event, write_lake

SITE = "periods.example"
BERLIN = "Europe/Berlin"
CLOCK = [datetime(2024, 3, 1, 10, 30, tzinfo=UTC)]  # the frozen clock; tests set CLOCK[0]


DENSE = ((datetime(2024, 2, 20), datetime(2024, 4, 5)), (datetime(2024, 10, 20), datetime(2024, 11, 3)))


def _events(dense: tuple[tuple[datetime, datetime], ...] = DENSE, edges: bool = True) -> list[Any]:
    """A pageview every 30 minutes over the ``dense`` spans (by default 2024-02-20..2024-04-05 and
    2024-10-20..2024-11-03, UTC), and with ``edges`` two at the edges of every Berlin month of 2023 and 2024
    (its first and its last local second)."""
    out = []
    for first, last in dense:
        t, i = first, 0
        while t < last:
            out.append(event(f"v{i % 53}", t.isoformat(" "), path=f"/p{i % 5}", site=SITE))
            t, i = t + timedelta(minutes=30), i + 1
    zone = ZoneInfo(BERLIN)
    for year in (2023, 2024) if edges else ():
        for month in range(1, 13):
            start = datetime(year, month, 1, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
            out.append(event(f"m{month}", start.isoformat(" "), path="/edge", site=SITE))
            out.append(event(f"n{month}", (start - timedelta(seconds=1)).isoformat(" "), path="/edge",
                             site=SITE))
    return out


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lake(tmp_path_factory.mktemp("v2periods") / "data", _events())


@pytest.fixture(scope="module")
def api(lake: Path) -> Iterator[Api]:
    with mallard.Mallard(data_dir=lake, cache_ttl_secs=0, clock=lambda: CLOCK[0]) as m:
        api = Api.for_mallard(m)
        api.auth.set_password("correct horse battery staple")
        yield api


@pytest.fixture(scope="module")
def key(api: Api) -> str:
    return str(api.auth.create_key("v2", "Admin")[0])


def post(api: Api, key: str, **body: Any) -> tuple[int, Any]:
    payload = orjson.dumps({"site_id": SITE, "metrics": ["visitors", "pageviews"], **body})
    r = api.handle(Request("POST", "/api/v2/query", "", {"x-api-key": key}, payload, client="127.0.0.1"))
    return r.status, orjson.loads(r.body)


def sql(lake: Path, lower: datetime, upper: datetime, by: str = "") -> Any:
    """(visitors, pageviews) of ``[lower, upper)`` (aware), or per ``by`` expression, from the Parquet."""
    low, high = (t.astimezone(UTC).replace(tzinfo=None) for t in (lower, upper))
    group = f"{by} AS k, " if by else ""
    rows = duckdb.sql(
        f"SELECT {group}count(DISTINCT visitor_id), count(*) FILTER (WHERE event_name = 'pageview') "
        f"FROM read_parquet('{lake}/events/**/*.parquet', hive_partitioning = false) "
        f"WHERE site_id = ? AND timestamp >= ? AND timestamp < ?" + (" GROUP BY k" if by else ""),
        params=[SITE, low, high]).fetchall()
    return {r[0]: list(r[1:]) for r in rows} if by else list(rows[0])


def local_days(first: date, last: date, tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    return (datetime.combine(first, time(), zone), datetime.combine(last + timedelta(days=1), time(), zone))


# -- periods ----------------------------------------------------------------------------------------
A = datetime(2024, 3, 1, 10, 30, tzinfo=UTC)  # just after a leap day; Berlin 11:30
B = datetime(2024, 2, 29, 23, 30, tzinfo=UTC)  # Berlin is already on 03-01, UTC still on 02-29
C = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)  # Berlin's 23-hour day (clocks go forward), a month end
D = datetime(2024, 10, 27, 12, 0, tzinfo=UTC)  # Berlin's 25-hour day (clocks go back)


@pytest.mark.parametrize(("now", "tz", "period", "first", "last"), [
    (A, BERLIN, "day", date(2024, 3, 1), date(2024, 3, 1)),
    (A, BERLIN, "7d", date(2024, 2, 23), date(2024, 2, 29)),
    (A, BERLIN, "28d", date(2024, 2, 2), date(2024, 2, 29)),
    (A, BERLIN, "30d", date(2024, 1, 31), date(2024, 2, 29)),
    (A, BERLIN, "91d", date(2023, 12, 1), date(2024, 2, 29)),
    (A, BERLIN, "month", date(2024, 3, 1), date(2024, 3, 31)),
    (A, BERLIN, "6mo", date(2023, 9, 1), date(2024, 2, 29)),
    (A, BERLIN, "12mo", date(2023, 3, 1), date(2024, 2, 29)),
    (A, BERLIN, "year", date(2024, 1, 1), date(2024, 12, 31)),
    (B, BERLIN, "day", date(2024, 3, 1), date(2024, 3, 1)),
    (B, BERLIN, "7d", date(2024, 2, 23), date(2024, 2, 29)),
    (B, "UTC", "day", date(2024, 2, 29), date(2024, 2, 29)),
    (B, "UTC", "7d", date(2024, 2, 22), date(2024, 2, 28)),
    (B, "UTC", "month", date(2024, 2, 1), date(2024, 2, 29)),
    (C, BERLIN, "day", date(2024, 3, 31), date(2024, 3, 31)),
    (C, BERLIN, "7d", date(2024, 3, 24), date(2024, 3, 30)),
    (C, BERLIN, "month", date(2024, 3, 1), date(2024, 3, 31)),
    (C, BERLIN, "6mo", date(2023, 9, 1), date(2024, 2, 29)),
    (D, BERLIN, "day", date(2024, 10, 27), date(2024, 10, 27)),
    (D, BERLIN, "7d", date(2024, 10, 20), date(2024, 10, 26)),
    (D, BERLIN, "12mo", date(2023, 10, 1), date(2024, 9, 30)),
])
def test_named_periods(api: Api, key: str, lake: Path, now: datetime, tz: str, period: str, first: date,
                       last: date) -> None:
    """Each period is Plausible's range of local days, and its figures are those of exactly that range."""
    CLOCK[0] = now
    status, body = post(api, key, date_range=period, timezone=tz)
    assert status == 200, body
    assert body["query"]["date_range"] == [first.isoformat(), last.isoformat()]
    assert body["results"][0]["metrics"] == sql(lake, *local_days(first, last, tz))


def test_sub_day_ranges_are_exact(api: Api, key: str, lake: Path) -> None:
    """``24h`` is the 24 hours up to now (its second included); a datetime pair is its exact span, across
    a DST change; neither is widened to whole days."""
    CLOCK[0] = C
    status, body = post(api, key, date_range="24h", timezone=BERLIN)
    assert status == 200, body
    assert body["results"][0]["metrics"] == sql(lake, C - timedelta(hours=24), C + timedelta(seconds=1))
    assert body["query"]["date_range"] == ["2024-03-30T13:00:00+01:00", "2024-03-31T14:00:00+02:00"]
    assert body["results"][0]["metrics"] != sql(lake, *local_days(date(2024, 3, 30), date(2024, 3, 31),
                                                                  BERLIN))
    pair = ["2024-03-31T01:30:00+01:00", "2024-03-31T03:29:59+02:00"]  # 00:30..01:29:59 UTC
    status, body = post(api, key, date_range=pair, timezone=BERLIN, dimensions=["time:hour"])
    assert status == 200, body
    assert body["query"]["date_range"] == pair
    expected = sql(lake, datetime(2024, 3, 31, 0, 30, tzinfo=UTC), datetime(2024, 3, 31, 1, 30, tzinfo=UTC))
    assert [sum(col) for col in zip(*(r["metrics"] for r in body["results"]), strict=True)] == expected
    assert [r["dimensions"][0] for r in body["results"]] == ["2024-03-31 01:00:00", "2024-03-31 03:00:00"]


@pytest.mark.slow
def test_sub_day_ranges_with_stored_sessions_and_rollups(tmp_path: Path) -> None:
    """A sub-day range answers the same before and after the days' sessions and rollups are stored: the
    stored rows are only used where they are exact."""
    spans = ((datetime(2024, 3, 1), datetime(2024, 3, 5)), (datetime(2024, 3, 30), datetime(2024, 4, 1)))
    data = write_lake(tmp_path / "data", _events(spans, edges=False))
    with mallard.Mallard(data_dir=data, cache_ttl_secs=0,
                         clock=lambda: datetime(2025, 1, 1, tzinfo=UTC)) as m:
        bodies = [{"site_id": SITE, "metrics": metrics, "date_range": rng, "dimensions": dims}
                  for metrics in (["visitors", "pageviews"], ["visitors", "visits", "bounce_rate"])
                  for dims in ([], ["event:page"]) if not (dims and "visits" in metrics)
                  for rng in (["2024-03-02T10:15:00+00:00", "2024-03-04T07:44:59+00:00"],
                              ["2024-03-31T01:30:00+01:00", "2024-03-31T05:00:00+02:00"])]
        before = [m.queries.query_json(b).to_dict()["results"] for b in bodies]
        assert m.build_sessions() > 0
        after = [m.queries.query_json(b).to_dict()["results"] for b in bodies]
    assert before == after
    assert before[0][0]["metrics"] == sql(data, datetime(2024, 3, 2, 10, 15, tzinfo=UTC),
                                          datetime(2024, 3, 4, 7, 45, tzinfo=UTC))


def test_mallard_routes_keep_their_periods(api: Api, key: str) -> None:
    """Mallard Metrics' own routes and the Python ``period=`` keep v0.2's ``7d``: today and 7 days before."""
    CLOCK[0] = A
    r = api.handle(Request("GET", "/api/stats/timeseries", f"site_id={SITE}&period=7d&interval=day",
                           {"x-api-key": key}, client="127.0.0.1"))
    assert r.status == 200
    assert [row["date"] for row in orjson.loads(r.body)] == [f"2024-02-{d}" for d in range(23, 30)] + [
        "2024-03-01"]
    assert api.queries.date_range(SITE, "7d").days == 8


# -- include ----------------------------------------------------------------------------------------
def test_time_labels(api: Api, key: str, lake: Path) -> None:
    """include.time_labels lists every bucket of the range, empty ones too; without it there is none."""
    CLOCK[0] = C
    query = {"date_range": "day", "timezone": BERLIN, "dimensions": ["time:hour"]}
    status, body = post(api, key, **query, include={"time_labels": True})
    assert status == 200, body
    hours = [f"2024-03-31 {h:02d}:00:00" for h in range(24) if h != 2]  # 02:00 does not exist that day
    assert body["meta"]["time_labels"] == hours
    assert [r["dimensions"][0] for r in body["results"]] == hours  # Plausible's labels, every hour has data
    assert body["query"]["include"] == {"time_labels": True}
    assert "time_labels" not in post(api, key, **query)[1]["meta"]
    status, body = post(api, key, **query, include={"comparisons": {"mode": "previous_period"}})
    assert [r["comparison"]["dimensions"][0] for r in body["results"][:3]] == [
        "2024-03-30 00:00:00", "2024-03-30 01:00:00", "2024-03-30 02:00:00"]  # matched by position
    CLOCK[0] = A
    status, body = post(api, key, date_range="7d", dimensions=["time:day"], include={"time_labels": True})
    assert body["meta"]["time_labels"] == [f"2024-02-{d}" for d in range(23, 30)]
    status, body = post(api, key, date_range="7d", include={"time_labels": True})
    assert status == 400 and "time dimension" in body["error"]


def test_total_rows(api: Api, key: str, lake: Path) -> None:
    """include.total_rows gives the number of rows before pagination; without it meta has none."""
    CLOCK[0] = A
    query = {"date_range": "7d", "dimensions": ["event:page"], "pagination": {"limit": 2, "offset": 1}}
    status, body = post(api, key, **query, include={"total_rows": True})
    assert status == 200, body
    pages = sql(lake, *local_days(date(2024, 2, 23), date(2024, 2, 29), "UTC"), by="pathname")
    assert body["meta"] == {"total_rows": len(pages)} and len(body["results"]) == 2
    assert all(r["metrics"] == pages[r["dimensions"][0]] for r in body["results"])
    assert post(api, key, **query)[1]["meta"] == {}


def test_imports(api: Api, key: str) -> None:
    """include.imports: mallard has no imported data, and says so."""
    status, body = post(api, key, date_range="7d", include={"imports": True})
    assert status == 200, body
    assert body["meta"]["imports_included"] is False
    assert body["meta"]["imports_skip_reason"] == "no_imported_data"
    assert "imports_included" not in post(api, key, date_range="7d")[1]["meta"]


def _expected_change(metric: str, old: float, new: float) -> Any:
    if metric == "bounce_rate":
        return new - old if old > 0 else None
    if old == 0:
        return 100 if new > 0 else 0
    ratio = (new - old) / old * 100
    return int(ratio + 0.5) if ratio >= 0 else -int(-ratio + 0.5)


@pytest.mark.parametrize(("comparisons", "first"), [
    ({"mode": "previous_period"}, date(2024, 2, 16)),  # the 7 days before 02-23..02-29
    ({"mode": "year_over_year"}, date(2023, 2, 23)),  # 365 days earlier
    ({"mode": "year_over_year", "match_day_of_week": True}, date(2023, 2, 24)),  # a Friday, as 2024-02-23
    ({"mode": "custom", "date_range": ["2024-03-10", "2024-03-16"]}, date(2024, 3, 10)),
])
def test_comparisons(api: Api, key: str, lake: Path, comparisons: dict[str, Any], first: date) -> None:
    """include.comparisons adds each row's comparison: the matching bucket of the comparison range, its
    figures (from SQL) and Plausible's change."""
    CLOCK[0] = A
    status, body = post(api, key, date_range="7d", dimensions=["time:day"],
                        include={"comparisons": comparisons})
    assert status == 200, body
    assert len(body["results"]) == 7
    for i, row in enumerate(body["results"]):
        day = first + timedelta(days=i)
        other = row["comparison"]
        assert other["dimensions"] == [day.isoformat()]
        assert other["metrics"] == sql(lake, *local_days(day, day, "UTC"))
        pairs = zip(("visitors", "pageviews"), other["metrics"], row["metrics"], strict=True)
        assert other["change"] == [_expected_change(m, o, n) for m, o, n in pairs]
    status, body = post(api, key, date_range="7d", include={"comparisons": comparisons})
    assert "comparison" in body["results"][0] and "comparison" not in post(api, key, date_range="7d")[1][
        "results"][0]


def test_comparisons_by_page(api: Api, key: str, lake: Path) -> None:
    """A breakdown's rows are compared with the same page's row of the previous period (a page missing
    there has empty metrics), after the filters and the page of the main range."""
    CLOCK[0] = A
    status, body = post(api, key, date_range=["2024-02-27", "2024-02-29"], dimensions=["event:page"],
                        include={"comparisons": {"mode": "previous_period"}},
                        filters=[["is_not", "event:page", ["/p4"]]], pagination={"limit": 3})
    assert status == 200, body
    before = sql(lake, *local_days(date(2024, 2, 24), date(2024, 2, 26), "UTC"), by="pathname")
    assert len(body["results"]) == 3
    for row in body["results"]:
        page = row["dimensions"][0]
        assert row["comparison"]["dimensions"] == [page]
        assert row["comparison"]["metrics"] == before.get(page, [0, 0])


def test_change_formula() -> None:
    """Percent change rounded half away from zero; bounce_rate and conversion_rate in percentage points."""
    assert change("visitors", 8, 9) == 13  # 12.5: Python's round() would give 12
    assert change("visitors", 10, 5) == -50
    assert change("visitors", 0, 3) == 100 and change("visitors", 0, 0) == 0
    assert change("bounce_rate", 50.0, 40.0) == -10.0 and change("bounce_rate", 0.0, 40.0) is None
    assert change("conversion_rate", 10.0, 12.25) == 2.3
    assert change("total_revenue", None, 5) is None


@pytest.mark.parametrize(("include", "message"), [
    ({"time_labels": True, "colours": True}, "Unknown include key"),
    ({"total_rows": "yes"}, "include.total_rows must be true or false"),
    ({"comparisons": {"mode": "last_week"}}, "mode"),
    ({"comparisons": {"mode": "custom"}}, "date_range is required"),
    ({"comparisons": {"mode": "previous_period", "date_range": ["2024-01-01", "2024-01-02"]}},
     "only allowed"),
    ({"comparisons": {"mode": "custom", "date_range": ["2024-01-02", "2024-01-01"]}}, "end before"),
    ([], "include must be an object"),
])
def test_bad_include(api: Api, key: str, include: Any, message: str) -> None:
    status, body = post(api, key, date_range="7d", include=include)
    assert status == 400 and message in body["error"], body


@pytest.mark.parametrize(("period", "date_param", "first", "last"), [
    ("day", None, date(2024, 3, 1), date(2024, 3, 1)),
    ("7d", None, date(2024, 2, 24), date(2024, 3, 1)),  # v1: the reference day and the 6 before
    ("30d", None, date(2024, 1, 31), date(2024, 3, 1)),
    (None, None, date(2024, 1, 31), date(2024, 3, 1)),
    ("month", "2024-02-10", date(2024, 2, 1), date(2024, 2, 29)),
    ("6mo", None, date(2023, 10, 1), date(2024, 3, 31)),
    ("12mo", "today", date(2023, 4, 1), date(2024, 3, 31)),
    ("year", "2023-06-01", date(2023, 1, 1), date(2023, 12, 31)),
    ("custom", "2024-01-05,2024-01-09", date(2024, 1, 5), date(2024, 1, 9)),
])
def test_v1_periods(period: str | None, date_param: str | None, first: date, last: date) -> None:
    """periods.v1_period counts as Plausible's Stats API v1 (legacy query builder), for the v1 routes."""
    rng = v1_period(period, date_param, now=A, tz=BERLIN)
    assert (rng.start, rng.end, rng.instants) == (first, last, None)


def test_v1_period_errors() -> None:
    for period, date_param in (("fortnight", None), ("custom", "2024-01-05"), ("7d", "9999-12-31"),
                               ("month", "0001-01-01"), ("day", "yesterday")):
        with pytest.raises(InvalidQueryError):
            v1_period(period, date_param, now=A)
