"""``GET /api/stats/info``: what the dashboard must know about the server before it draws a site.

A read route (a login, an API key, a site's shared link, or open mode), so every viewer of the
dashboard gets it; it runs no query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .._queries.periods import MAX_API_DAYS
from .messages import Request, Response, json_response
from .routing import Route
from .schemas import site_param
from .shares import live_link

if TYPE_CHECKING:
    from .api import Api

__all__ = ["ROUTES"]


def _access(api: Api, request: Request) -> tuple[str, dict[str, Any] | None]:
    link = live_link(api, request)
    if link is not None:
        return "shared", {"id": str(link.id), "name": link.name}
    who = api.principal(request)
    if who is None:
        return "open", None  # no password yet: a loopback client (the route let it through)
    return ("admin" if who[1] == "Admin" else "read"), None


def info(api: Api, request: Request, params: dict[str, str]) -> Response:
    from .stats import site_of

    site = site_of(request)
    s = api.settings
    access, link = _access(api, request)
    return json_response({
        "site_id": site,
        "timezone": s.timezone,
        "geoip": {"configured": api.mallard.geoip_loaded and s.geoip_precision != "none",
                  "source": api.mallard.geoip_source, "levels": _levels(api), "precision": s.geoip_precision},
        "max_range_days": MAX_API_DAYS,
        "realtime": {"available": not s.round_timestamps, "window_minutes": s.realtime_window_minutes},
        "access": access,
        "shared_link": link,
    })


ROUTES: Final = (
    Route("GET", "/api/stats/info", info, "What the dashboard must know about the server: the site's "
          "time zone, whether GeoIP is configured, the longest date range, realtime, the caller's "
          "access.", access="read", tag="stats", errors=(400,), params=(site_param(),)),
)


def _levels(api: Api) -> list[str]:
    """The location levels events get: a database gives up to ``geoip_precision``; the built-in
    countries (no database) give the country only."""
    s = api.settings
    if api.mallard.geoip_source is None or s.geoip_precision == "none":
        return []
    levels = ["country", "region", "city"][:("country", "region", "city").index(s.geoip_precision) + 1]
    return levels if api.mallard.geoip_loaded else levels[:1]
