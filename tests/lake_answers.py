"""Seeded traffic written with the test factories, and every query shape's answer over a lake, to check
that two ways of reading (or writing) the same events answer the same (local disk and object storage;
later, several hosts and other engines).

``traffic(seed, end)`` draws visitors over the ten UTC days up to ``end``: visits of one to five
pageviews, some custom events with properties and revenue, engagement reports, sources, UTM tags,
clients and places; each visitor id is daily (as under the default salt rotation), so rollups answer.
``answers(q, site, first, last)`` asks ``q`` every preset (main, timeseries, every breakdown slug,
sessions), a v2 query with filters, a goal, the behavioural analyses (funnel, retention, flow), the
property list and raw SQL; ``assert_same`` compares two such answers (floats to 1e-9: DuckDB's parallel
sums of floats differ in their last digits from run to run).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from mallard import Queries
from mallard._events import Event
from mallard._queries import breakdown_names

from .factories import make_event

SITE = "shop.example"
DAYS = 10
PAGES = ("/", "/pricing", "/docs", "/docs/install", "/blog/launch", "/signup")
SOURCES = (("Google", "https://www.google.com/", None), ("Bing", "https://www.bing.com/", None),
           ("Twitter", "https://t.co/x", "social"), ("(direct)", None, None),
           ("Newsletter", None, "email"))
CLIENTS = (("Firefox", "125.0", "Linux", "6.1", "desktop", "1920"),
           ("Chrome", "124.0", "Windows", "10", "desktop", "1280"),
           ("Safari", "17.4", "iOS", "17.4", "mobile", "390"))
PLACES = (("DE", "Berlin", "Berlin"), ("US", "California", "San Francisco"), ("FR", None, None))


def _vid(visitor: int, day: date) -> str:
    return hashlib.sha256(f"{visitor}/{day.isoformat()}".encode()).hexdigest()


def traffic(seed: int, end: datetime, *, visitors: int = 120) -> list[Event]:
    """Seeded events of :data:`SITE` (and a few of another site) over the :data:`DAYS` days up to
    ``end`` (naive UTC), none after it."""
    rng = random.Random(seed)
    events: list[Event] = []
    start = end - timedelta(days=DAYS - 1)
    start = datetime.combine(start.date(), datetime.min.time())
    span = (end - start).total_seconds()
    for v in range(visitors):
        browser, version, os_, os_version, device, screen = rng.choice(CLIENTS)
        country, region, city = rng.choice(PLACES)
        for _ in range(rng.randint(1, 3)):
            when = start + timedelta(seconds=rng.uniform(0, span - 3600))
            source, referrer, medium = rng.choice(SOURCES)
            utm = {"utm_source": source.lower(), "utm_medium": medium,
                   "utm_campaign": rng.choice(("spring", "launch"))} if medium else {}
            for i in range(rng.randint(1, 5)):
                when += timedelta(seconds=rng.randint(5, 900))
                if when >= end:
                    break
                common: dict[str, Any] = dict(
                    site_id=SITE, visitor_id=_vid(v, when.date()), timestamp=when, hostname=SITE,
                    browser=browser, browser_version=version, os=os_, os_version=os_version,
                    device_type=device, screen_size=screen, country_code=country, region=region, city=city,
                    referrer_source=source if i == 0 else "(direct)", referrer=referrer if i == 0 else None,
                    **(utm if i == 0 else {}))
                page = rng.choice(PAGES)
                events.append(make_event(event_name="pageview", pathname=page, **common))
                if rng.random() < 0.3:
                    events.append(make_event(event_name="engagement", pathname=page,
                                             scroll_depth=rng.randint(0, 100),
                                             engagement_ms=rng.randint(100, 60_000),
                                             **{**common, "timestamp": when + timedelta(seconds=2)}))
                if page == "/signup" and rng.random() < 0.6:
                    plan = rng.choice(("free", "pro"))
                    events.append(make_event(
                        event_name="Signup", pathname=page, props=json.dumps({"plan": plan}),
                        revenue_amount=Decimal("49.90") if plan == "pro" else None,
                        revenue_currency="EUR" if plan == "pro" else None,
                        **{**common, "timestamp": when + timedelta(seconds=1)}))
    events += [make_event(site_id="other.example", visitor_id=_vid(0, end.date()),
                          timestamp=end - timedelta(minutes=5), pathname="/elsewhere")]
    return events


def answers(q: Queries, site: str, first: date, last: date) -> dict[str, Any]:
    """Every query shape's answer over ``site``'s days ``[first, last]``, as plain data."""
    rng: dict[str, Any] = {"start_date": first, "end_date": last}
    filters = [["is", "visit:source", ["Google", "Bing"]], ["contains", "event:page", ["/docs", "/"]]]
    out: dict[str, Any] = {
        "main": q.main(site, **rng).to_dict(),
        "main filtered": q.main(site, filters=filters, **rng).to_dict(),
        "timeseries": q.timeseries(site, interval="day", **rng).to_dict(),
        "sessions": q.sessions(site, **rng).to_dict(),
        "v2": q.query_json({"site_id": site, "date_range": [first.isoformat(), last.isoformat()],
                            "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration",
                                        "views_per_visit", "events"],
                            "dimensions": ["visit:country", "visit:device"],
                            "filters": [["is_not", "visit:browser", ["Safari"]],
                                        ["matches", "event:page", ["^/(docs|pricing)"]]]}).to_dict(),
        "v2 props": q.query_json({"site_id": site, "date_range": [first.isoformat(), last.isoformat()],
                                  "metrics": ["visitors", "events"],
                                  "dimensions": ["event:props:plan"]}).to_dict(),
        "goal": q.query(site, metrics=["visitors", "events", "conversion_rate"], dimensions=["event:goal"],
                        **rng).to_dict(),
        "funnel": q.funnel(site, ["page:/", "page:/pricing", "event:Signup"], window="1 day",
                           **rng).to_dict(),
        "retention": q.retention(site, weeks=2, **rng).to_dict(),
        "flow": q.flow(site, "/", **rng).to_dict(),
        "flow previous": q.flow(site, "/signup", direction="previous", **rng).to_dict(),
        "properties": q.properties(site, **rng).to_dict(),
        "sql": q.sql("SELECT event_name, count(*) AS n FROM events GROUP BY ALL ORDER BY ALL",
                     site=site).to_pylist(),
        "sql_sessions": q.sql("SELECT * EXCLUDE (visitor_keys) FROM sessions ORDER BY ALL",
                              site=site).to_pylist(),
        "newest_event": q.freshness(site).newest_event,
        "sites": q.sites(),
    }
    for slug in breakdown_names():
        out[f"breakdown {slug}"] = q.breakdown(site, slug, limit=100, **rng).to_dict()
    return out


def assert_same(got: Any, expected: Any, where: str = "") -> None:
    """``got`` equals ``expected``, floats to a relative 1e-9."""
    if isinstance(expected, float) and isinstance(got, float):
        assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12), (where, got, expected)
    elif isinstance(expected, dict) and isinstance(got, dict):
        assert got.keys() == expected.keys(), (where, sorted(got), sorted(expected))
        for key in expected:
            assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
        assert len(got) == len(expected), (where, got, expected)
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert got == expected, (where, got, expected)
