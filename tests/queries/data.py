"""A small hand-made dataset whose every figure is computed by hand in the tests.

Site ``example.com``, two UTC days, 2024-05-01 and 2024-05-02 (a Wednesday and a Thursday)::

    visitor a   (Firefox 125.0, Linux 6.1, desktop, 1920, DE/Berlin/Berlin)
      a1  05-01 10:00:00         pageview /          source Google, utm newsletter/email/spring/banner/ducks
      a2  05-01 10:30:00         pageview /pricing   source Twitter, utm tw  (gap exactly 30 min: same)
      a3  05-01 11:00:00.000001  pageview /docs      no source            (30 min + 1 µs: new session)
    visitor b   (Chrome 124.0, Windows 10, desktop, 1280, US/California/San Francisco)
      b1  05-01 12:00:00         pageview /pricing   source Bing
      b2  05-01 12:00:00         signup   /a         source AAA, plan=pro, 49.90 EUR (tie: b1 is first)
      b3  05-01 12:05:00         pageview /checkout
    visitor c   (Safari 17.4, iOS 17.4, mobile, 390, FR, no region or city): custom events only
      c1  05-01 13:00:00         download /files    source DuckDuckGo, plan=free
      c2  05-01 13:10:00         signup   /a        plan=free, 10.00 EUR
    visitor d   (as a) crosses UTC midnight; after midnight its id is d2 with visitor_id_prev d1
      d1  05-01 23:50:00         pageview /          source Google
      d2  05-02 00:10:00         pageview /about     (id d2, prev d1)
      d3  05-02 00:20:00         pageview /pricing   (id d2, prev d1)
    visitor e   (Chrome 124.0, Windows 11, desktop, 1280, US/California/San Francisco)
      e1  05-02 09:00:00         pageview /
      e2  05-02 10:00:00         pageview /x         (equal timestamps never split)
      e3  05-02 10:00:00         pageview /y

Sessions (gap > 30 min splits; d's ids are joined by visitor_id_prev):

    session  events      pageviews  duration  entry     exit       source      bounce
    A1       a1 a2       2          1800      /         /pricing   Google      no
    A2       a3          1          0         /docs     /docs      (none)      yes
    B        b1 b2 b3    2          300       /pricing  /checkout  Bing        no
    C        c1 c2       0          600       (none)    (none)     DuckDuckGo  no (no pageview)
    D        d1 d2 d3    3          1800      /         /pricing   Google      no
    E1       e1          1          0         /         /          (none)      yes
    E2       e2 e3       2          0         /x        /y         (none)      no

Totals: 14 events, 11 pageviews, 6 visitor ids (a b c d1 d2 e), 7 sessions, 2 bounces, 4500 s of
visits, 59.90 of revenue. Other rows the queries must never count: a pageview of another site on
05-01, and one of example.com on 04-30 (outside the range).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from mallard._events import Event
from mallard._store import Store

SITE = "example.com"
OTHER_SITE = "other.test"
DAY1 = "2024-05-01"
DAY2 = "2024-05-02"

FIREFOX: dict[str, Any] = dict(browser="Firefox", browser_version="125.0", os="Linux", os_version="6.1",
                               device_type="desktop", screen_size="1920", country_code="DE",
                               region="Berlin", city="Berlin")
CHROME_10: dict[str, Any] = dict(browser="Chrome", browser_version="124.0", os="Windows", os_version="10",
                                 device_type="desktop", screen_size="1280", country_code="US",
                                 region="California", city="San Francisco")
CHROME_11: dict[str, Any] = {**CHROME_10, "os_version": "11"}
SAFARI: dict[str, Any] = dict(browser="Safari", browser_version="17.4", os="iOS", os_version="17.4",
                              device_type="mobile", screen_size="390", country_code="FR")


def ts(text: str) -> datetime:
    """A naive UTC datetime from ``YYYY-MM-DD HH:MM:SS[.ffffff]``."""
    return datetime.fromisoformat(text)


def event(vid: str, when: str, name: str = "pageview", path: str = "/", *, site: str = SITE,
          props: dict[str, Any] | None = None, revenue: str | None = None, **columns: Any) -> Event:
    """One lake row; ``columns`` are any other :class:`Event` fields."""
    return Event(site_id=site, visitor_id=vid, timestamp=ts(when), event_name=name, pathname=path,
                 hostname=columns.pop("hostname", "example.com"),
                 props=None if props is None else json.dumps(props, sort_keys=True),
                 revenue_amount=None if revenue is None else Decimal(revenue),
                 revenue_currency=None if revenue is None else "EUR", **columns)


def dataset() -> list[Event]:
    """The events described in the module docstring."""
    utm: dict[str, Any] = dict(utm_source="newsletter", utm_medium="email", utm_campaign="spring",
                               utm_content="banner", utm_term="ducks")
    google: dict[str, Any] = dict(referrer_source="Google", referrer="https://www.google.com/")
    return [
        event("a", f"{DAY1} 10:00:00", "pageview", "/", **google, **utm, **FIREFOX),
        event("a", f"{DAY1} 10:30:00", "pageview", "/pricing", referrer_source="Twitter",
              referrer="https://t.co/x", utm_source="tw", **FIREFOX),
        event("a", f"{DAY1} 11:00:00.000001", "pageview", "/docs", **FIREFOX),
        event("b", f"{DAY1} 12:00:00", "pageview", "/pricing", referrer_source="Bing",
              referrer="https://www.bing.com/", **CHROME_10),
        event("b", f"{DAY1} 12:00:00", "signup", "/a", referrer_source="AAA", referrer="https://a.example/",
              props={"plan": "pro"}, revenue="49.90", **CHROME_10),
        event("b", f"{DAY1} 12:05:00", "pageview", "/checkout", **CHROME_10),
        event("c", f"{DAY1} 13:00:00", "download", "/files", referrer_source="DuckDuckGo",
              referrer="https://duckduckgo.com/", props={"plan": "free"}, **SAFARI),
        event("c", f"{DAY1} 13:10:00", "signup", "/a", props={"plan": "free"}, revenue="10.00", **SAFARI),
        event("d1", f"{DAY1} 23:50:00", "pageview", "/", **google, **FIREFOX),
        event("d2", f"{DAY2} 00:10:00", "pageview", "/about", visitor_id_prev="d1", **FIREFOX),
        event("d2", f"{DAY2} 00:20:00", "pageview", "/pricing", visitor_id_prev="d1", **FIREFOX),
        event("e", f"{DAY2} 09:00:00", "pageview", "/", **CHROME_11),
        event("e", f"{DAY2} 10:00:00", "pageview", "/x", **CHROME_11),
        event("e", f"{DAY2} 10:00:00", "pageview", "/y", **CHROME_11),
    ]


def noise() -> list[Event]:
    """Rows outside the site or the date range of the tests."""
    return [
        event("z", f"{DAY1} 10:00:00", "pageview", "/", site=OTHER_SITE, **FIREFOX),
        event("a", "2024-04-30 23:59:59.999999", "pageview", "/old", **FIREFOX),
    ]


def write_lake(data_dir: Path, events: Sequence[Event]) -> Path:
    """Write ``events`` into a lake under ``data_dir`` (published at once) and return ``data_dir``."""
    store = Store(data_dir)
    try:
        store.write_batch(list(events))()
    finally:
        store.close()
    return data_dir
