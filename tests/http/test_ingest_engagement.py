"""Plausible's engagement events over HTTP, against a real ``mallard serve`` on 127.0.0.1: the bodies its
0.4 tracker posts when a page is left are stored as reports on the page view, not as custom events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from .conftest import Live, serving
from .test_contract import stored
from .test_ingest_plausible import post

pytestmark = pytest.mark.slow  # a real mallard serve

SITE = "engage-http.example"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from serving("serve", tmp_path_factory, "engagement")


def query(c: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    today = datetime.now(UTC).date().isoformat()
    r = c.post("/api/v2/query", content=orjson.dumps({"site_id": SITE, "date_range": [today, today],
                                                     **body}),
               headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


def test_plausible_engagement_body_updates_the_page_not_the_events(serve: Live) -> None:
    url = f"https://{SITE}/blog/post"
    with serve.client() as c:
        assert post(c, {"n": "pageview", "u": url, "d": SITE, "r": None, "v": 28}).status_code == 202
        engagement = {"n": "engagement", "u": url, "d": SITE, "r": None, "sd": 73, "e": 12_500, "v": 28}
        assert post(c, engagement).status_code == 202
        rows = stored(serve.data_dir, SITE, 2)
        assert sorted((r["event_name"], r["scroll_depth"], r["engagement_ms"]) for r in rows) == [
            ("engagement", 73, 12_500), ("pageview", None, None)]
        assert query(c, metrics=["visitors", "events", "pageviews"]) == [
            {"dimensions": [], "metrics": [1, 1, 1]}]
        assert query(c, metrics=["events"], dimensions=["event:name"]) == [
            {"dimensions": ["pageview"], "metrics": [1]}]


@pytest.mark.parametrize("values", [{}, {"sd": "deep"}, {"e": -5}, {"sd": None, "e": 10**15}],
                         ids=["none", "sd-not-a-number", "e-negative", "e-too-large"])
def test_engagement_without_a_valid_value_is_a_400(serve: Live, values: dict[str, Any]) -> None:
    with serve.client() as c:
        r = post(c, {"n": "engagement", "u": f"https://{SITE}/", "d": SITE, **values})
    assert r.status_code == 400, r.text
    assert "'sd'" in r.json()["error"], r.text
