"""Stats routes: thin presets over :class:`mallard.Queries` (no SQL here).

Every route takes ``site_id``, ``period`` or ``start_date``/``end_date`` (inclusive, at most 366 days) and
``filters`` (``dim==value;dim!=value;dim~=text``, or v2 filters as JSON); answers are the JSON shapes
of Mallard Metrics v0.2, each the ``to_json()`` of the typed result of the matching ``Queries`` method.
Query-string parsing happens here, never in :mod:`mallard.queries`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any, Final

import orjson

from ..errors import InvalidQueryError
from ..exporting import to_csv, to_json
from ..queries.flow import MAX_FLOW_LIMIT
from ..queries.funnels import MAX_STEPS
from ..queries.include import change
from ..queries.model import MAX_LIMIT as MAX_QUERY_LIMIT
from ..queries.model import check_site
from ..queries.periods import MAX_API_DAYS, PLAUSIBLE_PERIODS, DateRange
from ..queries.properties import MAX_PROPERTIES_LIMIT, MAX_SEARCH
from ..queries.registry import ALIASES, BREAKDOWNS, DIMENSIONS, METRICS
from ..queries.retention import MAX_WEEKS
from .funnels import saved_funnel
from .messages import HTTPError, Request, Response, json_response
from .routing import JSON, Body, CacheScope, Param, Route, Scoper
from .schemas import SITE_ID, date_param, period_param, site_param
from .shares import live_link

if TYPE_CHECKING:
    from ..funnels import SavedFunnel
    from .api import Api

__all__ = ["ROUTES", "V2_QUERY", "cache_scope"]

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


def filters_of(request: Request) -> object:
    """``filters``: Mallard Metrics' string (``dim==value;…``), or, when it starts with ``[``, Plausible's
    v2 filters as JSON (several values, ``has_done``, ``["is", "segment", [id]]``)."""
    text = request.arg("filters") or None
    if text is None or not text.lstrip().startswith("["):
        return text
    try:
        return orjson.loads(text)  # nesting deeper than 1024 is a decode error, not a RecursionError
    except orjson.JSONDecodeError:
        raise HTTPError(400, "filters starting with '[' must be JSON: a list of Stats API v2 filters "
                             "such as [[\"is\", \"visit:source\", [\"Google\"]]].",
                        code="invalid_filter") from None


def _scope(api: Api, request: Request) -> tuple[str, DateRange, object]:
    site = site_of(request)
    return site, range_of(api, request, site), filters_of(request)


def _param(request: Request, name: str, *, required: bool = True) -> str:
    """The last value of ``name``; an empty or missing one is ``""``, or an error when required."""
    value = request.arg(name) or ""
    if required and not value:
        raise InvalidQueryError(f"Missing required query parameter {name}.", code="missing_param")
    return value


def _int_param(request: Request, name: str, default: int) -> int:
    """A whole number of at most 6 digits (its range is checked by the analysis), or ``default``."""
    text = _param(request, name, required=False)
    if text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise InvalidQueryError(f"{name} must be a whole number.", code=f"invalid_{name}")
    return int(text)


def _dates(rng: DateRange) -> dict[str, Any]:
    return {"start_date": rng.start, "end_date": rng.end, "timezone": rng.tz}


def _compared(rng: DateRange, compare: str) -> DateRange | None:
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
        previous = _compared(rng, request.arg("compare") or "")
    except InvalidQueryError:  # the route that reads it says so
        previous = None
    if previous is not None:
        first = min(first, previous.partition_dates()[0])
    return CacheScope(site, first, last, rng.tz)


def history_scope(api: Api, request: Request) -> CacheScope:
    """What retention reads: every partition up to the range's end (a first visit is the earliest
    event of all history, so a file flushed into any earlier day can change the cohorts)."""
    return cache_scope(api, request)._replace(first=None)


def _main(api: Api, request: Request) -> dict[str, Any]:
    site, rng, filters = _scope(api, request)
    q = api.queries
    out: dict[str, Any] = q.main(site, start_date=rng.start, end_date=rng.end, filters=filters).to_dict()
    compare = request.arg("compare")
    if compare:
        previous = _compared(rng, compare)
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


def _timeseries(api: Api, request: Request, shift: int = 0) -> Any:
    """The series of the request's range, or of the range ``shift`` days earlier."""
    site, rng, filters = _scope(api, request)
    if shift:
        rng = rng.shifted(shift)
    interval = request.arg("interval")
    if request.arg("period") in ("day", "today") and interval is None:
        interval = "hour"
    return api.queries.timeseries(site, start_date=rng.start, end_date=rng.end, interval=interval,
                                  filters=filters).to_json()


def _breakdown(api: Api, request: Request, dimension: str) -> Any:
    site, rng, filters = _scope(api, request)
    metrics = ("visitors", "pageviews", "events")
    return api.queries.breakdown(site, dimension, start_date=rng.start, end_date=rng.end,
                                 metrics=metrics, limit=limit_of(request), filters=filters).to_json()


def _sessions(api: Api, request: Request) -> Any:
    site, rng, filters = _scope(api, request)
    return api.queries.sessions(site, start_date=rng.start, end_date=rng.end, filters=filters).to_json()


def main(api: Api, request: Request, params: dict[str, str]) -> Response:
    return json_response(_main(api, request))


def timeseries(api: Api, request: Request, params: dict[str, str]) -> Response:
    return json_response(_timeseries(api, request))


def breakdown(api: Api, request: Request, params: dict[str, str]) -> Response:
    return json_response(_breakdown(api, request, params["dimension"]))


def sessions(api: Api, request: Request, params: dict[str, str]) -> Response:
    return json_response(_sessions(api, request))


#: The first tab of each breakdown panel of the dashboard (mallard/static/dashboard/app.js, GROUPS).
VIEW_BREAKDOWNS: Final = ("pages", "sources", "countries", "browsers", "events")
MAX_VIEW_BREAKDOWNS: Final = 10


def view(api: Api, request: Request, params: dict[str, str]) -> Response:
    """The dashboard's first screen in one answer, computed here on one thread so the work its parts
    share (the session rows) is done once: each part is the body its own route answers for the same
    query parameters."""
    slugs = list(dict.fromkeys(s.strip() for s in (request.arg("breakdowns") or "").split(",")
                               if s.strip())) or list(VIEW_BREAKDOWNS)
    if len(slugs) > MAX_VIEW_BREAKDOWNS:
        raise HTTPError(400, f"breakdowns lists at most {MAX_VIEW_BREAKDOWNS} dimensions.",
                        code="invalid_dimension")
    rng = _scope(api, request)[1]
    out = {"main": _main(api, request), "timeseries": _timeseries(api, request),
           "sessions": _sessions(api, request),
           "breakdowns": {s: _breakdown(api, request, s) for s in slugs},
           "range": {"start_date": rng.start.isoformat(), "end_date": rng.end.isoformat(),
                     "timezone": rng.tz}}
    comparison = out["main"].get("comparison")
    if comparison is not None:  # the series of the compared range, drawn behind the current one
        days = (rng.start - date.fromisoformat(comparison["start_date"])).days
        out["previous_timeseries"] = _timeseries(api, request, days)
    return json_response(out)


def export(api: Api, request: Request, params: dict[str, str]) -> Response:
    site, rng, filters = _scope(api, request)
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


def v2_scope(api: Api, request: Request) -> CacheScope | None:
    """What a v2 query reads, or None (not cached) for a body that is not a valid query (the route
    answers its error), a range counted back from this instant (``24h``, ``realtime``…) or a custom
    comparison range (which may lie anywhere)."""
    try:
        query = api.queries.parse_json(request.json(), max_days=MAX_API_DAYS)
    except (HTTPError, InvalidQueryError):
        return None
    rng, compared = query.date_range, query.include.comparisons
    if rng.instants is not None or (compared is not None and compared.mode == "custom"):
        return None
    first, last = rng.partition_dates()
    # previous_period and year_over_year read earlier dates: every partition up to the range's end
    return CacheScope(query.site_id, None if compared is not None else first, last, rng.tz)


def _v2_body(api: Api, request: Request) -> bytes:
    """The cache key's part for a v2 query: its body, keys sorted (the same query, the same key)."""
    return orjson.dumps(request.json(), option=orjson.OPT_SORT_KEYS)


def v2_query(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = request.json()
    if not isinstance(body, dict):
        raise HTTPError(400, "The query must be a JSON object with site_id, metrics and date_range.",
                        code="invalid_query")
    return json_response(api.queries.query_json(body, max_days=MAX_API_DAYS).to_json())


def _saved(api: Api, request: Request) -> SavedFunnel | None:
    """The saved funnel ``funnel=<id>`` names (404 when the site has none with that id), or None."""
    text = request.arg("funnel")
    if text is None:
        return None
    if request.arg("steps") is not None or request.arg("window") is not None:
        raise HTTPError(400, "Give either funnel (a saved funnel's id) or steps and window, not both.",
                        code="invalid_steps")
    return saved_funnel(api, site_of(request), text)


def funnel(api: Api, request: Request, params: dict[str, str]) -> Response:
    """``steps=page:/a,event:B`` and ``window`` (default ``1 day``), or ``funnel=<saved id>``; answers
    the step rows."""
    site, rng, filters = _scope(api, request)
    saved = _saved(api, request)
    steps = list(saved.steps) if saved else _param(request, "steps")
    window = saved.window if saved else _param(request, "window", required=False) or "1 day"
    result = api.queries.funnel(site, steps, window=window, filters=filters, **_dates(rng))
    return json_response(result.to_json())


def sequences(api: Api, request: Request, params: dict[str, str]) -> Response:
    """``steps=page:/a,event:B`` (at least 2)."""
    site, rng, filters = _scope(api, request)
    result = api.queries.sequences(site, _param(request, "steps"), filters=filters, **_dates(rng))
    return json_response(result.to_json())


def retention(api: Api, request: Request, params: dict[str, str]) -> Response:
    """``weeks`` (1-52, default 4), ``identity`` (``all`` or ``user_id``: identified users only)."""
    site, rng, filters = _scope(api, request)
    result = api.queries.retention(site, weeks=_int_param(request, "weeks", 4), filters=filters,
                                   identity=_param(request, "identity", required=False), **_dates(rng))
    return json_response(result.to_json())


def flow(api: Api, request: Request, params: dict[str, str]) -> Response:
    """``page`` (required), ``limit`` (1-100, default 10), ``direction`` (``next`` or ``previous``)."""
    site, rng, filters = _scope(api, request)
    result = api.queries.flow(site, _param(request, "page"), limit=_int_param(request, "limit", 10),
                              filters=filters, direction=_param(request, "direction", required=False),
                              **_dates(rng))
    return json_response(result.to_json())


def properties(api: Api, request: Request, params: dict[str, str]) -> Response:
    """``q`` (a part of the key, any case) and ``limit`` (1-100, default 50)."""
    site, rng, filters = _scope(api, request)
    result = api.queries.properties(site, limit=_int_param(request, "limit", 50), filters=filters,
                                    contains=_param(request, "q", required=False), **_dates(rng))
    return json_response(result.to_json())


def _dimension_names() -> list[str]:
    slugs = [*BREAKDOWNS, *ALIASES]
    return sorted({*slugs, *(s.replace("-", "_") for s in slugs), *DIMENSIONS})


def _int(low: int, high: int, default: int | None = None) -> dict[str, Any]:
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
_STEPS: Final = {"type": "string", "minLength": 1, "examples": ["page:/,event:Signup"]}


def _route(pattern: str, handler: Callable[[Api, Request, dict[str, str]], Response], summary: str, *,
           heavy: bool = False, cached: bool = True, extra: tuple[Param, ...] = (),
           replies: dict[int, tuple[str, ...]] | None = None, scope: Scoper = cache_scope) -> Route:
    return Route("GET", pattern, handler, summary, access="read", heavy=heavy,
                 cache_scope=scope if cached else None,
                 params=(*_COMMON, *extra), tag="stats", replies=replies or {200: (JSON,)},
                 errors=(400, 503))


V2_QUERY: Final = {
    "type": "object", "additionalProperties": False, "required": ["site_id", "metrics"],
    "description": "A Plausible Stats API v2 query.",
    "properties": {
        "site_id": SITE_ID,
        "metrics": {"type": "array", "minItems": 1, "uniqueItems": True,
                    "items": {"type": "string", "enum": list(METRICS)}},
        "date_range": {"anyOf": [
            {"type": "string", "enum": list(PLAUSIBLE_PERIODS),
             "description": "A period as Plausible counts it (7d: the 7 days before today); any other "
                            "Nd (1-5000) or Nmo (1-100) works too."},
            {"type": "array", "minItems": 2, "maxItems": 2,
             "items": {"type": "string", "description": "Two YYYY-MM-DD dates (inclusive), or two ISO 8601 "
                                                        "datetimes with offsets (the end second included)"}}],
            "default": "30d"},
        "dimensions": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
        "filters": {"type": ["array", "string", "null"],
                    "description": "[operator, dimension, [values]], ['and'|'or', [filters]], "
                                   "['not', filter], a list of filters that must all hold, or a "
                                   "filter string (dim==value;dim!=value)."},
        "order_by": {"type": ["array", "null"], "items": {
            "type": "array", "minItems": 2, "maxItems": 2,
            "prefixItems": [{"type": "string"}, {"enum": ["asc", "desc"]}]}},
        "pagination": {"type": ["object", "null"], "properties": {
            "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_QUERY_LIMIT},
            "offset": {"type": "integer", "minimum": 0}}},
        "include": {"type": ["object", "null"], "additionalProperties": False, "properties": {
            "time_labels": {"type": "boolean", "description": "meta.time_labels: every bucket of the range "
                                                              "(needs a time dimension)."},
            "total_rows": {"type": "boolean", "description": "meta.total_rows: rows before pagination."},
            "imports": {"type": "boolean", "description": "meta.imports_included (always false: mallard "
                                                          "holds no imported data)."},
            "comparisons": {"type": ["object", "null"], "required": ["mode"], "additionalProperties": False,
                            "description": "Adds a comparison (dimensions, metrics, change) to each row.",
                            "properties": {
                                "mode": {"enum": ["previous_period", "year_over_year", "custom"]},
                                "date_range": {"type": "array", "minItems": 2, "maxItems": 2,
                                               "items": {"type": "string", "format": "date"}},
                                "match_day_of_week": {"type": "boolean"}}}}},
        "timezone": {"type": ["string", "null"], "description": "An IANA time zone (default UTC)."},
    },
}

_COMPARE: Final = Param("compare", {"type": "string", "enum": [
    "", "previous_period", "year_over_year", "previous-period", "year-over-year"]},
    "Add the figures of the previous period or of the year before.")
_INTERVAL: Final = Param("interval", {"type": "string", "enum": ["hour", "day", "week", "month"]},
                         "Bucket size (default hour for ranges of up to 2 days, else day).")
_LIMIT: Final = Param("limit", _int(1, MAX_LIMIT, 10), "Rows.")
_BREAKDOWNS: Final = Param("breakdowns", {"type": "string", "default": ",".join(VIEW_BREAKDOWNS)},
                           f"Comma-separated breakdown dimensions (at most {MAX_VIEW_BREAKDOWNS}), each "
                           "as in /api/stats/breakdown/{dimension}.")

ROUTES: Final = (
    _route("/api/stats/main", main, "Headline figures: visitors, pageviews, sessions, bounce, duration.",
           heavy=True, extra=(_COMPARE,)),
    _route("/api/stats/timeseries", timeseries, "Zero-filled visitors and pageviews per hour or day.",
           heavy=True, extra=(_INTERVAL,)),
    _route("/api/stats/breakdown/{dimension}", breakdown, "Top values of a dimension.",
           heavy=True, extra=(_DIMENSION, _LIMIT)),
    _route("/api/stats/properties", properties, "Custom property keys of the range's events, most "
           "visitors first (suggestions: other suggestions are v2 queries with a contains filter).",
           heavy=True, extra=(Param("q", {"type": "string", "maxLength": MAX_SEARCH},
                                    "A part of the key (any case)."),
                              Param("limit", _int(1, MAX_PROPERTIES_LIMIT, 50), "Keys listed."))),
    _route("/api/stats/sessions", sessions, "Sessions, their duration, pages per session and bounce.",
           heavy=True),
    _route("/api/stats/view", view, "A dashboard view in one answer: main, timeseries, sessions and "
           "breakdowns, each as its own route answers it.", heavy=True,
           extra=(_COMPARE, _INTERVAL, _LIMIT, _BREAKDOWNS)),
    _route("/api/stats/export", export, "Daily report or raw events as CSV or JSON.", heavy=True,
           cached=False, replies={200: ("text/csv", JSON)}, extra=(
               Param("format", {"type": "string", "enum": ["csv", "json"], "default": "csv"}, "Format."),
               Param("kind", {"type": "string", "enum": ["", "daily", "raw"], "default": "daily"},
                     "A daily report or the raw events."),
               Param("limit", _int(1, 1_000_000, 100_000), "Raw rows (kind=raw only)."))),
    Route("GET", "/api/sites", sites, "Site ids with stored events or configured.", access="read",
          heavy=True, tag="stats", errors=(503,)),
    Route("POST", "/api/v2/query", v2_query, "A Plausible Stats API v2 query.", access="read",
          heavy=True, tag="stats", body=Body(V2_QUERY), errors=(400,), cache_scope=v2_scope,
          cache_key=_v2_body),
    replace(_route("/api/stats/funnel", funnel, "Cumulative funnel (windowFunnel strict_once).",
                   heavy=True, extra=(
                       Param("steps", _STEPS, f"page:/path,event:Name (1-{MAX_STEPS} steps); "
                             "required unless funnel is given."),
                       Param("window", {"type": "string", "default": "1 day"},
                             "'N seconds|minutes|hours|days|weeks' or seconds (at most 366 days)."),
                       Param("funnel", {"type": "string", "pattern": "^[0-9]{1,18}$"},
                             "A saved funnel's id (GET /api/v1/sites/funnels), instead of steps and "
                             "window."))),
            errors=(400, 404, 503), cache_key=_saved),
    _route("/api/stats/sequences", sequences, "Visitors who did every step in order.",
           heavy=True, extra=(Param("steps", _STEPS, "page:/path,event:Name (at least 2).",
                                    required=True),)),
    _route("/api/stats/retention", retention, "Weekly cohorts by first visit.",
           heavy=True, scope=history_scope,
           extra=(Param("weeks", _int(1, MAX_WEEKS, 4), "Weeks after the cohort week."),
                  Param("identity", {"type": "string", "enum": ["all", "user_id"]},
                        "user_id: identified users only (default all)."))),
    _route("/api/stats/flow", flow, "Next page after a page.", heavy=True,
           extra=(Param("page", {"type": "string", "minLength": 1}, "The page path.", required=True),
                  Param("limit", _int(1, MAX_FLOW_LIMIT, 10), "Next pages listed."),
                  Param("direction", {"type": "string", "enum": ["next", "previous"]},
                        "previous: the pages viewed just before (default next)."))),
)
