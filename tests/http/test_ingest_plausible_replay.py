"""Request bodies recorded from Plausible's own npm trackers in Chromium (tests/npm/recorded.json, made by
tests/npm/record.py), replayed against every adapter; the lake holds each event as sent."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pytest

from .conftest import Live
from .test_contract import stored

RECORDED = json.loads((Path(__file__).resolve().parents[1] / "npm" / "recorded.json").read_text())
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
COLUMNS = ("event_name", "pathname", "referrer_source", "utm_source", "props", "revenue_amount",
           "revenue_currency", "screen_size", "scroll_depth", "engagement_ms")


def expected(body: dict[str, object]) -> tuple[object, ...]:
    """What the lake must hold for one recorded body."""
    url = httpx.URL(str(body["u"]))
    props = body.get("p")
    if isinstance(props, str):
        props = orjson.loads(props)
    revenue = body.get("$")
    assert revenue is None or isinstance(revenue, dict)
    # without a referrer, the landing URL's tag names the source (an unknown tag as written)
    tag = url.params.get("utm_source") or url.params.get("source") or url.params.get("ref")
    source = {"https://www.google.com/": "Google", "https://news.ycombinator.com/": "Hacker News",
              None: tag or "(direct)"}
    path = url.path + (f"#{url.fragment}" if body.get("h") == 1 and url.fragment else "")
    return (body["n"], path, source[body.get("r")], url.params.get("utm_source"),
            orjson.dumps(props, option=orjson.OPT_SORT_KEYS).decode() if props else None,
            Decimal(str(revenue["amount"])).quantize(Decimal("0.01")) if revenue else None,
            revenue["currency"] if revenue else None, str(body["w"]) if "w" in body else None,
            body.get("sd"), body.get("e"))


NAMES = {"v4": "plausible-analytics-tracker-0.4", "v4h": "plausible-analytics-tracker-0.4-hash-routing",
         "v3": "plausible-tracker-0.3"}


@pytest.mark.parametrize("tracker", sorted(RECORDED), ids=NAMES.get)
def test_recorded_tracker_bodies_are_stored_as_sent(live: Live, tracker: str) -> None:
    """Each body answers 202 and is one row with its name, path (with the fragment under hash routing),
    source, UTM source, props, revenue and width; the 0.4 tracker's engagement events with their scroll
    depth and engaged time."""
    bodies = [orjson.loads(b) for b in RECORDED[tracker]]
    site = f"{live.kind}.{bodies[0]['d']}"
    with live.client() as c:
        for body in bodies:
            body["d"] = site
            response = c.post("/api/event", content=orjson.dumps(body),
                              headers={"Content-Type": "text/plain", "User-Agent": UA})
            assert response.status_code == 202, response.text
    rows = stored(live.data_dir, site, len(bodies))
    got = sorted(tuple(row[c] for c in COLUMNS) for row in rows)
    assert got == sorted(expected(body) for body in bodies)
