"""Dates at the ends of the calendar (0001-01-01, 9999-12-31): every query answers, or refuses with an
InvalidQueryError / a 400 naming the problem; none overflows into an OverflowError or a 500.

Hypothesis draws ranges across the whole ``date.min..date.max`` and time zones from UTC-12 to UTC+14, through
the Python API and through the HTTP API (``Api.handle`` in process)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mallard
from mallard._errors import InvalidQueryError
from mallard._http import Api, Request
from mallard._queries.periods import FIRST_DATE, LAST_DATE, DateRange

from .http.conftest import Live, serving
from .queries.data import event, write_lake

ZONES = ("UTC", "Etc/GMT+12", "Pacific/Kiritimati", "Europe/Berlin", "America/Los_Angeles")
SITE = "edge.example"
EXAMPLES = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def ranges(draw: st.DrawFn) -> tuple[date, date]:
    """A start anywhere in the calendar and an end 0-400 days later (clipped at date.max), with the
    calendar's ends drawn often."""
    start = draw(st.one_of(st.dates(), st.sampled_from([date.min, FIRST_DATE, LAST_DATE, date.max]),
                           st.dates(max_value=date(1, 2, 1)), st.dates(min_value=date(9999, 11, 1))))
    span = draw(st.integers(0, 400))
    end = start + timedelta(days=span) if (date.max - start).days >= span else date.max
    return start, end


@pytest.fixture(scope="module")
def m(tmp_path_factory: pytest.TempPathFactory) -> Iterator[mallard.Mallard]:
    """A Mallard over a lake holding events near both ends of the calendar."""
    data = write_lake(tmp_path_factory.mktemp("edges") / "data", [
        event("a", "0001-01-02 00:30:00", site=SITE), event("a", "0001-01-09 10:00:00", site=SITE),
        event("b", "9999-12-20 08:00:00", site=SITE), event("b", "9999-12-27 23:00:00", site=SITE),
        event("c", "9999-12-30 12:00:00", path="/last", site=SITE)])
    with mallard.Mallard(data_dir=data, cache_ttl_secs=0) as instance:
        yield instance


# -- the Python API ----------------------------------------------------------------------------------
def _python_queries(q: Any, start: date, end: date, tz: str) -> None:
    rng = {"start_date": start, "end_date": end, "timezone": tz}
    q.main(SITE, **rng)
    for interval in ("hour", "day", "week", "month"):
        try:
            q.timeseries(SITE, interval=interval, **rng)
        except InvalidQueryError as exc:
            assert exc.code in ("date_out_of_range", "invalid_interval"), exc
    q.breakdown(SITE, "pages", **rng)
    q.retention(SITE, weeks=52, **rng)
    q.flow(SITE, "/", **rng)
    q.funnel(SITE, ["page:/", "page:/last"], **rng)
    q.export(SITE, kind="daily", **rng)


@pytest.mark.slow
@EXAMPLES
@given(ranges(), st.sampled_from(ZONES))
@example((date.max, date.max), "UTC")
@example((date.min, date.min), "Pacific/Kiritimati")
@example((date(9999, 12, 1), LAST_DATE), "Etc/GMT+12")
def test_python_api_never_overflows(m: mallard.Mallard, dates: tuple[date, date], tz: str) -> None:
    """Inside FIRST_DATE..LAST_DATE every preset answers; outside, InvalidQueryError names the bounds."""
    start, end = dates
    try:
        _python_queries(m.queries, start, end, tz)
    except InvalidQueryError as exc:
        assert exc.code == "date_out_of_range" and not (start >= FIRST_DATE and end <= LAST_DATE)
        assert f"between {FIRST_DATE} and {LAST_DATE}" in exc.message
    else:
        assert start >= FIRST_DATE and end <= LAST_DATE


def test_buckets_and_cohorts_at_the_last_supported_dates(m: mallard.Mallard) -> None:
    """Week and month buckets and retention cohorts in the calendar's last weeks (once OverflowErrors)."""
    q = m.queries
    weeks = q.timeseries(SITE, start_date=date(9999, 12, 1), end_date=LAST_DATE, interval="week")
    assert [r["date"] for r in weeks.rows][-1] == "9999-12-27"
    assert sum(r["pageviews"] for r in weeks.rows) == 3
    months = q.timeseries(SITE, start_date=date(9999, 11, 1), end_date=LAST_DATE, interval="month")
    assert [(r["date"], r["pageviews"]) for r in months.rows] == [("9999-11-01", 0), ("9999-12-01", 3)]
    ret = q.retention(SITE, weeks=4, start_date=date(9999, 12, 1), end_date=LAST_DATE)
    assert [(c["cohort_date"], c["retained"][:2]) for c in ret["cohorts"]] == [
        ("9999-12-20", [1, 1]), ("9999-12-27", [1, 0])]
    assert not any(any(c["complete"]) for c in ret["cohorts"])
    first = q.main(SITE, start_date=FIRST_DATE, end_date=date(1, 1, 9))
    assert first.total_pageviews == 2


def test_period_all_starting_at_the_first_date(m: mallard.Mallard) -> None:
    """period=all over a lake whose first partition is 0001-01-02 starts at FIRST_DATE, also west of UTC."""
    for tz in ("UTC", "Etc/GMT+12"):
        rng = m.queries.date_range(SITE, "all", timezone=tz)
        assert rng.start == FIRST_DATE, tz


def test_shifted_range_refuses_to_leave_the_calendar() -> None:
    rng = DateRange(date(1, 6, 1), date(1, 6, 30))
    assert rng.shifted(30) == DateRange(date(1, 5, 2), date(1, 5, 31))
    with pytest.raises(InvalidQueryError, match="comparison period"):
        rng.shifted(365)


def test_retention_days_cannot_reach_before_the_calendar(tmp_path: Path) -> None:
    """A retention_days so large that today minus it is before year 1 is a ConfigurationError, not an
    OverflowError when retention runs."""
    with pytest.raises(mallard.ConfigurationError, match="retention_days"):
        mallard.Settings(data_dir=tmp_path, retention_days=10**9)


# -- the HTTP API ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api(m: mallard.Mallard) -> Api:
    api = Api.for_mallard(m)
    if not api.auth.password_configured():
        api.auth.set_password("correct horse battery staple")
    return api


@pytest.fixture(scope="module")
def key(api: Api) -> str:
    plaintext, _ = api.auth.create_key("edges", "Admin")
    return str(plaintext)


def _get(api: Api, key: str, path: str, **params: str) -> tuple[int, Any]:
    query = "&".join(f"{k}={v}" for k, v in {"site_id": SITE, **params}.items())
    r = api.handle(Request("GET", path, query, {"x-api-key": key}, client="127.0.0.1"))
    return r.status, orjson.loads(r.body) if r.body.startswith((b"{", b"[")) else r.body


@pytest.mark.slow
@EXAMPLES
@given(ranges(), st.sampled_from(["", "previous_period", "year_over_year"]),
       st.sampled_from(["hour", "day", "week", "month"]))
@example((date.max, date.max), "", "day")
@example((date(1, 1, 2), date(1, 1, 3)), "year_over_year", "day")
@example((date(9999, 12, 24), LAST_DATE), "previous_period", "week")
def test_http_api_never_answers_5xx(api: Api, key: str, dates: tuple[date, date], compare: str,
                                    interval: str) -> None:
    """Stats routes, the v2 query and erasure over any dates: 200, or a 400 whose error names the dates."""
    start, end = (d.isoformat() for d in dates)
    rng = {"start_date": start, "end_date": end}
    answers = [
        _get(api, key, "/api/stats/main", compare=compare, **rng),
        _get(api, key, "/api/stats/timeseries", interval=interval, **rng),
        _get(api, key, "/api/stats/breakdown/pages", **rng),
        _get(api, key, "/api/stats/retention", weeks="52", **rng),
        _get(api, key, "/api/stats/sessions", **rng),
        _get(api, key, "/api/stats/export", **rng),
    ]
    body = orjson.dumps({"site_id": SITE, "metrics": ["visitors"], "date_range": [start, end],
                         "dimensions": [f"time:{interval}"]})
    r = api.handle(Request("POST", "/api/v2/query", "", {"x-api-key": key}, body, client="127.0.0.1"))
    answers.append((r.status, orjson.loads(r.body)))
    for status, payload in answers:
        assert status in (200, 400), (status, payload)
        if status == 400:
            assert any(word in payload["error"] for word in ("between", "comparison", "366 days",
                                                               "time buckets")), payload
    if dates[0] >= FIRST_DATE and dates[1] <= LAST_DATE and (dates[1] - dates[0]).days <= 366:
        assert answers[2][0] == 200  # a plain breakdown over supported dates always answers


def test_erase_at_the_calendar_ends_answers(api: Api, key: str, tmp_path: Path) -> None:
    """DELETE /api/gdpr/erase over the first and last dates answers 200 (nothing there to erase)."""
    for start, end in (("0001-01-01", "0001-01-01"), ("9999-12-31", "9999-12-31")):
        r = api.handle(Request("DELETE", "/api/gdpr/erase",
                               f"site_id=other.example&start_date={start}&end_date={end}",
                               {"x-api-key": key}, client="127.0.0.1"))
        assert r.status == 200, r.body



# -- every route and key at the calendar's ends ---------------------------------------------------------
ENDS = ("0001-01-01", "9999-12-31")
ROUTES = (("/api/stats/main", {}), ("/api/stats/main", {"compare": "previous_period"}),
          ("/api/stats/main", {"compare": "year_over_year"}), ("/api/stats/timeseries", {}),
          ("/api/stats/breakdown/pages", {}), ("/api/stats/sessions", {}),
          ("/api/stats/view", {"breakdowns": "pages"}), ("/api/stats/export", {}),
          ("/api/stats/export", {"format": "json"}), ("/api/stats/export", {"kind": "raw"}),
          ("/api/stats/funnel", {"steps": "page:/,page:/last"}),
          ("/api/stats/sequences", {"steps": "page:/,page:/last"}), ("/api/stats/retention", {}),
          ("/api/stats/flow", {"page": "/"}))
OUT_OF_RANGE = f"between {FIRST_DATE} and {LAST_DATE}"


@pytest.mark.parametrize("day", ENDS)
@pytest.mark.parametrize(("path", "extra"), ROUTES)
def test_every_stats_route_refuses_the_calendar_ends(api: Api, key: str, path: str, extra: dict[str, str],
                                                     day: str) -> None:
    """start_date/end_date of 0001-01-01 or 9999-12-31, as start, as end or both, on every /api/stats/*
    route: a 400 naming the supported dates."""
    for start, end in ((day, day), (day, "0001-01-03") if day < "5" else ("9999-12-29", day)):
        status, body = _get(api, key, path, start_date=start, end_date=end, **extra)
        assert status == 400 and OUT_OF_RANGE in body["error"], (path, extra, start, end, body)


V2_EDGES = (
    {"date_range": ["0001-01-01", "0001-01-02"]},
    {"date_range": ["9999-12-30", "9999-12-31"]},
    {"date_range": ["0001-01-01T00:00:00+05:00", "0001-01-01T10:00:00+05:00"]},  # year 0 in UTC
    {"date_range": ["9999-12-31T20:00:00-05:00", "9999-12-31T23:59:59-05:00"]},  # year 10000 in UTC
    {"date_range": ["9999-12-30T00:00:00+00:00", "9999-12-31T23:59:59+00:00"]},
    {"date_range": "7d", "include": {"comparisons": {"mode": "custom",
                                                     "date_range": ["0001-01-01", "0001-01-07"]}}},
    {"date_range": "7d", "include": {"comparisons": {"mode": "custom",
                                                     "date_range": ["9999-12-25", "9999-12-31"]}}},
    {"date_range": ["0001-01-02", "0001-01-05"], "include": {"comparisons": {"mode": "previous_period"}}},
    {"date_range": ["0001-01-02", "0001-01-05"], "include": {"comparisons": {"mode": "year_over_year"}}},
)


@pytest.mark.parametrize("body", V2_EDGES)
def test_v2_query_refuses_the_calendar_ends(api: Api, key: str, body: dict[str, Any]) -> None:
    """Every date of the v2 body (date_range dates and datetimes, comparison ranges): a 400, and the same
    InvalidQueryError from Queries.query_json."""
    full = {"site_id": SITE, "metrics": ["visitors"], "dimensions": ["time:day"], **body}
    r = api.handle(Request("POST", "/api/v2/query", "", {"x-api-key": key}, orjson.dumps(full),
                           client="127.0.0.1"))
    assert r.status == 400, r.body
    error = orjson.loads(r.body)["error"]
    assert OUT_OF_RANGE in error or "supported dates" in error, error
    with pytest.raises(InvalidQueryError) as info:
        api.queries.query_json(full)
    assert info.value.code == "date_out_of_range"


def test_v2_query_at_the_last_supported_dates_answers(api: Api, key: str) -> None:
    """The supported ends themselves answer, a datetime range and a comparison included."""
    for body in ({"date_range": [str(FIRST_DATE), "0001-01-09"]},
                 {"date_range": ["9999-12-30T00:00:00+00:00", "9999-12-30T23:59:59+00:00"]},
                 {"date_range": ["9999-12-20", str(LAST_DATE)], "include": {"comparisons": {
                     "mode": "previous_period", "match_day_of_week": True}, "time_labels": True}}):
        full = {"site_id": SITE, "metrics": ["pageviews"], "dimensions": ["time:day"], **body}
        r = api.handle(Request("POST", "/api/v2/query", "", {"x-api-key": key}, orjson.dumps(full),
                               client="127.0.0.1"))
        assert r.status == 200, r.body


@pytest.mark.parametrize("day", ENDS)
def test_python_api_refuses_the_calendar_ends(m: mallard.Mallard, day: str) -> None:
    """Every Queries method with a date at the calendar's end: InvalidQueryError, never OverflowError."""
    q, rng = m.queries, {"start_date": day, "end_date": day}
    calls = [lambda: q.main(SITE, **rng), lambda: q.timeseries(SITE, **rng),
             lambda: q.breakdown(SITE, "pages", **rng), lambda: q.export(SITE, **rng),
             lambda: q.export(SITE, kind="raw", **rng), lambda: q.sessions(SITE, **rng),
             lambda: q.query(SITE, **rng), lambda: q.retention(SITE, **rng), lambda: q.flow(SITE, "/", **rng),
             lambda: q.funnel(SITE, ["page:/", "page:/last"], **rng),
             lambda: q.sequences(SITE, ["page:/", "page:/last"], **rng),
             lambda: q.query_json({"site_id": SITE, "metrics": ["visitors"], "date_range": [day, day]})]
    for call in calls:
        with pytest.raises(InvalidQueryError, match=OUT_OF_RANGE):
            call()


@pytest.mark.slow
@pytest.mark.parametrize("command", ["stats", "export"])
def test_cli_refuses_the_calendar_ends(m: mallard.Mallard, command: str) -> None:
    """``mallard stats|export --start-date 9999-12-31``: exit status 2 and one line naming the dates, no
    traceback; ``mallard erase`` over the whole calendar answers."""
    data = str(m.settings.data_dir)
    for day in ENDS:
        done = subprocess.run([sys.executable, "-m", "mallard", command, SITE, "--data-dir", data,
                               "--start-date", day, "--end-date", day], capture_output=True, text=True,
                              timeout=120, env=_env())
        assert done.returncode == 2, done
        assert OUT_OF_RANGE in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_cli_erase_over_the_whole_calendar(tmp_path: Path) -> None:
    data = write_lake(tmp_path / "data", [event("a", "2024-05-01 10:00:00", site=SITE)])
    done = subprocess.run([sys.executable, "-m", "mallard", "erase", SITE, "--data-dir", str(data),
                           "--start-date", "0001-01-01", "--end-date", "9999-12-31"], capture_output=True,
                          text=True, timeout=120, env=_env())
    assert done.returncode == 0 and '"status": "erased"' in done.stdout, done


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    return {**{k: v for k, v in os.environ.items() if not k.startswith("MALLARD_")}, "PYTHONPATH": root}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from serving("serve", tmp_path_factory, "edges")


@pytest.mark.parametrize("day", ENDS)
def test_real_server_answers_400_at_the_calendar_ends(server: Live, day: str) -> None:
    """Through ``mallard serve``: a stats route and the v2 query answer 400 with a JSON error (the log
    must show no traceback: the fixture checks it)."""
    with server.client() as c:
        r = c.get("/api/stats/main", params={"site_id": SITE, "start_date": day, "end_date": day})
        assert r.status_code == 400 and OUT_OF_RANGE in r.json()["error"], r.text
        r = c.post("/api/v2/query", json={"site_id": SITE, "metrics": ["visitors"], "date_range": [day, day]})
        assert r.status_code == 400 and OUT_OF_RANGE in r.json()["error"], r.text
