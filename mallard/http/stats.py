"""Stats routes: thin presets over :class:`mallard.Queries` (no SQL here).

Every route takes ``site_id``, ``period`` or ``start_date``/``end_date`` (inclusive, at most 366 days) and
``filters`` (``dim==value;dim!=value;dim~=text``); answers are the JSON shapes of Mallard Metrics v0.2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ..exporting import to_csv, to_json
from ..queries.model import check_site
from ..queries.periods import MAX_API_DAYS, DateRange
from .messages import HTTPError, Request, Response, json_response
from .routing import Route

if TYPE_CHECKING:
    from .api import Api

__all__ = ["ROUTES"]

MAX_LIMIT: Final = 1000


def site_of(request: Request) -> str:
    site = request.arg("site_id")
    if site is None:
        raise HTTPError(400, "Missing required query parameter site_id.")
    return check_site(site)


def range_of(api: Api, request: Request, site: str) -> DateRange:
    start, end = request.arg("start_date"), request.arg("end_date")
    if (start is None) != (end is None):
        raise HTTPError(400, "Give both start_date and end_date (YYYY-MM-DD, inclusive), or a period.")
    return api.queries.date_range(site, request.arg("period"), start, end, max_days=MAX_API_DAYS)


def limit_of(request: Request, default: int = 10, maximum: int = MAX_LIMIT) -> int:
    text = request.arg("limit")
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise HTTPError(400, "limit must be a whole number.")
    value = int(text)
    if value < 1:
        raise HTTPError(400, "limit must be at least 1")
    if value > maximum:
        raise HTTPError(400, f"limit must not exceed {maximum}")
    return value


def _scope(api: Api, request: Request) -> tuple[str, DateRange, str | None]:
    site = site_of(request)
    return site, range_of(api, request, site), request.arg("filters") or None


def main(api: Api, request: Request, params: dict[str, str]) -> Response:
    site, rng, filters = _scope(api, request)
    q = api.queries
    out: dict[str, Any] = q.main(site, start_date=rng.start, end_date=rng.end, filters=filters).to_dict()
    compare = request.arg("compare")
    if compare:
        shift = {"previous_period": rng.days, "previous-period": rng.days,
                 "year_over_year": 365, "year-over-year": 365}.get(compare)
        if shift is None:
            raise HTTPError(400, f"Invalid compare: {compare!r}. Use 'previous_period' or "
                                 "'year_over_year'.")
        previous = rng.shifted(shift)
        start, end = previous.start, previous.end
        baseline = q.main(site, start_date=start, end_date=end, filters=filters).to_dict()
        out["comparison"] = {"mode": compare.replace("-", "_"), "start_date": start.isoformat(),
                             "end_date": end.isoformat(), **baseline}
    return json_response(out)


def timeseries(api: Api, request: Request, params: dict[str, str]) -> Response:
    site, rng, filters = _scope(api, request)
    interval = request.arg("interval")
    if request.arg("period") in ("day", "today") and interval is None:
        interval = "hour"
    table = api.queries.timeseries(site, start_date=rng.start, end_date=rng.end, interval=interval,
                                   filters=filters)
    return json_response(table.to_json())


def breakdown(api: Api, request: Request, params: dict[str, str]) -> Response:
    site, rng, filters = _scope(api, request)
    metrics = ("visitors", "pageviews", "events")
    table = api.queries.breakdown(site, params["dimension"], start_date=rng.start, end_date=rng.end,
                                  metrics=metrics, limit=limit_of(request), filters=filters)
    return json_response(table.to_json())


def sessions(api: Api, request: Request, params: dict[str, str]) -> Response:
    site, rng, filters = _scope(api, request)
    return json_response(api.queries.sessions(site, start_date=rng.start, end_date=rng.end,
                                              filters=filters))


def export(api: Api, request: Request, params: dict[str, str]) -> Response:
    site, rng, filters = _scope(api, request)
    fmt = request.arg("format", "csv")
    if fmt not in ("csv", "json"):
        raise HTTPError(400, f"Invalid format: '{fmt}'. Use 'csv' or 'json'.")
    kind = request.arg("kind", "daily") or "daily"
    if kind not in ("daily", "raw"):
        raise HTTPError(400, f"Invalid kind: '{kind}'. Use 'daily' or 'raw'.")
    limit = limit_of(request, 100_000, 1_000_000) if kind == "raw" else 100_000
    table = api.queries.export(site, start_date=rng.start, end_date=rng.end, kind=kind, limit=limit,
                               filters=filters)
    name = f"mallard-{'daily' if kind == 'daily' else 'events'}-{rng.start.isoformat()}.{fmt}"
    disposition = ("Content-Disposition", f'attachment; filename="{name}"')
    if fmt == "csv":
        return Response(200, [("Content-Type", "text/csv; charset=utf-8"), disposition],
                        to_csv(table.columns, table.rows).encode())
    return Response(200, [("Content-Type", "application/json"), disposition], to_json(table.rows))


def sites(api: Api, request: Request, params: dict[str, str]) -> Response:
    return json_response({"sites": sorted(set(api.queries.sites()) | set(api.settings.site_ids))})


def v2_query(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = request.json()
    if not isinstance(body, dict):
        raise HTTPError(400, "The query must be a JSON object with site_id, metrics and date_range.")
    return json_response(api.queries.query_json(body, max_days=MAX_API_DAYS).to_dict())


def _behavioural(name: str) -> Callable[[Api, Request, dict[str, str]], Response]:
    """A behavioural analysis route, answered by ``Queries.<name>`` once it exists."""

    def handler(api: Api, request: Request, params: dict[str, str]) -> Response:
        method = getattr(api.queries, f"http_{name}", None)
        if method is None:
            raise HTTPError(501, f"The {name} analysis is not available in this version of mallard yet.")
        site, rng, filters = _scope(api, request)
        return json_response(method(site, rng, filters, request.query))

    handler.__name__ = name
    return handler


_COMMON: Final = {"site_id": "site id (required)", "period": "day, 7d, 30d, 90d, 12mo, month, year, all",
                  "start_date": "YYYY-MM-DD (with end_date, inclusive)", "end_date": "YYYY-MM-DD",
                  "filters": "dim==value;dim!=value;dim~=text"}


def _route(pattern: str, handler: Callable[[Api, Request, dict[str, str]], Response], summary: str, *,
           heavy: bool = False, cached: bool = True, extra: dict[str, str] | None = None,
           method: str = "GET") -> Route:
    return Route(method, pattern, handler, summary, access="read", heavy=heavy, cached=cached,
                 params={**_COMMON, **(extra or {})}, tag="stats")


ROUTES: Final = (
    _route("/api/stats/main", main, "Headline figures: visitors, pageviews, sessions, bounce, duration.",
           heavy=True, extra={"compare": "previous_period or year_over_year"}),
    _route("/api/stats/timeseries", timeseries, "Zero-filled visitors and pageviews per hour or day.",
           heavy=True, extra={"interval": "hour, day, week or month"}),
    _route("/api/stats/breakdown/{dimension}", breakdown, "Top values of a dimension.",
           heavy=True, extra={"limit": "1-1000 (default 10)"}),
    _route("/api/stats/sessions", sessions, "Sessions, their duration, pages per session and bounce.",
           heavy=True),
    _route("/api/stats/export", export, "Daily report or raw events as CSV or JSON.", heavy=True,
           cached=False, extra={"format": "csv or json", "kind": "daily or raw",
                                "limit": "raw rows (default 100000, at most 1000000)"}),
    Route("GET", "/api/sites", sites, "Site ids with stored events or configured.", access="read",
          heavy=True, tag="stats"),
    Route("POST", "/api/v2/query", v2_query, "A Plausible Stats API v2 query.", access="read",
          heavy=True, tag="stats"),
    _route("/api/stats/funnel", _behavioural("funnel"), "Cumulative funnel (windowFunnel strict_once).",
           heavy=True, extra={"steps": "page:/path,event:Name (1-32)", "window": "N unit or seconds"}),
    _route("/api/stats/sequences", _behavioural("sequences"), "Visitors who did every step in order.",
           heavy=True, extra={"steps": "page:/path,event:Name (at least 2)"}),
    _route("/api/stats/retention", _behavioural("retention"), "Weekly cohorts by first visit.",
           heavy=True, extra={"weeks": "1-52 (default 4)"}),
    _route("/api/stats/flow", _behavioural("flow"), "Next page after a page.", heavy=True,
           extra={"page": "/path (required)", "limit": "1-100 (default 10)"}),
)

