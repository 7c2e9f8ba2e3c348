"""Stats routes: thin presets over :class:`mallard.Queries` (no SQL here).

Every route takes ``site_id``, ``period`` or ``start_date``/``end_date`` (inclusive, at most 366 days) and
``filters`` (``dim==value;dim!=value;dim~=text``, or v2 filters as JSON); answers are the JSON shapes
of Mallard Metrics v0.2, each the ``to_json()`` of the typed result of the matching ``Queries`` method.
Query-string parsing happens here, never in :mod:`mallard._queries`; the behavioural routes
(:mod:`.behaviour`: funnels, sequences, retention, flow) use it too. The Stats API v2 query route is
:mod:`.v2`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import orjson

from .._errors import InvalidQueryError
from .._exporting import to_csv, to_json
from .._queries.filters import FilterInput
from .._queries.include import change
from .._queries.model import check_site
from .._queries.periods import MAX_API_DAYS, DateRange
from .._queries.properties import MAX_PROPERTIES_LIMIT, MAX_SEARCH
from .._queries.registry import ALIASES, BREAKDOWNS, DIMENSIONS
from .messages import HTTPError, Request, Response, json_response
from .routing import JSON, CacheScope, Param, Route, Scoper
from .schemas import date_param, period_param, site_param
from .shares import live_link

if TYPE_CHECKING:
    from .api import Api

__all__ = ["COMPARE", "INTERVAL", "LIMIT", "ROUTES", "breakdown_answer", "cache_scope", "dates_of",
           "history_scope", "int_param", "int_schema", "main_answer", "scope_of",
           "sessions_answer", "site_of", "stats_route", "text_param", "timeseries_answer"]

MAX_LIMIT: Final = 1000


def site_of(request: Request) -> str:
    site = request.arg("site_id")
    if site is None:
        raise HTTPError(400, "Missing required query parameter site_id.", code="missing_param")
    return check_site(site)


def range_of(api: Api, request: Request, site: str) -> DateRange:
    start, end = request.arg("start_date"), request.arg("end_date")
    if (start is None) != (end is None):
        raise HTTPError(400, "Give both start_date and end_date (YYYY-MM-DD, inclusive), or a period.",
                        code="invalid_range")
    return api.queries.date_range(site, request.arg("period"), start, end, max_days=MAX_API_DAYS)


def limit_of(request: Request, default: int = 10, maximum: int = MAX_LIMIT) -> int:
    text = request.arg("limit")
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise HTTPError(400, "limit must be a whole number.", code="invalid_limit")
    value = int(text)
    if value < 1:
        raise HTTPError(400, "limit must be at least 1", code="invalid_limit")
    if value > maximum:
        raise HTTPError(400, f"limit must not exceed {maximum}", code="invalid_limit")
    return value


def filters_of(request: Request) -> FilterInput:
    """``filters``: Mallard Metrics' string (``dim==value;…``), or, when it starts with ``[``, Plausible's
    v2 filters as JSON (several values, ``has_done``, ``["is", "segment", [id]]``)."""
    text = request.arg("filters") or None
    if text is None or not text.lstrip().startswith("["):
        return text
    try:
        parsed: FilterInput = orjson.loads(text)  # nesting deeper than 1024: a decode error
        return parsed
    except orjson.JSONDecodeError:
        raise HTTPError(400, "filters starting with '[' must be JSON: a list of Stats API v2 filters "
                             "such as [[\"is\", \"visit:source\", [\"Google\"]]].",
                        code="invalid_filter") from None


def scope_of(api: Api, request: Request) -> tuple[str, DateRange, FilterInput]:
    """The site, date range and filters a stats request names."""
    site = site_of(request)
    return site, range_of(api, request, site), filters_of(request)


def text_param(request: Request, name: str, *, required: bool = True) -> str:
    """The last value of ``name``; an empty or missing one is ``""``, or an error when required."""
    value = request.arg(name) or ""
    if required and not value:
        raise InvalidQueryError(f"Missing required query parameter {name}.", code="missing_param")
    return value


def int_param(request: Request, name: str, default: int) -> int:
    """A whole number of at most 6 digits (its range is checked by the analysis), or ``default``."""
    text = text_param(request, name, required=False)
    if text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise InvalidQueryError(f"{name} must be a whole number.", code=f"invalid_{name}")
    return int(text)


def dates_of(rng: DateRange) -> dict[str, Any]:
    """``rng`` as the keyword arguments of the :class:`mallard.Queries` analyses."""
    return {"start_date": rng.start, "end_date": rng.end, "timezone": rng.tz}


def compared(rng: DateRange, compare: str) -> DateRange | None:
    """The range a ``compare`` mode compares ``rng`` with (None for an unknown mode)."""
    shift = {"previous_period": rng.days, "previous-period": rng.days,
             "year_over_year": 365, "year-over-year": 365}.get(compare)
    return None if shift is None else rng.shifted(shift)


def cache_scope(api: Api, request: Request) -> CacheScope:
    """What a cached stats route reads: the range, and the compared range before it (``compare``)."""
    site = site_of(request)
    rng = range_of(api, request, site)
    first, last = rng.partition_dates()
    try:
        previous = compared(rng, request.arg("compare") or "")
    except InvalidQueryError:  # the route that reads it says so
        previous = None
    if previous is not None:
        first = min(first, previous.partition_dates()[0])
    return CacheScope(site, first, last, rng.tz)


def history_scope(api: Api, request: Request) -> CacheScope:
    """What retention reads: every partition up to the range's end (a first visit is the earliest
    event of all history, so a file flushed into any earlier day can change the cohorts)."""
    return cache_scope(api, request)._replace(first=None)


def main_answer(api: Api, request: Request) -> dict[str, Any]:
    site, rng, filters = scope_of(api, request)
    q = api.queries
    out: dict[str, Any] = q.main(site, start_date=rng.start, end_date=rng.end, filters=filters).to_dict()
    compare = request.arg("compare")
    if compare:
        previous = compared(rng, compare)
        if previous is None:
            raise HTTPError(400, f"Invalid compare: {compare!r}. Use 'previous_period' or "
                                 "'year_over_year'.", code="invalid_compare")
        start, end = previous.start, previous.end
        baseline = q.main(site, start_date=start, end_date=end, filters=filters).to_dict()
        out["comparison"] = {"mode": compare.replace("-", "_"), "start_date": start.isoformat(),
                             "end_date": end.isoformat(), **baseline,
                             "change": {key: change(metric, _wire(key, baseline[key]), _wire(key, out[key]))
                                        for key, metric in CHANGES.items()}}
    return out


#: The figures of /api/stats/main whose change against a comparison is given, each with the Stats API
#: v2 metric whose rule it follows (percent change; bounce rate: the difference in points).
CHANGES: Final = {"unique_visitors": "visitors", "total_pageviews": "pageviews", "total_sessions": "visits",
                  "bounce_rate": "bounce_rate", "avg_visit_duration_secs": "visit_duration",
                  "views_per_visit": "views_per_visit"}


def _wire(key: str, value: Any) -> Any:
    """A main figure as the v2 API states it (the bounce rate in percent)."""
    return value * 100 if key == "bounce_rate" and value is not None else value


def timeseries_answer(api: Api, request: Request, shift: int = 0) -> Any:
    """The series of the request's range, or of the range ``shift`` days earlier."""
    site, rng, filters = scope_of(api, request)
    if shift:
        rng = rng.shifted(shift)
    interval = request.arg("interval")
    if request.arg("period") in ("day", "today") and interval is None:
        interval = "hour"
    return api.queries.timeseries(site, start_date=rng.start, end_date=rng.end, interval=interval,
                                  filters=filters).to_json()


def breakdown_answer(api: Api, request: Request, dimension: str) -> Any:
    site, rng, filters = scope_of(api, request)
    metrics = ("visitors", "pageviews", "events")
    return api.queries.breakdown(site, dimension, start_date=rng.start, end_date=rng.end,
                                 metrics=metrics, limit=limit_of(request), filters=filters).to_json()


def sessions_answer(api: Api, request: Request) -> Any:
    site, rng, filters = scope_of(api, request)
    return api.queries.sessions(site, start_date=rng.start, end_date=rng.end, filters=filters).to_json()


def main(api: Api, request: Request, params: dict[str, str]) -> Response:
    return json_response(main_answer(api, request))


def timeseries(api: Api, request: Request, params: dict[str, str]) -> Response:
    return json_response(timeseries_answer(api, request))


def breakdown(api: Api, request: Request, params: dict[str, str]) -> Response:
    return json_response(breakdown_answer(api, request, params["dimension"]))


def sessions(api: Api, request: Request, params: dict[str, str]) -> Response:
    return json_response(sessions_answer(api, request))


def export(api: Api, request: Request, params: dict[str, str]) -> Response:
    site, rng, filters = scope_of(api, request)
    fmt = request.arg("format", "csv")
    if fmt not in ("csv", "json"):
        raise HTTPError(400, f"Invalid format: '{fmt}'. Use 'csv' or 'json'.", code="invalid_format")
    kind = request.arg("kind", "daily") or "daily"
    if kind not in ("daily", "raw"):
        raise HTTPError(400, f"Invalid kind: '{kind}'. Use 'daily' or 'raw'.", code="invalid_kind")
    limit = limit_of(request, 100_000, 1_000_000)  # checked for both kinds: a bad limit is an error
    if kind != "raw":
        limit = 100_000
    table = api.queries.export(site, start_date=rng.start, end_date=rng.end, kind=kind, limit=limit,
                               filters=filters)
    name = f"mallard-{'daily' if kind == 'daily' else 'events'}-{rng.start.isoformat()}.{fmt}"
    disposition = ("Content-Disposition", f'attachment; filename="{name}"')
    if fmt == "csv":
        return Response(200, [("Content-Type", "text/csv; charset=utf-8"), disposition],
                        to_csv(table.columns, table.rows).encode())
    return Response(200, [("Content-Type", "application/json"), disposition], to_json(table.rows))


def sites(api: Api, request: Request, params: dict[str, str]) -> Response:
    link = live_link(api, request)
    if link is not None:  # a shared link sees its own site only
        return json_response({"sites": [link.site_id]})
    return json_response({"sites": sorted(set(api.queries.sites()) | set(api.settings.site_ids))})


def properties(api: Api, request: Request, params: dict[str, str]) -> Response:
    """``q`` (a part of the key, any case) and ``limit`` (1-100, default 50)."""
    site, rng, filters = scope_of(api, request)
    result = api.queries.properties(site, limit=int_param(request, "limit", 50), filters=filters,
                                    contains=text_param(request, "q", required=False), **dates_of(rng))
    return json_response(result.to_json())


def _dimension_names() -> list[str]:
    slugs = [*BREAKDOWNS, *ALIASES]
    return sorted({*slugs, *(s.replace("-", "_") for s in slugs), *DIMENSIONS})


def int_schema(low: int, high: int, default: int | None = None) -> dict[str, Any]:
    """The JSON Schema of a whole-number parameter from ``low`` to ``high``."""
    schema: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": high}
    return schema if default is None else {**schema, "default": default}


_COMMON: Final = (
    site_param(), period_param(),
    date_param("start_date", "First day (YYYY-MM-DD), with end_date; at most 366 days apart."),
    date_param("end_date", "Last day, inclusive (YYYY-MM-DD), with start_date."),
    Param("filters", {"type": "string"}, "dim==value;dim!=value;dim~=text (clauses joined by ';'), or "
          "Stats API v2 filters as JSON ([[\"has_done\", [\"is\", \"event:name\", [\"Signup\"]]]])."),
)
_DIMENSION: Final = Param("dimension", {"anyOf": [
    {"type": "string", "enum": _dimension_names()},
    {"type": "string", "pattern": "^event:props:[A-Za-z0-9_. :$-]{1,128}$"}]},
    "A breakdown slug (pages, sources, browsers, ...), a query-model dimension (visit:utm_campaign) or "
    "event:props:<key>.", required=True, where="path")


def stats_route(pattern: str, handler: Callable[[Api, Request, dict[str, str]], Response], summary: str,
                *, heavy: bool = False, cached: bool = True, extra: tuple[Param, ...] = (),
                replies: dict[int, tuple[str, ...]] | None = None, scope: Scoper = cache_scope) -> Route:
    """A GET stats route: read access, the parameters every stats route takes (and ``extra``),
    cached per :func:`cache_scope` (or ``scope``) unless ``cached`` is False."""
    return Route("GET", pattern, handler, summary, access="read", heavy=heavy,
                 cache_scope=scope if cached else None,
                 params=(*_COMMON, *extra), tag="stats", replies=replies or {200: (JSON,)},
                 errors=(400, 503))


COMPARE: Final = Param("compare", {"type": "string", "enum": [
    "", "previous_period", "year_over_year", "previous-period", "year-over-year"]},
    "Add the figures of the previous period or of the year before.")
INTERVAL: Final = Param("interval", {"type": "string", "enum": ["hour", "day", "week", "month"]},
                         "Bucket size (default hour for ranges of up to 2 days, else day).")
LIMIT: Final = Param("limit", int_schema(1, MAX_LIMIT, 10), "Rows.")
ROUTES: Final = (
    stats_route("/api/stats/main", main, "Headline figures: visitors, pageviews, sessions, bounce, duration.",
                heavy=True, extra=(COMPARE,)),
    stats_route("/api/stats/timeseries", timeseries, "Zero-filled visitors and pageviews per hour or day.",
                heavy=True, extra=(INTERVAL,)),
    stats_route("/api/stats/breakdown/{dimension}", breakdown, "Top values of a dimension.",
                heavy=True, extra=(_DIMENSION, LIMIT)),
    stats_route("/api/stats/properties", properties, "Custom property keys of the range's events, most "
                "visitors first (suggestions: other suggestions are v2 queries with a contains filter).",
                heavy=True, extra=(Param("q", {"type": "string", "maxLength": MAX_SEARCH},
                                         "A part of the key (any case)."),
                                   Param("limit", int_schema(1, MAX_PROPERTIES_LIMIT, 50), "Keys listed."))),
    stats_route("/api/stats/sessions", sessions, "Sessions, their duration, pages per session and bounce.",
                heavy=True),
    stats_route("/api/stats/export", export, "Daily report or raw events as CSV or JSON.", heavy=True,
                cached=False, replies={200: ("text/csv", JSON)}, extra=(
                    Param("format", {"type": "string", "enum": ["csv", "json"], "default": "csv"}, "Format."),
                    Param("kind", {"type": "string", "enum": ["", "daily", "raw"], "default": "daily"},
                          "A daily report or the raw events."),
                    Param("limit", int_schema(1, 1_000_000, 100_000), "Raw rows (kind=raw only)."))),
    Route("GET", "/api/sites", sites, "Site ids with stored events or configured.", access="read",
          heavy=True, tag="stats", errors=(503,)),
)
