"""Hypothesis over every route of the table, in process: ``Api.handle`` with generated methods, paths, query
strings, headers and bodies (invalid UTF-8, huge numbers, extreme dates, NaN, deeply nested JSON).

Every answer must be below 500 (a 503 only with ``Retry-After``: storage or a query timeout) with a JSON
``{"error": ..., "code": ...}`` body on errors, and must come back within a generous bound: each call
runs in a thread joined with a timeout, so a hang fails the test instead of blocking it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mallard
from mallard._http import Api, Request, Response
from mallard._http.api import ROUTES
from mallard._http.routing import Route
from mallard._queries.registry import BREAKDOWNS, METRICS
from tests.strategies import json_values, odd_texts, request_bodies

pytestmark = pytest.mark.slow

HANG_SECS = 30.0  # far above any answer here; only a hang reaches it
LOCAL = "127.0.0.1"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
SITE = "fuzz.example"
TEXT_ERRORS = {("/metrics", 401), ("/health/ready", 503)}  # documented plain-text answers


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, str]]:
    """An Api with a password, an Admin key and a few stored events; yields (api, admin key)."""
    m = mallard.Mallard(data_dir=Path(tmp_path_factory.mktemp("fuzz-api")) / "data")
    try:
        api = Api.for_mallard(m)
        api.auth.set_password("correct horse battery staple")
        key, _ = api.auth.create_key("fuzz", "Admin")
        for i, page in enumerate(("/", "/pricing", "/signup", "/")):
            m.track("pageview" if i < 3 else "Signup", site=SITE, url=f"https://{SITE}{page}",
                    ip=f"192.0.2.{i % 2}", user_agent=UA)
        m.flush()
        yield api, key
    finally:
        m.close()


def call(api: Api, request: Request) -> Response:
    """``api.handle(request)`` in a thread; fails (instead of hanging) past HANG_SECS."""
    answers: list[Response] = []
    worker = threading.Thread(target=lambda: answers.append(api.handle(request)), daemon=True)
    worker.start()
    worker.join(HANG_SECS)
    assert not worker.is_alive(), f"no answer within {HANG_SECS} s: {request!r:.500}"
    return answers[0]


# -- strategies -------------------------------------------------------------------------------------
EXTREME_DATES = ["0001-01-01", "9999-12-31", "0000-00-00", "2024-02-30", "1969-12-31", "2024-13-01",
                 "10000-01-01", "-001-01-01", "2024-W01-1", "20240101", "２０２４-01-01"]
HUGE_NUMBERS = ["9" * 400, "-1", "0", "1e309", "NaN", "-Infinity", "1.5", "0x10", "１２", "4294967296",
                "18446744073709551616", "1_000"]


def dates() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(EXTREME_DATES), st.dates().map(lambda d: d.isoformat()),
                     st.dates().map(lambda d: d.strftime("%Y-%m-%d")))


def query_values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(SITE), dates(), st.sampled_from(HUGE_NUMBERS),
        st.sampled_from(["day", "7d", "all", "12mo", " 7d", "previous_period", "year_over_year", "raw",
                         "json", "csv", "hour", "week", "page:/,event:Signup", "page:/", "1 day",
                         "page==/;browser!=Chrome", "event:props:plan", ""]),
        st.integers(min_value=-(10**20), max_value=10**20).map(str),
        odd_texts(),
    )


def segments() -> st.SearchStrategy[str]:
    """A path segment: a real value, or text (percent-decoded by the adapter, so anything but '/')."""
    return st.one_of(st.sampled_from([*BREAKDOWNS, "event:props:plan", "visit:utm_source", "a" * 64,
                                      "app.js", "index.html", "..", "%2e%2e", "preact.module.js"]),
                     odd_texts().map(lambda s: s.replace("/", "") or "x"))


@st.composite
def query_strings(draw: st.DrawFn, route: Route) -> str:
    names = [p.name for p in route.params if p.where == "query"] + ["site_id", "start_date", "end_date"]
    pairs = draw(st.lists(st.tuples(st.one_of(st.sampled_from(names), odd_texts()), query_values()),
                          max_size=8))
    text = urlencode(pairs)
    tail = draw(st.sampled_from(["", "&%ff%fe=%c3%28", "&site_id=%80", "&&&=", "&" + "a=1&" * 250,
                                 "&limit=1&limit=" + "9" * 50]))
    return text + tail


def v2_bodies() -> st.SearchStrategy[Any]:
    """Stats API v2 queries: mostly well-formed, with extreme ranges, odd values and nesting."""
    return st.fixed_dictionaries(
        {"site_id": st.one_of(st.just(SITE), json_values(2)),
         "metrics": st.one_of(st.lists(st.sampled_from(list(METRICS)), min_size=1, max_size=3, unique=True),
                              json_values(3))},
        optional={
            "date_range": st.one_of(st.sampled_from(["all", "day", "7d", "bogus", ""]),
                                    st.lists(dates(), min_size=2, max_size=2),
                                    st.lists(st.sampled_from(["0001-01-01T00:00:00+14:00",
                                                              "9999-12-31T23:59:59-12:00"]),
                                             min_size=2, max_size=2), json_values(2)),
            "dimensions": st.one_of(st.lists(st.sampled_from(["time", "time:hour", "visit:source",
                                                              "event:page", "event:props:x"]),
                                             max_size=3), json_values(2)),
            "filters": st.one_of(st.just([["is", "event:page", ["/"]]]), json_values(6),
                                 st.just([["not"] * 1 + [["not", ["is", "event:page", ["/"]]]]])),
            "pagination": st.one_of(st.fixed_dictionaries({}, optional={
                "limit": st.one_of(st.integers(), st.floats()), "offset": st.integers()}), json_values(2)),
            "timezone": st.one_of(st.timezone_keys(), st.sampled_from(["Etc/GMT+14", "Mars/Olympus"]),
                                  json_values(1)),
            "order_by": json_values(3),
        })


def encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.just(b""), request_bodies(), v2_bodies().map(encode),
        st.fixed_dictionaries({"password": st.one_of(odd_texts(), json_values(2))}).map(encode),
        st.fixed_dictionaries({"name": st.one_of(odd_texts(), json_values(1)),
                               "scope": st.sampled_from(["ReadOnly", "Admin", "root", ""])}).map(encode),
        st.integers(min_value=1, max_value=100_000).map(lambda n: b"[" * n + b"]" * n),
        st.sampled_from([b"NaN", b"[NaN, Infinity]", b'{"d": 1e999}', b"1" * 5000, b"\xff\xfe\x00",
                         b'{"d": "\xc3\x28"}', b'{"password": "\xed\xa0\x80"}', b'"' + b"a" * 60_000]),
    )


@st.composite
def requests(draw: st.DrawFn, route: Route, admin_key: str) -> Request:
    path = re.sub(r"\{[a-z_]+\}", lambda _: quote(draw(segments()), safe=":"), route.pattern)
    method = draw(st.one_of(st.just(route.method), st.sampled_from(
        ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"])))
    auth = draw(st.sampled_from([{"x-api-key": admin_key}, {"authorization": f"Bearer {admin_key}"}, {},
                                 {"x-api-key": "\x00" * 3}, {"authorization": "Bearer"},
                                 {"cookie": "mm_session=" + "A" * 300}, {"cookie": '"; ;=\\'}]))
    extra = draw(st.dictionaries(
        st.sampled_from(["origin", "referer", "content-type", "x-forwarded-for", "x-real-ip",
                         "if-none-match", "host", "user-agent", "dnt", "x-request-id"]),
        st.one_of(odd_texts(), st.sampled_from(["null", "https://evil.example", "*", "1.2.3.4, ::1"])),
        max_size=4))
    return Request(method, path, draw(query_strings(route)), {"user-agent": UA, **extra, **auth},
                   draw(bodies()), client=draw(st.sampled_from([LOCAL, "192.0.2.9", "::1", None])),
                   scheme=draw(st.sampled_from(["http", "https"])))


# -- the property ----------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.pattern}" for r in ROUTES])
def test_no_route_answers_5xx_or_hangs(route: Route, setup: tuple[Api, str]) -> None:
    api, key = setup

    @settings(max_examples=15, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def check(data: st.DataObject) -> None:
        request = data.draw(requests(route, key))
        response = call(api, request)
        status = response.status
        assert status < 500 or (status == 503 and response.header("Retry-After")), (
            status, response.body[:300])
        if status >= 400 and (request.path, status) not in TEXT_ERRORS:
            body = (orjson.loads(response.body) if request.method != "HEAD"
                    else {"error": "", "code": ""})
            assert isinstance(body, dict) and isinstance(body.get("error"), str), body
            assert isinstance(body.get("code"), str), body

    check()



# Dates at the ends of the calendar used to raise OverflowError (periods.py, the stats ``compare``
# shift): found by these fuzzers; now a 400 naming the supported range.
KNOWN_OVERFLOWS = [
    ("GET", "/api/stats/main", "start_date=0001-01-01&end_date=0001-01-01&compare=previous_period", b""),
    ("GET", "/api/stats/timeseries", "start_date=9999-12-31&end_date=9999-12-31", b""),
    ("GET", "/api/stats/breakdown/pages", "start_date=9999-12-31&end_date=9999-12-31", b""),
    ("POST", "/api/v2/query", "", orjson.dumps({"site_id": SITE, "metrics": ["visitors"],
                                                 "date_range": ["9999-12-31", "9999-12-31"]})),
]


@pytest.mark.parametrize(("method", "path", "query", "body"), KNOWN_OVERFLOWS,
                         ids=[f"{m} {p}" for m, p, _, _ in KNOWN_OVERFLOWS])
def test_calendar_end_dates_answer_4xx(method: str, path: str, query: str, body: bytes,
                                                       setup: tuple[Api, str]) -> None:
    api, key = setup
    query = f"site_id={SITE}&{query}" if method == "GET" else query
    response = call(api, Request(method, path, query, {"x-api-key": key}, body, client=LOCAL))
    assert response.status == 400, response.body[:300]
    assert "0001-01-02" in orjson.loads(response.body)["error"]
