"""Every route that runs a query is bounded: counted against ``max_concurrent_queries`` and under
``query_timeout_secs`` (``Route.heavy``). Checked over the whole route table, so a new route cannot
escape the limits unnoticed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import mallard
from mallard._http import Api, Request
from mallard._http.api import ROUTES

LOCAL = "127.0.0.1"
SITE = "limits.example"
# Bookkeeping methods of Queries that run no query (date arithmetic, cache generations, the goals store).
_NOT_QUERIES = frozenset({"today", "date_range", "invalidate", "generation", "now", "first_day", "goals"})

# One request per non-public route that gets past validation to the handler's real work.
EXAMPLES: dict[tuple[str, str], tuple[str, str, dict[str, Any] | None]] = {
    ("GET", "/api/stats/main"): ("/api/stats/main", "period=day&compare=previous_period", None),
    ("GET", "/api/stats/timeseries"): ("/api/stats/timeseries", "period=7d", None),
    ("GET", "/api/stats/breakdown/{dimension}"): ("/api/stats/breakdown/pages", "period=day", None),
    ("GET", "/api/stats/sessions"): ("/api/stats/sessions", "period=day", None),
    ("GET", "/api/stats/view"): ("/api/stats/view", "period=day", None),
    ("GET", "/api/stats/export"): ("/api/stats/export", "period=day", None),
    ("GET", "/api/stats/funnel"): ("/api/stats/funnel", "period=day&steps=page:/,page:/b", None),
    ("GET", "/api/stats/sequences"): ("/api/stats/sequences", "period=day&steps=page:/,page:/b", None),
    ("GET", "/api/stats/retention"): ("/api/stats/retention", "period=30d", None),
    ("GET", "/api/stats/flow"): ("/api/stats/flow", "period=day&page=/", None),
    ("GET", "/api/stats/info"): ("/api/stats/info", "", None),
    ("POST", "/api/v1/sites/funnels"): ("/api/v1/sites/funnels", "", {"site_id": SITE, "name": "F",
                                                                      "steps": ["page:/"]}),
    ("GET", "/api/v1/sites/funnels"): ("/api/v1/sites/funnels", "", None),
    ("DELETE", "/api/v1/sites/funnels/{funnel_id}"): ("/api/v1/sites/funnels/1", "", {"site_id": SITE}),
    ("POST", "/api/v1/sites/shared-links"): ("/api/v1/sites/shared-links", "", {"site_id": SITE,
                                                                                "name": "L"}),
    ("GET", "/api/v1/sites/shared-links"): ("/api/v1/sites/shared-links", "", None),
    ("DELETE", "/api/v1/sites/shared-links/{link_id}"): ("/api/v1/sites/shared-links/1", "", None),
    ("GET", "/api/stats/properties"): ("/api/stats/properties", "period=day&q=p", None),
    ("GET", "/api/sites"): ("/api/sites", "", None),
    ("POST", "/api/v2/query"): ("/api/v2/query", "", {"site_id": SITE, "metrics": ["visitors"],
                                                       "date_range": "day"}),
    ("GET", "/api/stats/realtime"): ("/api/stats/realtime", "", None),
    ("GET", "/api/v1/stats/aggregate"): ("/api/v1/stats/aggregate", "period=day", None),
    ("GET", "/api/v1/stats/timeseries"): ("/api/v1/stats/timeseries", "period=7d", None),
    ("GET", "/api/v1/stats/breakdown"): ("/api/v1/stats/breakdown", "period=day&property=event:page", None),
    ("GET", "/api/v1/stats/realtime/visitors"): ("/api/v1/stats/realtime/visitors", "", None),
    ("PUT", "/api/v1/sites/goals"): ("/api/v1/sites/goals", "", {"site_id": SITE, "goal_type": "event",
                                                                 "event_name": "Signup"}),
    ("GET", "/api/v1/sites/goals"): ("/api/v1/sites/goals", "", None),
    ("DELETE", "/api/v1/sites/goals/{goal_id}"): ("/api/v1/sites/goals/1", "", {"site_id": SITE}),
    ("PUT", "/api/v1/sites/segments"): ("/api/v1/sites/segments", "", {
        "site_id": SITE, "name": "Firefox",
        "segment_data": {"filters": [["is", "visit:browser", ["Firefox"]]]}}),
    ("GET", "/api/v1/sites/segments"): ("/api/v1/sites/segments", "", None),
    ("DELETE", "/api/v1/sites/segments/{segment_id}"): ("/api/v1/sites/segments/1", "", {"site_id": SITE}),
    ("GET", "/api/v1/sites/{site_id}"): (f"/api/v1/sites/{SITE}", "", None),
    ("PUT", "/api/v1/sites/{site_id}"): (f"/api/v1/sites/{SITE}", "", {"currency": "EUR"}),
    ("POST", "/api/keys"): ("/api/keys", "", {"name": "spare"}),
    ("GET", "/api/keys"): ("/api/keys", "", None),
    ("DELETE", "/api/keys/{key_hash}"): ("/api/keys/0000", "", None),
    ("DELETE", "/api/gdpr/erase"): ("/api/gdpr/erase", "start_date=2024-01-01&end_date=2024-01-02",
                                    None),
}


class QueriesSpy:
    """The real Queries, noting which of its methods a handler used."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.used: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.used.add(name)
        return getattr(self._real, name)


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[tuple[Api, str]]:
    m = mallard.Mallard(data_dir=tmp_path / "data", cache_ttl_secs=0, max_concurrent_queries=1)
    try:
        api = Api.for_mallard(m)
        api.auth.set_password("correct horse battery staple")
        key, _ = api.auth.create_key("ops", "Admin")
        yield api, key
    finally:
        m.close()


def _request(key: str, method: str, pattern: str) -> Request:
    path, query, body = EXAMPLES[(method, pattern)]
    query = "&".join(q for q in (f"site_id={SITE}", query) if q)
    return Request(method, path, query, {"x-api-key": key, "content-type": "application/json"},
                   orjson.dumps(body) if body is not None else b"", client=LOCAL)


def test_every_route_that_runs_a_query_is_heavy(admin: tuple[Api, str]) -> None:
    """Each non-public route is called for real, with the Queries it reaches watched: whichever runs a
    query must be ``heavy`` (concurrency limit and timeout)."""
    api, key = admin
    spy = QueriesSpy(api.mallard.queries)
    api.mallard.queries = spy  # type: ignore[assignment]
    guarded = [r for r in ROUTES if r.access != "public"]
    assert {(r.method, r.pattern) for r in guarded} == set(EXAMPLES), "add an example for new routes"
    unbounded = []
    for route in guarded:
        spy.used.clear()
        response = api.handle(_request(key, route.method, route.pattern))
        assert response.status < 500 and response.status not in (401, 403), (route.pattern,
                                                                            response.body)
        if spy.used - _NOT_QUERIES and not route.heavy:
            unbounded.append(f"{route.method} {route.pattern} ({', '.join(sorted(spy.used))})")
    assert not unbounded, f"routes that query without the heavy-query limit: {unbounded}"


# The read routes that run no query (the server facts, the saved funnels list) are not heavy: the test
# above fails for any route that queries without being heavy.
LIGHT_READS = frozenset({"/api/stats/info", "/api/v1/sites/funnels"})


def test_only_the_light_read_routes_are_not_heavy() -> None:
    assert {r.pattern for r in ROUTES if r.access == "read" and not r.heavy} == LIGHT_READS


@pytest.mark.parametrize("pattern", [r.pattern for r in ROUTES if r.access == "read" and r.heavy])
def test_heavy_routes_answer_429_when_every_slot_is_taken(admin: tuple[Api, str], pattern: str) -> None:
    """With every heavy-query slot held, each read route that queries (timeseries included) answers
    429 with Retry-After; once the slot is free it answers 200."""
    api, key = admin
    method = next(r.method for r in ROUTES if r.pattern == pattern)
    assert api.heavy.try_enter()  # another request holds the only slot
    try:
        r = api.handle(_request(key, method, pattern))
        headers = {k.lower(): v for k, v in r.headers}
        assert r.status == 429 and headers["retry-after"] == "1", r.body
        assert "error" in orjson.loads(r.body)
    finally:
        api.heavy.leave()
    assert api.handle(_request(key, method, pattern)).status == 200
