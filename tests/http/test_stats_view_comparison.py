"""``/api/stats/view`` with ``compare``: the range and time zone it answered in, the compared range's
series, and each card's change, equal to what the Stats API v2 reports for the same dates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

import mallard
from mallard._http import Api, Request

SITE = "cmp.example"
UA = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0"
CARD_METRICS = {"unique_visitors": "visitors", "total_pageviews": "pageviews", "total_sessions": "visits",
                "bounce_rate": "bounce_rate", "views_per_visit": "views_per_visit"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    m = mallard.Mallard(data_dir=tmp_path_factory.mktemp("view") / "data", timezone="Europe/Berlin")
    noon = datetime(2026, 5, 10, 10, tzinfo=UTC)
    # Before (May 3-5): 2 visitors, one bouncing. Current (May 6-8): 3 visitors, 2 of 3 bouncing.
    for day, ip, pages in ((3, "10.0.0.1", ["/", "/a"]), (4, "10.0.0.2", ["/"]),
                           (6, "10.0.0.3", ["/", "/a", "/b"]), (7, "10.0.0.4", ["/"]),
                           (8, "10.0.0.5", ["/x"])):
        for i, page in enumerate(pages):
            at = noon.replace(day=day) + timedelta(minutes=i)
            assert m.track("pageview", site=SITE, url=f"https://{SITE}{page}", ip=ip, user_agent=UA,
                           timestamp=at).accepted
    m.flush()
    try:
        yield Api.for_mallard(m)
    finally:
        m.close()


def get(api: Api, path: str, query: str) -> Any:
    r = api.handle(Request("GET", path, query, {"host": "127.0.0.1:8000"}, client="127.0.0.1"))
    assert r.status == 200, r.body
    return orjson.loads(r.body)


def test_view_states_its_range_and_time_zone(api: Api) -> None:
    body = get(api, "/api/stats/view", f"site_id={SITE}&start_date=2026-05-06&end_date=2026-05-08")
    assert body["range"] == {"start_date": "2026-05-06", "end_date": "2026-05-08",
                             "timezone": "Europe/Berlin"}
    assert "previous_timeseries" not in body


def test_view_compare_gives_the_previous_series_and_the_v2_changes(api: Api) -> None:
    body = get(api, "/api/stats/view", f"site_id={SITE}&start_date=2026-05-06&end_date=2026-05-08"
                                       "&compare=previous_period&breakdowns=pages")
    previous = body["previous_timeseries"]
    assert [r["date"] for r in previous] == ["2026-05-03", "2026-05-04", "2026-05-05"]
    assert [r["visitors"] for r in previous] == [1, 1, 0]
    assert [r["pageviews"] for r in previous] == [2, 1, 0]
    assert previous == get(api, "/api/stats/timeseries",
                           f"site_id={SITE}&start_date=2026-05-03&end_date=2026-05-05")
    change = body["main"]["comparison"]["change"]
    r = api.handle(Request("POST", "/api/v2/query", "", {"host": "127.0.0.1:8000"}, body=orjson.dumps({
        "site_id": SITE, "metrics": list(CARD_METRICS.values()), "date_range": ["2026-05-06", "2026-05-08"],
        "include": {"comparisons": {"mode": "previous_period"}}}), client="127.0.0.1"))
    assert r.status == 200, r.body
    v2 = orjson.loads(r.body)["results"][0]["comparison"]["change"]
    assert {k: change[k] for k in CARD_METRICS} == dict(zip(CARD_METRICS, v2, strict=True))
    assert change["unique_visitors"] == 50 and change["bounce_rate"] == pytest.approx(100 * 2 / 3 - 50)
