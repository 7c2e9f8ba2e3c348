"""Generated traffic for the ClickHouse engine's differential tests, and the query shapes they compare.

Traffic: people over six days, sessions across midnights (daily ids chained by ``visitor_id_prev``),
gaps around the session window, equal timestamps, visit attributes that change within a session (or
are missing), user ids on some events, custom properties of every JSON kind, revenue in two
currencies, engagement reports, quotes and unicode in paths.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from mallard._events import Event
from mallard._queries import Queries
from mallard._queries.registry import BREAKDOWNS, DIMENSIONS

SITE = "s.test"
FIRST = date(2024, 4, 28)
DAYS = 6
GAP_S = 1800
POOLS: dict[str, list[str | None]] = {
    "referrer_source": ["Google", "Bing", "ChatGPT", "(direct)", None],
    "referrer": ["https://www.a.example/x?q=1", "http://b.example:8080/y/", None],
    "click_id": ["gclid", None, None], "hostname": ["a.example", "b.example", None],
    "utm_source": ["nl", "ads", None], "utm_medium": ["email", "cpc", None], "utm_campaign": ["spring", None],
    "utm_content": ["banner", None], "utm_term": ["ducks", None],
    "browser": ["Chrome", "Firefox", "Edge", None], "browser_version": ["120.0.1", "121.0", None],
    "os": ["Linux", "iOS", "macOS"], "os_version": ["17.2.1", None],
    "device_type": ["desktop", "mobile", None],
    "screen_size": ["1920", "390", None], "country_code": ["DE", "US", "FR", None],
    "region": ["Bavaria", "Île-de-France", None], "city": ["Munich", "Paris", None],
}
PATHS = ["/", "/a", "/b", "/pricing", "/it's", "/ünï/🦆", "/A", "/blog/x"]
NAMES = ["pageview"] * 4 + ["signup", "Purchase", "engagement"]
PROPS = [None, '{"plan":"pro"}', '{"plan":"free","n":3}', '{"x":null,"plan":"Pro"}', '{"b":true}']
CHANGING = ("referrer_source", "utm_source", "hostname")
STEPS = [0, 1, GAP_S - 1, GAP_S, GAP_S + 1, 3 * 3600, 86_400]
STARTS = [-GAP_S, -1, 0, 1, 600, 43_200, 86_399]


def traffic(rnd: random.Random, people: int = 40) -> list[Event]:
    """The events of ``people`` people drawn from ``rnd`` (see the module docstring)."""
    out: list[Event] = []
    for p in range(people):
        t = datetime.combine(FIRST + timedelta(days=rnd.randrange(DAYS)), datetime.min.time()) \
            + timedelta(seconds=rnd.choice(STARTS))
        user = f"user-{p}" if rnd.random() < 0.3 else None
        long_ids = rnd.random() < 0.5
        attrs = {k: rnd.choice(v) for k, v in POOLS.items()}

        def vid(d: date, p: int = p, long_ids: bool = long_ids) -> str:
            text = f"p{p}-{d}"
            return (text.encode().hex() * 8)[:64] if long_ids else text  # 64 hex digits, like mallard's

        for i in range(rnd.randint(1, 12)):
            if i:
                t += timedelta(seconds=rnd.choice(STEPS), microseconds=rnd.choice([0, 0, 1, 999_999]))
            if not FIRST <= t.date() < FIRST + timedelta(days=DAYS):
                break
            if rnd.random() < 0.3:  # attribution changes within the session
                attrs = {**attrs, **{k: rnd.choice(POOLS[k]) for k in CHANGING}}
            day = t.date()
            carries = t - datetime.combine(day, datetime.min.time()) <= timedelta(seconds=GAP_S)
            name = rnd.choice(NAMES)
            out.append(Event(
                site_id=SITE, visitor_id=vid(day), timestamp=t, event_name=name, pathname=rnd.choice(PATHS),
                visitor_id_prev=vid(day - timedelta(days=1)) if carries else None,
                user_id=user if rnd.random() < 0.8 else None, props=rnd.choice(PROPS),
                revenue_amount=Decimal("9.50") if name == "Purchase" else None,
                revenue_currency=rnd.choice(["EUR", "USD", None]) if name == "Purchase" else None,
                scroll_depth=rnd.randint(0, 100) if name == "engagement" else None,
                engagement_ms=rnd.randint(0, 60_000) if name == "engagement" else None, **attrs))
    return out


Shape = Callable[[Queries], Any]
R = {"start_date": "2024-04-28", "end_date": "2024-05-03"}
FILTERS: dict[str, Any] = {
    "page": "event:page==/a", "source and country": "visit:source==Google;visit:country!=DE",
    "page contains": "event:page~=ü", "entry page": "visit:entry_page==/", "event name": "event:name==signup",
    "browser contains any case": [["contains", "visit:browser", ["chr"], {"case_sensitive": False}]],
    "page matches": [["matches", "event:page", ["^/[ab]$"]]],
    "property is not": [["is_not", "event:props:plan", ["pro"]]],
    "has done": [["has_done", ["is", "event:name", ["signup"]]]],
    "has not done": [["has_not_done", ["is", "event:page", ["/pricing"]]]],
    "or not": [["or", [["is", "visit:device", ["mobile"]], ["not", ["is", "event:page", ["/a"]]]]]],
    "unknown city": [["is", "visit:city", ["(unknown)"]]],
    "goal": [["is", "event:goal", ["Signup"]]],
}
SESSION_METRICS = ["visitors", "visits", "bounce_rate", "visit_duration", "views_per_visit"]


def _v2(body: dict[str, Any]) -> Shape:
    whole = {"site_id": SITE, "date_range": ["2024-04-28", "2024-05-03"]}
    return lambda q: q.query_json({**whole, **body}).to_dict()


def shapes() -> dict[str, Shape]:
    """Every query shape the differential tests compare, by name."""
    out: dict[str, Shape] = {
        "main": lambda q: q.main(SITE, **R).to_dict(),
        "sessions": lambda q: q.sessions(SITE, **R).to_dict(),
        "export daily": lambda q: q.export(SITE, **R).to_dict(),
        # in time, path and name order; rows equal in those three come in any order
        "export raw": lambda q: sorted(map(repr, q.export(SITE, kind="raw", limit=100_000, **R).rows)),
        "properties": lambda q: q.properties(SITE, **R).to_dict(),
        "properties search": lambda q: q.properties(SITE, contains="PL", **R).to_dict(),
        "flow previous": lambda q: q.flow(SITE, "/", direction="previous", **R).to_dict(),
        "sequence": lambda q: q.sequences(SITE, ["page:/", "event:signup"], **R).to_dict(),
        "funnel repeated step": lambda q: q.funnel(SITE, ["page:/a", "page:/a", "page:/b"], window=86_400,
                                                   **R).to_dict(),
        "retention user ids": lambda q: q.retention(SITE, weeks=2, identity="user_id", **R).to_dict(),
        "realtime": lambda q: q.realtime(SITE).to_dict(),
        "v2 visit dimensions": _v2({"metrics": ["visitors", "visits", "pageviews", "bounce_rate",
                                                "visit_duration", "events", "views_per_visit", "percentage"],
                                    "dimensions": ["visit:browser", "visit:os_version", "visit:referrer"]}),
        "v2 comparison": _v2({"date_range": ["2024-05-01", "2024-05-03"],
                              "metrics": ["visitors", "pageviews"], "dimensions": ["time:day"],
                              "include": {"comparisons": {"mode": "previous_period"}}}),
        "v2 engagement": _v2({"metrics": ["visitors", "scroll_depth", "time_on_page"],
                              "dimensions": ["event:page"]}),
        "v2 places and revenue": _v2({"metrics": ["visitors", "total_revenue", "average_revenue"],
                                      "dimensions": ["visit:country_name", "visit:region",
                                                     "visit:city_name"]}),
        "v2 channel conversion": _v2({"metrics": ["visitors", "conversion_rate"],
                                      "dimensions": ["visit:channel"],
                                      "filters": [["is", "event:name", ["signup"]]]}),
        "v2 properties": _v2({"metrics": ["visitors", "events"],
                              "dimensions": ["event:props:n", "event:props:b"]}),
        "v2 goals": _v2({"metrics": ["visitors", "events", "conversion_rate", "group_conversion_rate",
                                     "total_revenue"], "dimensions": ["event:goal", "visit:device"]}),
        "v2 segment": lambda q: q.query(
            SITE, metrics=["visitors", "visits", "bounce_rate"], dimensions=["event:page"],
            filters=[["is", "segment", [q.goals.segments(SITE)[0].id]]], **R).to_dict(),
        "v2 paged": _v2({"metrics": ["visitors"], "dimensions": ["event:page"],
                         "order_by": [["visitors", "asc"]], "pagination": {"limit": 3, "offset": 2}}),
    }
    for interval in ("hour", "day", "week", "month"):
        for zone in ("UTC", "Europe/Berlin", "Asia/Kolkata"):
            out[f"timeseries {interval} {zone}"] = lambda q, i=interval, z=zone: q.timeseries(
                SITE, interval=i, timezone=z, metrics=["visitors", "pageviews", "visits", "bounce_rate"],
                **R).to_dict()
    for zone in ("Europe/Berlin", "America/New_York"):
        out[f"main {zone}"] = lambda q, z=zone: q.main(SITE, timezone=z, **R).to_dict()
    for slug in BREAKDOWNS:
        out[f"breakdown {slug}"] = lambda q, s=slug: q.breakdown(
            SITE, s, metrics=["visitors", "pageviews", "events"], limit=100, **R).to_dict()
        if DIMENSIONS[BREAKDOWNS[slug]].level == "visit":
            out[f"breakdown {slug} by visit"] = lambda q, s=slug: q.breakdown(
                SITE, s, metrics=SESSION_METRICS, limit=100, **R).to_dict()
    for name in ("visit:country_name", "visit:region_name", "visit:city_name", "visit:entry_page_hostname",
                 "visit:exit_page_hostname", "event:props:plan"):
        out[f"query {name}"] = lambda q, n=name: q.query(SITE, metrics=["visitors", "events"], dimensions=[n],
                                                         **R).to_dict()
    for label, f in FILTERS.items():
        out[f"main / {label}"] = lambda q, f=f: q.main(SITE, filters=f, **R).to_dict()
        out[f"pages / {label}"] = lambda q, f=f: q.breakdown(SITE, "pages", metrics=["visitors", "pageviews"],
                                                             filters=f, limit=50, **R).to_dict()
        out[f"sources / {label}"] = lambda q, f=f: q.breakdown(SITE, "sources", metrics=SESSION_METRICS,
                                                               filters=f, limit=50, **R).to_dict()
        out[f"funnel / {label}"] = lambda q, f=f: q.funnel(
            SITE, ["page:/", "page:/a", "event:signup", "page:/"], window="2 hours", filters=f, **R).to_dict()
        out[f"retention / {label}"] = lambda q, f=f: q.retention(
            SITE, weeks=3, filters=f, start_date="2024-04-22", end_date="2024-05-03").to_dict()
        out[f"flow / {label}"] = lambda q, f=f: q.flow(SITE, "/a", filters=f, **R).to_dict()
        out[f"properties / {label}"] = lambda q, f=f: q.properties(SITE, filters=f, **R).to_dict()
    return out
