"""Several worker processes on one data directory, over real HTTP: every worker ingests, every worker's stats
see every flushed event, ``/metrics`` reports the totals of all workers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Live, eventually, start, stop

pytestmark = pytest.mark.slow  # a real two-worker server

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
SITE = "workers.example"
EVENTS = 200


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    live = start("serve", tmp_path_factory.mktemp("workers") / "data", workers=2)
    try:
        yield live
    finally:
        stop(live)


def metric(body: str, name: str) -> float:
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    return 0.0


def test_every_worker_ingests_and_every_worker_sees_all(two_workers: Live) -> None:
    """Events sent over many connections (spread over both workers) are all counted by whichever worker
    answers the stats query, and /metrics sums the ingestion counters of both workers."""
    for i in range(EVENTS):
        with httpx.Client(base_url=two_workers.base, timeout=30) as c:  # a new connection each time
            r = c.post("/api/event", content=orjson.dumps(
                {"d": SITE, "n": "pageview", "u": f"https://{SITE}/p/{i}"}),
                headers={"Content-Type": "text/plain", "User-Agent": UA})
            assert r.status_code == 202

    def counted() -> bool:
        answers = set()
        for _ in range(6):
            with httpx.Client(base_url=two_workers.base, timeout=30) as c:
                answers.add(c.get("/api/stats/main", params={"site_id": SITE, "period": "day"}
                                  ).json()["total_pageviews"])
        return answers == {EVENTS}

    eventually(counted)

    def scraped() -> bool:
        body = httpx.get(two_workers.base + "/metrics", timeout=30).text
        return (metric(body, "mallard_events_ingested_total") == EVENTS
                and metric(body, "mallard_worker_processes") == 2)

    eventually(scraped)
    # Both workers took part: each one's own metrics snapshot counts some of the events.
    per_worker = []
    for path in (two_workers.data_dir / "state" / "metrics").glob("*.json"):
        if path.name == "archive.json":
            continue
        counters = orjson.loads(path.read_bytes()).get("counters", [])
        per_worker.append(sum(v for n, labels, v in counters if n == "mallard_events_ingested_total"))
    assert sum(per_worker) == EVENTS and len([n for n in per_worker if n > 0]) == 2, per_worker
