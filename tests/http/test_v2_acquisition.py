"""Acquisition over real HTTP: Plausible-shaped events to ``mallard serve``, then the Stats API v2 with
``visit:channel`` and ``visit:entry_page_hostname`` as dimensions and filters, checked against SQL over
the Parquet files the server wrote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import orjson
import pytest

from .conftest import Live, eventually, serving

pytestmark = pytest.mark.slow  # a real mallard serve

SITE = "acq.example"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/{}.0"
JSON = {"Content-Type": "application/json"}

# (page URL, referrer): one visitor each (the User-Agent differs), one pageview each
VISITS = [
    (f"https://{SITE}/a?gclid=Cj0KCQ", "https://www.google.com/"),  # Paid Search
    (f"https://{SITE}/b", "https://www.google.com/"),  # Organic Search
    (f"https://{SITE}/c", "https://chatgpt.com/"),  # AI Assistants
    (f"https://blog.{SITE}/d?ref=perplexity.ai", None),  # AI Assistants (source from ref)
    (f"https://blog.{SITE}/e?utm_source=ig", None),  # Organic Social (source from utm_source)
    (f"https://{SITE}/f", None),  # Direct
    (f"https://{SITE}/g", "https://news.example.org/story"),  # Referral
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from serving("serve", tmp_path_factory, "acquisition")


def _lake_sql(live: Live, select: str, where: str) -> list[tuple[object, ...]]:
    files = [str(p) for p in sorted(Path(live.data_dir, "events").glob("*/*/*.parquet"))]
    if not files:
        return []
    con = duckdb.connect()
    try:
        return con.execute(f"SELECT {select} FROM read_parquet(?, hive_partitioning=true, "
                           f"union_by_name=true) WHERE site_id = ? AND {where} GROUP BY ALL ORDER BY ALL",
                           [files, SITE]).fetchall()
    finally:
        con.close()


def test_channel_and_entry_hostname_over_http(server: Live) -> None:
    with server.client() as c:
        for i, (url, referrer) in enumerate(VISITS):
            body = {"d": SITE, "n": "pageview", "u": url, **({"r": referrer} if referrer else {})}
            r = c.post("/api/event", content=orjson.dumps(body),
                       headers={**JSON, "User-Agent": UA.format(100 + i)})
            assert r.status_code in (200, 202), r.text

        def v2(body: dict[str, object]) -> list[dict[str, object]]:
            r = c.post("/api/v2/query", content=orjson.dumps({"site_id": SITE, "date_range": "day",
                                                              **body}), headers=JSON)
            assert r.status_code == 200, r.text
            results: list[dict[str, object]] = r.json()["results"]
            return results

        # every event flushed to the lake (every 0.2 s), so SQL over the files sees them all
        eventually(lambda: _lake_sql(server, "count(*)", "true") == [(len(VISITS),)])
        by_channel = {r["dimensions"][0]: r["metrics"] for r in v2(  # type: ignore[index]
            {"metrics": ["visitors", "visits"], "dimensions": ["visit:channel"]})}
        stored = _lake_sql(server, "channel, count(DISTINCT visitor_id), count(*)", "true")
        assert by_channel == {name: [visitors, visits] for name, visitors, visits in stored}
        assert by_channel == {"Paid Search": [1, 1], "Organic Search": [1, 1], "AI Assistants": [2, 2],
                              "Organic Social": [1, 1], "Direct": [1, 1], "Referral": [1, 1]}
        # click id and sources as stored
        assert _lake_sql(server, "pathname, referrer_source, click_id", "click_id IS NOT NULL") == [
            ("/a", "Google", "gclid")]
        assert _lake_sql(server, "pathname, referrer_source", "hostname LIKE 'blog.%'") == [
            ("/d", "Perplexity"), ("/e", "Instagram")]

        filtered = v2({"metrics": ["visitors"], "dimensions": ["visit:entry_page_hostname"],
                       "filters": [["is", "visit:channel", ["AI Assistants", "Organic Social"]]]})
        assert {r["dimensions"][0]: r["metrics"] for r in filtered} == {  # type: ignore[index]
            f"blog.{SITE}": [2], SITE: [1]}
        assert filtered == [
            {"dimensions": [host], "metrics": [n]} for host, n in _lake_sql(
                server, "hostname, count(DISTINCT visitor_id)",
                "channel IN ('AI Assistants', 'Organic Social')")[::-1]]
