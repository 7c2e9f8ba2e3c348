"""Filters on the /api/stats/* routes, through a real ``mallard serve``: Plausible's v2 filters as JSON in
``filters`` ("visitors who did X" as ``has_done``, several values, segments), and saved segments on every
route, the behavioural ones (funnel, sequences, retention, flow, raw export) too.

The lake: 6 visitors with one 3-page session each (/p0, /p1, /p2, a minute apart), 2 of whom also sent a
``signup`` event; a segment "Signed up" holds ``has_done(event:name is signup)``, "From p2" holds
``event:page is /p2``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import mallard

from .conftest import Live, serving

pytestmark = pytest.mark.slow  # a real mallard serve

SITE = "filters.example"
DID_SIGNUP: list[Any] = [["has_done", ["is", "event:name", ["signup"]]]]
PLAIN_SIGNUP: list[Any] = [["is", "event:name", ["signup"]]]
#: The day of the traffic, and the fixed range every request reads (a relative period read on both sides
#: of midnight UTC gave two requests of one comparison two different ranges).
DAY = datetime.now(UTC).date() - timedelta(days=1)
RANGE = {"start_date": (DAY - timedelta(days=5)).isoformat(), "end_date": DAY.isoformat()}


def _fill(data_dir: Path, ids: dict[str, int]) -> None:
    at = datetime.combine(DAY, time(10), tzinfo=UTC)
    m = mallard.Mallard(data_dir=data_dir)
    try:
        for v in range(6):
            ip = f"10.0.0.{v}"
            ua = f"Mozilla/5.0 (X11; Linux x86_64; rv:{100 + v}.0) Gecko/20100101 Firefox/{100 + v}.0"
            for i in range(3):
                m.track("pageview", site=SITE, url=f"https://{SITE}/p{i}", ip=ip, user_agent=ua,
                        timestamp=at + timedelta(minutes=10 * v + i))
            if v < 2:
                m.track("signup", site=SITE, url=f"https://{SITE}/p2", ip=ip, user_agent=ua,
                        timestamp=at + timedelta(minutes=10 * v + 3))
        m.flush()
        ids["did"] = m.queries.goals.add_segment(SITE, "Signed up", DID_SIGNUP).id
        ids["page"] = m.queries.goals.add_segment(SITE, "From p2", [["is", "event:page", ["/p2"]]]).id
    finally:
        m.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, dict[str, int]]]:
    ids: dict[str, int] = {}
    for live in serving("serve", tmp_path_factory, "stats-filters", fill=lambda d: _fill(d, ids)):
        yield live, ids


def get(live: Live, path: str, filters: object, **params: str) -> httpx.Response:
    text = filters if isinstance(filters, str) else json.dumps(filters)
    return httpx.get(live.base + path, params={"site_id": SITE, **RANGE, "filters": text, **params},
                     timeout=30)


def ok(live: Live, path: str, filters: object, **params: str) -> Any:
    r = get(live, path, filters, **params)
    assert r.status_code == 200, r.text
    return r.json()


def test_did_x_counts_the_pageviews_of_the_visits_that_did_it(server: tuple[Live, dict[str, int]]) -> None:
    live, _ = server
    main = ok(live, "/api/stats/main", DID_SIGNUP)
    assert (main["unique_visitors"], main["total_sessions"], main["total_pageviews"]) == (2, 2, 6)
    assert main["total_pageviews"] == pytest.approx(main["views_per_visit"] * main["total_sessions"])
    assert main["total_events"] == 8  # their pageviews and their signups
    pages = ok(live, "/api/stats/breakdown/pages", DID_SIGNUP)
    assert {r["value"]: (r["visitors"], r["pageviews"]) for r in pages} == {
        "/p0": (2, 2), "/p1": (2, 2), "/p2": (2, 2)}
    series = ok(live, "/api/stats/timeseries", DID_SIGNUP)
    assert sum(r["pageviews"] for r in series) == 6
    # the string form keeps Mallard Metrics' meaning: the signup events themselves (no pageview)
    plain = ok(live, "/api/stats/main", "event==signup")
    assert (plain["unique_visitors"], plain["total_pageviews"]) == (2, 0)


def test_json_filters_take_several_values(server: tuple[Live, dict[str, int]]) -> None:
    live, _ = server
    both = ok(live, "/api/stats/main", [["is", "visit:browser_version", ["100.0", "101.0"]]])
    assert both["unique_visitors"] == 2


@pytest.mark.parametrize("form", ["string", "json"])
def test_a_segment_filters_every_stats_route(server: tuple[Live, dict[str, int]], form: str) -> None:
    live, ids = server
    seg = f"segment=={ids['did']}" if form == "string" else [["is", "segment", [ids["did"]]]]
    assert ok(live, "/api/stats/main", seg) == ok(live, "/api/stats/main", DID_SIGNUP)
    for path, extra in [("/api/stats/timeseries", {}), ("/api/stats/breakdown/sources", {}),
                        ("/api/stats/sessions", {}), ("/api/stats/view", {}),
                        ("/api/stats/retention", {"weeks": "1"}),
                        ("/api/stats/flow", {"page": "/p0"}),
                        ("/api/stats/funnel", {"steps": "page:/p0,page:/p2"}),
                        ("/api/stats/sequences", {"steps": "page:/p0,page:/p2"})]:
        assert ok(live, path, seg, **extra) == ok(live, path, DID_SIGNUP, **extra), path
    raw = get(live, "/api/stats/export", seg, kind="raw", format="json")
    assert raw.status_code == 200, raw.text
    assert {r["event_name"] for r in raw.json()} == {"signup"}  # has_done reads as X on single events


def test_behavioural_routes_read_did_x_as_the_sessions_with_x(server: tuple[Live, dict[str, int]]) -> None:
    live, ids = server
    steps = {"steps": "page:/p0,page:/p1"}
    funnel = ok(live, "/api/stats/funnel", DID_SIGNUP, **steps)
    assert funnel == ok(live, "/api/stats/funnel", PLAIN_SIGNUP, **steps)
    assert funnel[0]["visitors"] == 2
    not_done = ok(live, "/api/stats/funnel", [["has_not_done", PLAIN_SIGNUP[0]]], **steps)
    assert not_done[0]["visitors"] == 4
    by_page = ok(live, "/api/stats/funnel", [["is", "segment", [ids["page"]]]], **steps)
    assert by_page[0]["visitors"] == 6
    # flow selects visitors as the funnel does: has_not_done(X) keeps those without X (the funnel's 4 at
    # /p0), not those with any other event
    flow = ok(live, "/api/stats/flow", [["has_not_done", PLAIN_SIGNUP[0]]], page="/p0")
    assert flow["visitors_at_page"] == not_done[0]["visitors"] == 4


@pytest.mark.parametrize(("path", "filters", "words"), [
    ("/api/stats/main", "[[\"is\", \"visit:source\"", "must be JSON"),
    ("/api/stats/main", "[" * 5000, "must be JSON"),
    ("/api/stats/main", [["is", "segment", [999]]], "does not exist"),
    ("/api/stats/flow", [["has_done", ["is", "visit:source", ["Google"]]]], "event dimensions"),
], ids=["broken-json", "nested-5000-deep", "unknown-segment", "has-done-on-a-visit-dimension"])
def test_bad_filters_are_a_400_with_a_message(server: tuple[Live, dict[str, int]], path: str,
                                              filters: object, words: str) -> None:
    r = get(server[0], path, filters, page="/p0")
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]


@pytest.mark.parametrize("path", ["/api/stats/funnel", "/api/stats/sequences", "/api/stats/retention",
                                  "/api/stats/flow"])
def test_a_segment_in_the_string_form_works_on_behavioural_routes(server: tuple[Live, dict[str, int]],
                                                                 path: str) -> None:
    live, ids = server
    extra = {"steps": "page:/p0,page:/p2", "page": "/p0", "weeks": "1"}
    assert ok(live, path, f"segment=={ids['page']}", **extra) == ok(live, path, "page==/p2", **extra)
