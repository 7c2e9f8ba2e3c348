"""Generated, realistic traffic for a throw-away data directory: what ``mallard demo`` serves.

Visitors over the last ``days`` days with a daily rhythm, from search engines, social sites, AI
assistants, newsletters (UTM-tagged) or nowhere; desktop and mobile browsers; a few pages per visit;
some sign up (a ``plan`` property) and some buy (revenue in EUR); three goals. Visitors come from random
public IPv4 addresses, so the built-in IP-to-country table places them in countries as the address space
is shared out. Everything goes through :meth:`mallard.Mallard.track`, as a host application's events do:
the IP addresses are used for the visitor id and the country, then dropped.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._app import Mallard

__all__ = ["SITE", "Filled", "fill"]

SITE: Final = "demo.example"

_AGENTS: Final = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", 1440),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Safari/605.1.15", 1512),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", 1920),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Mobile/15E148 Safari/604.1", 390),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36", 412),
    ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Mobile/15E148 Safari/604.1", 820),
)
#: (where a visit comes from: referrer, utm query), weighted by repetition
_ARRIVALS: Final = (
    (None, ""), (None, ""), (None, ""),
    ("https://www.google.com/", ""), ("https://www.google.com/", ""), ("https://www.google.com/", ""),
    ("https://duckduckgo.com/", ""), ("https://www.bing.com/", ""),
    ("https://news.ycombinator.com/", ""), ("https://www.reddit.com/r/selfhosted/", ""),
    ("https://github.com/", ""), ("https://chatgpt.com/", ""), ("https://www.perplexity.ai/", ""),
    (None, "?utm_source=newsletter&utm_medium=email&utm_campaign=launch"),
    ("https://t.co/", "?utm_source=twitter&utm_medium=social&utm_campaign=launch"),
)
_LANDINGS: Final = ("/", "/", "/", "/pricing", "/docs", "/blog/cookieless-analytics", "/blog/duckdb-parquet")
_NEXT: Final = {
    "/": ("/pricing", "/docs", "/features", "/blog/cookieless-analytics"),
    "/pricing": ("/signup", "/docs", "/"),
    "/docs": ("/docs/install", "/docs/api", "/pricing"),
    "/docs/install": ("/docs/api", "/signup"),
    "/features": ("/pricing", "/signup"),
}
_HOURLY: Final = (2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 8, 8, 9, 9, 8, 7, 6, 6, 5, 4, 3, 3)


@dataclass(frozen=True)
class Filled:
    """What :func:`fill` tracked."""

    site: str
    visitors: int  # who have at least one event (a visit drawn too close to now is left out)
    events: int
    first: datetime
    last: datetime


def _public_ip(rng: random.Random) -> str:
    while True:
        ip = ipaddress.IPv4Address(rng.randrange(1 << 24, 224 << 24))
        if ip.is_global:
            return str(ip)


def fill(m: Mallard, *, visitors: int = 1500, days: int = 30, seed: int = 7,
         now: datetime | None = None) -> Filled:
    """Track ``visitors`` generated visitors' visits of the last ``days`` days (UTC, up to ``now``) for
    :data:`SITE` through ``m``, add its goals, flush, and store the sessions of the settled days.

    Raises:
        ValueError: ``visitors`` or ``days`` below 1.
    """
    if visitors < 1 or days < 1:
        raise ValueError(f"visitors and days must be at least 1, not {visitors} and {days}")
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    m.goals.add(SITE, event_name="Signup")
    m.goals.add(SITE, event_name="Purchase", currency="EUR")
    m.goals.add(SITE, page_path="/pricing", display_name="Visit /pricing")
    events, seen, first, last = 0, 0, now, now - timedelta(days=days)
    for _ in range(visitors):
        ip, (agent, width) = _public_ip(rng), rng.choice(_AGENTS)
        before = events
        for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 4)):
            day = now - timedelta(days=min(days - 1, int(rng.expovariate(2.5 / days))))
            hour = rng.choices(range(24), _HOURLY)[0]
            start = day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))
            if start > now:
                start -= timedelta(days=1)
            if start < now - timedelta(days=days):
                continue
            referrer, utm = rng.choice(_ARRIVALS)
            page, at = rng.choice(_LANDINGS), start
            for step in range(rng.choices((1, 2, 3, 4, 6), (45, 25, 15, 10, 5))[0]):
                if at > now - timedelta(seconds=400):  # room for the visit's events: none in the future
                    break
                m.track("pageview", site=SITE, url=f"https://{SITE}{page}{utm if step == 0 else ''}",
                        ip=ip, user_agent=agent, referrer=referrer if step == 0 else None,
                        screen_width=width, timestamp=at)
                events += 1
                first, last = min(first, at), max(last, at)
                if page == "/signup" and rng.random() < 0.6:
                    at += timedelta(seconds=rng.randint(20, 120))
                    m.track("Signup", site=SITE, url=f"https://{SITE}/signup", ip=ip, user_agent=agent,
                            props={"plan": rng.choice(("free", "free", "pro", "team"))}, timestamp=at)
                    events += 1
                    if rng.random() < 0.3:
                        at += timedelta(seconds=rng.randint(30, 300))
                        m.track("Purchase", site=SITE, url=f"https://{SITE}/checkout", ip=ip,
                                user_agent=agent, revenue=rng.choice((19, 49, 199)), currency="EUR",
                                timestamp=at)
                        events += 1
                    break
                page = rng.choice(_NEXT.get(page, ("/", "/pricing", "/signup")))
                at += timedelta(seconds=int(rng.expovariate(1 / 50)) + 5)
        seen += events > before
    m.flush()
    m.build_sessions()
    return Filled(SITE, seen, events, first, last)
