"""``GET /api/stats/view``'s panels (``panels=goals,properties``): each is, byte for byte, what the
dashboard's Goal conversions and Properties panels would ask for themselves (a v2 query; the property
keys and the first key's values), with and without filters; an unknown panel is a 400. (The view's
other parts against their own routes: tests/http/test_contract.py, through every adapter.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

import mallard
from mallard._http import Api, Request
from mallard._http.parts import Parts
from mallard._http.view import GOAL_METRICS

SITE = "view.example"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
LOCAL = "127.0.0.1"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """Open mode (loopback, no password): visitors with property-carrying pageviews and signups, a goal."""
    m = mallard.Mallard(data_dir=tmp_path / "data")
    served = Api(m)
    try:
        m.goals.add(SITE, event_name="Signup")
        for i in range(12):
            ip, url = f"192.0.2.{i + 1}", f"https://{SITE}/{'pricing' if i % 3 else ''}"
            m.track("pageview", site=SITE, url=url, ip=ip, user_agent=UA,
                    referrer="https://news.example/" if i % 2 else None,
                    props={"plan": ["free", "pro", "team"][i % 3],
                           **({"color": "red"} if i % 4 == 0 else {})})
            if i % 3 == 0:
                m.track("Signup", site=SITE, url=url, ip=ip, user_agent=UA, props={"plan": "pro"})
        m.flush()
        yield served
    finally:
        served.close()
        m.close()


def call(api: Api, method: str, path: str, params: dict[str, str], body: object = None) -> tuple[int, Any]:
    headers = {"host": "127.0.0.1:8000"}
    if body is not None:
        headers["content-type"] = "application/json"
    raw = b"" if body is None else orjson.dumps(body)
    r = api.handle(Request(method, path, urlencode(params), headers, raw, client=LOCAL))
    return r.status, orjson.loads(r.body) if r.body else None


@pytest.mark.parametrize("filters", [None, [["is", "visit:source", ["news.example"]]],
                                     "event:page==/pricing"], ids=["none", "v2-json", "string"])
def test_panels_are_what_the_panels_ask_for(api: Api, filters: object) -> None:
    params = {"site_id": SITE, "period": "day", "limit": "1"}
    if filters is not None:
        params["filters"] = filters if isinstance(filters, str) else json.dumps(filters)
    status, view = call(api, "GET", "/api/stats/view", {**params, "panels": "goals,properties"})
    assert status == 200, view
    rng = view["range"]
    goals_body = {"site_id": SITE, "metrics": list(GOAL_METRICS), "dimensions": ["event:goal"],
                  "date_range": [rng["start_date"], rng["end_date"]], "timezone": rng["timezone"]}
    if filters is not None:
        goals_body["filters"] = filters
    status, goals = call(api, "POST", "/api/v2/query", {}, goals_body)
    assert status == 200 and view["goals"] == goals
    if filters is None:
        assert [r["dimensions"] for r in goals["results"]] == [["Signup"]]
    # the properties part: the route's answer with its default limit (not the view's 1 row)
    alone = {k: v for k, v in params.items() if k != "limit"}
    status, keys = call(api, "GET", "/api/stats/properties", alone)
    assert status == 200 and view["properties"]["properties"] == keys
    if filters is None:
        assert [k["key"] for k in keys["properties"]] == ["plan", "color"]
    key = view["properties"]["key"]
    assert key == keys["properties"][0]["key"]
    carried = ["is_not", f"event:props:{key}", ["(unknown)"]]
    if filters is None:
        both: object = [carried]
    elif isinstance(filters, str):
        both = [["is", "event:page", ["/pricing"]], carried]
    else:
        both = [*filters, carried]  # type: ignore[misc]
    status, values = call(api, "GET", f"/api/stats/breakdown/event:props:{key}",
                          {**alone, "limit": "10", "filters": json.dumps(both)})
    assert status == 200 and view["properties"]["values"] == values and values
    # without panels, the view has none
    status, plain = call(api, "GET", "/api/stats/view", params)
    assert status == 200 and "goals" not in plain and "properties" not in plain


def test_no_property_no_values(tmp_path: Path) -> None:
    m = mallard.Mallard(data_dir=tmp_path / "data")
    served = Api(m)
    try:
        m.track("pageview", site=SITE, url=f"https://{SITE}/", ip="192.0.2.1", user_agent=UA)
        m.flush()
        status, view = call(served, "GET", "/api/stats/view",
                            {"site_id": SITE, "period": "day", "panels": "properties"})
        assert status == 200, view
        assert view["properties"] == {"properties": {"site_id": SITE, "properties": []}, "key": None,
                                      "values": None}
        assert "goals" not in view
    finally:
        served.close()
        m.close()


def test_an_unknown_panel_is_a_400(api: Api) -> None:
    status, body = call(api, "GET", "/api/stats/view", {"site_id": SITE, "panels": "goals,funnel"})
    assert status == 400 and body["error"] == ("Unknown panel 'funnel' in panels: use goals, "
                                               "properties.")


@pytest.mark.parametrize("params", [
    {"compare": "previous_period", "interval": "hour"},
    {"compare": "year_over_year", "filters": "visit:source==news.example"},
    {"compare": "previous_period", "breakdowns": "pages,sources"},
])
def test_parts_computed_at_once_answer_as_one_after_the_other(api: Api, params: dict[str, str]) -> None:
    """The view's parts run on the view workers; one worker (the parts one after the other on the
    request's thread, as before the workers) gives the same answer, comparison series included."""
    query = {"site_id": SITE, "period": "7d", "panels": "goals,properties", **params}
    status, together = call(api, "GET", "/api/stats/view", query)
    assert status == 200, together
    assert together["previous_timeseries"] and together["main"]["comparison"]
    api.cache.invalidate_site(SITE)
    api.parts = Parts(api.mallard.store.time_limit, api.settings.query_timeout_secs, workers=1)
    assert call(api, "GET", "/api/stats/view", query) == (200, together)


def test_an_invalid_compare_is_a_400_with_the_workers(api: Api) -> None:
    status, body = call(api, "GET", "/api/stats/view", {"site_id": SITE, "compare": "last_decade"})
    assert status == 400 and "Invalid compare" in body["error"]
