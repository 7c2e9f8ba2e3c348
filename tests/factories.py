"""Deterministic builders of :class:`mallard.Event` rows for hand-computed datasets.

``make_event(**overrides)`` returns the same event every time it is called with the same arguments: no
clock, no randomness, no hidden counter. ``make_events(n, ...)`` numbers its events explicitly (pathname
``/p/<i>`` and one microsecond apart), so every event of a batch is distinguishable.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from mallard import Event

__all__ = ["BASE_TIME", "full_event", "make_event", "make_events"]

BASE_TIME = datetime(2024, 3, 1, 12, 0, 0)

_DEFAULTS: dict[str, Any] = {
    "site_id": "example.com",
    "visitor_id": "0" * 64,
    "timestamp": BASE_TIME,
    "event_name": "pageview",
    "pathname": "/",
    "hostname": "example.com",
    "referrer_source": "(direct)",
    "browser": "Firefox",
    "browser_version": "120.0",
    "os": "Linux",
    "device_type": "desktop",
}


def make_event(**overrides: Any) -> Event:
    """An event with plausible defaults; any column can be overridden by name.

    Raises:
        TypeError: an override names no column of the lake schema.
    """
    unknown = set(overrides) - set(Event._fields)
    if unknown:
        raise TypeError(f"make_event: unknown column(s) {sorted(unknown)}")
    return Event(**{**_DEFAULTS, **overrides})


def make_events(count: int, *, start: datetime = BASE_TIME, step: timedelta = timedelta(microseconds=1),
                prefix: str = "/p/", **overrides: Any) -> list[Event]:
    """``count`` events with pathnames ``<prefix><i>`` and timestamps ``start + i * step``."""
    return [make_event(**{"pathname": f"{prefix}{i}", "timestamp": start + i * step, **overrides})
            for i in range(count)]


def full_event(**overrides: Any) -> Event:
    """An event with every column set: unicode text, a Decimal revenue, a microsecond timestamp."""
    values: dict[str, Any] = {
        "site_id": "shop.example:8443",
        "visitor_id": "ab" * 32,
        "timestamp": datetime(2024, 2, 29, 23, 59, 59, 999_999),
        "event_name": "Kauf abgeschlossen ✓",
        "pathname": "/café/übersicht/日本語",
        "hostname": "shop.example",
        "referrer": "https://news.example/artikel?q=größe",
        "referrer_source": "news.example",
        "utm_source": "newsletter",
        "utm_medium": "e-mail",
        "utm_campaign": "frühling 🌷",
        "utm_content": "banner",
        "utm_term": "schuhe",
        "browser": "Chrome",
        "browser_version": "121.0",
        "os": "Android",
        "os_version": "14",
        "device_type": "mobile",
        "screen_size": "412",
        "country_code": "DE",
        "region": "Baden-Württemberg",
        "city": "Tübingen",
        "props": '{"plan":"prö","seats":3}',
        "revenue_amount": Decimal("1234567890.99"),
        "revenue_currency": "EUR",
        "user_id": "cd" * 32,
        "visitor_id_prev": "ef" * 32,
    }
    values.update(overrides)
    return make_event(**values)
