"""Traffic written through ``Mallard.track()`` with real User-Agents and a real (test) GeoIP database, for
the tests of Plausible's vocabulary and of the Stats API v2 documentation examples.

One visitor per User-Agent of ``tests/enrich/test_useragent.py`` (plus one whose User-Agent names nothing),
each with one visit on one of the days 2-5 before ``now`` (one or two pageviews, some with a custom
event). ``VISITORS`` lists what each visitor is, in Plausible's words, so that the tests hold
expectations that do not come from mallard's own mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from mallard import Mallard
from tests.enrich.test_useragent import REAL_AGENTS
from tests.mmdb import write_city_db

SITE = "dummy.site"
PLACES = {  # network → (country code, Plausible's country name, region (MaxMind's English name), city)
    "81.2.69.0/24": ("DE", "Germany", "Berlin", "Berlin"),
    "216.160.83.0/24": ("US", "United States", "California", "San Francisco"),
    "89.160.20.0/24": ("EE", "Estonia", "Harjumaa", "Tallinn"),
}
REGION_CODES = {"81.2.69.0/24": "DE-BE", "216.160.83.0/24": "US-CA", "89.160.20.0/24": "EE-37"}
NOWHERE = "10.1.2."  # a private network: no location

# User-Agent name → (browser, os, os_version, device) as Plausible shows them (Matomo's names).
PLAUSIBLE_NAMES: dict[str, tuple[str, str, str, str]] = {
    "chrome-windows": ("Chrome", "Windows", "10", "Desktop"),
    "chrome-windows-7": ("Chrome", "Windows", "7", "Desktop"),
    "safari-iphone": ("Safari", "iOS", "17.2", "Mobile"),
    "safari-ipad": ("Safari", "iOS", "16.6", "Tablet"),
    "chrome-android-phone": ("Chrome", "Android", "14", "Mobile"),
    "chrome-android-tablet": ("Chrome", "Android", "13", "Tablet"),
    "firefox-linux": ("Firefox", "GNU/Linux", "(not set)", "Desktop"),
    "edge-windows": ("Microsoft Edge", "Windows", "10", "Desktop"),
    "samsung-internet": ("Samsung Browser", "Android", "13", "Mobile"),
    "opera-windows": ("Opera", "Windows", "10", "Desktop"),
    "safari-macos": ("Safari", "Mac", "10.15", "Desktop"),
    "chrome-ios": ("Chrome", "iOS", "17.2", "Mobile"),
    "firefox-ios": ("Firefox", "iOS", "17.2", "Mobile"),
    "chrome-os": ("Chrome", "Chrome OS", "14541.0", "Desktop"),
    "nothing": ("(not set)", "(not set)", "(not set)", "(not set)"),
}


@dataclass(frozen=True)
class Visitor:
    agent: str  # key of PLAUSIBLE_NAMES
    user_agent: str
    ip: str
    country_name: str  # "" when unknown
    region: str  # ISO 3166-2 code, "" when unknown
    city: str
    day: int  # days before now
    pages: tuple[str, ...]
    campaign: str | None
    google: bool  # referred by Google (else direct)
    plan: str | None  # a "Signup" event with this plan property, a minute after the first pageview

    @property
    def browser(self) -> str:
        return PLAUSIBLE_NAMES[self.agent][0]

    @property
    def os(self) -> str:
        return PLAUSIBLE_NAMES[self.agent][1]

    @property
    def os_version(self) -> str:
        return PLAUSIBLE_NAMES[self.agent][2]

    @property
    def device(self) -> str:
        return PLAUSIBLE_NAMES[self.agent][3]


def _visitors() -> list[Visitor]:
    agents = {**{name: ua for name, (ua, *_) in REAL_AGENTS.items()}, "nothing": "hello world"}
    places = list(PLACES.items())
    out = []
    for i, (name, ua) in enumerate(agents.items()):
        if i % 4 == 3:
            ip, country, region, city = f"{NOWHERE}{i + 1}", "", "", ""
        else:
            network, (_code, country, _region, city) = places[i % 4]
            region = REGION_CODES[network]
            ip = network.split("/")[0].rsplit(".", 1)[0] + f".{i + 1}"
        pages = ("/docs/start", "/pricing") if i % 2 == 0 else ("/",)
        out.append(Visitor(name, ua, ip, country, region, city, 2 + i % 4, pages,
                           "Referral" if i % 5 == 0 else None, i % 3 == 0,
                           ("pro" if i % 2 else "free") if i % 3 == 1 else None))
    return out


VISITORS = _visitors()


def write_traffic(data_dir: Path, now: datetime) -> None:
    """Track every visitor's pageviews into ``data_dir`` (flushed to Parquet, then closed)."""
    geo = write_city_db(data_dir.parent / f"{data_dir.name}-city.mmdb", {
        network: {"country": {"iso_code": code, "names": {"en": name}},
                  "subdivisions": [{"names": {"en": region}}], "city": {"names": {"en": city}}}
        for network, (code, name, region, city) in PLACES.items()})
    mallard = Mallard(data_dir=data_dir, geoip_db_path=geo, clock=lambda: now)
    try:
        for v in VISITORS:
            start = (now - timedelta(days=v.day)).replace(hour=10, minute=0, second=0, microsecond=0)
            for n, page in enumerate(v.pages):
                query = f"?utm_campaign={v.campaign}" if v.campaign and n == 0 else ""
                outcome = mallard.track(
                    "pageview", site=SITE, url=f"https://{SITE}{page}{query}", ip=v.ip,
                    user_agent=v.user_agent, timestamp=start + timedelta(minutes=2 * n),
                    referrer="https://www.google.com/" if v.google and n == 0 else None)
                assert outcome.accepted, outcome
            if v.plan is not None:
                outcome = mallard.track("Signup", site=SITE, url=f"https://{SITE}{v.pages[0]}", ip=v.ip,
                                        user_agent=v.user_agent, props={"plan": v.plan},
                                        timestamp=start + timedelta(minutes=1))
                assert outcome.accepted, outcome
        mallard.flush()
    finally:
        mallard.close()
