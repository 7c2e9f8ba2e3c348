"""Plausible's Stats API v1 (``/api/v1/stats/...``) and the dashboard's realtime route.

Each v1 request is translated into the one query model (:func:`mallard._queries.model.build`, answered by
``Queries.run``) and its answer reshaped into v1's JSON; nothing here writes SQL. Values come from the
Plausible-shaped v2 body of the result (``QueryResult.to_dict()``: rates in percent, the vocabulary of
``POST /api/v2/query``), so both APIs name things alike. Errors are ``{"error": ...}`` with status 400,
as Plausible's.

Where this differs from Plausible, on purpose: a filter clause that cannot be read, or a country code
that is not two letters, is a 400 (Plausible drops the clause silently); ``visit:x!=a|b`` excludes every
listed value (Plausible ignores the ``!``); ``compare`` other than ``previous_period`` is a 400;
``time_on_page`` is computed from Plausible's engagement reports (needs ``event:page``, see
docs/concepts.md), not from the time between pageviews as v1 did.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from .._errors import InvalidQueryError
from .._queries.filters import MAX_CONDITIONS, NULL_VALUES, Filter, Logic, condition, conditions
from .._queries.model import build
from .._queries.periods import MAX_API_DAYS, DateRange, v1_period
from .._queries.registry import METRICS, TIME_DIMENSIONS, dimension
from .._queries.vocabulary import NOT_SET, plausible_query
from .messages import HTTPError, Request, Response, json_response
from .routing import CacheScope, Param, Route
from .schemas import site_param
from .stats import site_of

if TYPE_CHECKING:
    from .api import Api

__all__ = ["ROUTES", "cache_scope", "parse_filters"]

# -- periods: THE single place where v1 period names become dates ------------------------------------
#: v1's period names (the OpenAPI enum); :func:`mallard._queries.periods.v1_period` counts them.
V1_PERIODS: Final = ("day", "7d", "30d", "month", "6mo", "12mo", "year", "all", "realtime", "30m",
                     "custom")


# -- filters ---------------------------------------------------------------------------------------
_META: Final = frozenset("\\.^$|?+()[]{}")


def _glob(pattern: str) -> str:
    """An anchored RE2 pattern for a v1 wildcard value: ``*`` (and ``**``) match any characters."""
    out = "".join(".*" if c == "*" else "\\" + c if c in _META else c
                  for c in pattern.replace("**", "*"))
    return f"^{out}$"


def _members(raw: str) -> list[str]:
    """``a|b|c`` split on unescaped pipes, ``\\|`` read as a literal ``|``."""
    return [part.replace("\\|", "|") for part in re.split(r"(?<!\\)\|", raw)]


def _clause(text: str) -> Filter:
    marks = [(text.find(op), op) for op in ("==", "!=", "~=", "~") if op in text]
    if not marks:
        raise InvalidQueryError(f"Invalid filter {text!r}: use property==value, property!=value or "
                                "property~text, clauses joined by ';'.", code="invalid_filter")
    at, op = min(marks, key=lambda m: (m[0], -len(m[1])))
    key, raw = text[:at].strip(), text[at + len(op):].strip()
    if not key or not raw:
        raise InvalidQueryError(f"Invalid filter {text!r}: a property and a value are needed.",
                                code="invalid_filter")
    values = _members(raw)
    if key == "visit:country" and any(len(v) != 2 for v in values):
        raise InvalidQueryError("visit:country takes ISO 3166-1 alpha-2 codes (two letters).",
                                code="invalid_filter")
    negated = op == "!="
    if op.startswith("~"):
        return condition("contains", key, values)
    if "*" in raw:
        return condition("matches_not" if negated else "matches", key, [_glob(v) for v in values])
    return condition("is_not" if negated else "is", key, values)


def parse_filters(text: str | None) -> Filter | None:
    """A filter tree from v1's ``filters``: clauses joined by ``;`` (all must hold), each
    ``property==value``, ``property!=value`` or ``property~text``; ``a|b`` is any of the values (``\\|``
    a literal pipe); ``*`` is a wildcard."""
    clauses = [c.strip() for c in (text or "").split(";") if c.strip()]
    if len(clauses) > MAX_CONDITIONS:
        raise InvalidQueryError(f"At most {MAX_CONDITIONS} filter clauses are allowed.",
                                code="invalid_filter")
    tree = [_clause(c) for c in clauses]
    if not tree:
        return None
    return tree[0] if len(tree) == 1 else Logic("and", tuple(tree))


# -- metrics ---------------------------------------------------------------------------------------
V1_METRICS: Final = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate",
                     "visit_duration", "events", "conversion_rate", "time_on_page")
SESSION_METRICS: Final = frozenset({"visits", "bounce_rate", "visit_duration", "views_per_visit"})
_ROUNDED: Final = frozenset({"bounce_rate", "visit_duration"})
_EVENT_ONLY: Final = ("event:name", "event:goal", "event:props:")


def _event_only(name: str) -> bool:
    return name.startswith(_EVENT_ONLY)


def _metrics(request: Request, filters: Filter | None, dims: Sequence[str]) -> list[str]:
    """v1's ``metrics`` (default visitors), checked as Plausible checks them."""
    names = [m.strip() for m in (request.arg("metrics") or "visitors").split(",")]
    if len(set(names)) != len(names):
        raise InvalidQueryError("Each metric may be asked for once.", code="invalid_metric")
    filtered = [c.dimension.name for c in conditions(filters)]
    for name in names:
        if name not in V1_METRICS:
            raise InvalidQueryError(f"Unknown metric {name!r}. v1 metrics: {', '.join(V1_METRICS)}.",
                                    code="invalid_metric")
        if name == "conversion_rate" and "event:goal" not in (*dims, *filtered):
            raise InvalidQueryError("conversion_rate needs an event:goal filter or an event:goal "
                                    "breakdown.", code="invalid_metric")
        if name == "views_per_visit" and ("event:page" in filtered or dims):
            raise InvalidQueryError("views_per_visit cannot be broken down or filtered by event:page.",
                                    code="invalid_metric")
        if name in SESSION_METRICS:
            bad = next((d for d in (*dims, *filtered) if _event_only(d)), None)
            if bad is not None:
                raise InvalidQueryError(f"Session metric {name} cannot be used with {bad}; use "
                                        "visitors, pageviews or events.", code="invalid_metric")
    return names


def _engine(metric: str, dims: Sequence[str]) -> str:
    """The query-model metric behind a v1 metric (a goal's share of its group outside goal breakdowns,
    where the model has one)."""
    if metric == "conversion_rate" and not any(d == "event:goal" or d.startswith("event:props:")
                                               for d in dims) and "group_conversion_rate" in METRICS:
        return "group_conversion_rate"
    return metric


def _whole(value: float) -> int:
    """Rounded half away from zero (as Plausible's Elixir ``round/1``; Python's ``round`` goes to even)."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def _value(metric: str, value: Any) -> Any:
    if value is None:
        return None
    if metric in _ROUNDED:
        return _whole(value)
    if metric in ("views_per_visit", "conversion_rate"):
        return round(float(value), 2)
    return value


def _rows(api: Api, site: str, rng: DateRange, metrics: Sequence[str], dims: Sequence[str],
          filters: Filter | None, **options: Any) -> list[tuple[list[Any], dict[str, Any]]]:
    """(dimension values, {v1 metric: value}) per result row of the query model."""
    engine = [_engine(m, dims) for m in metrics]
    query = build(site, rng, metrics=engine, dimensions=dims, filters=filters, **options)
    body = api.queries.run(plausible_query(query)).to_dict()
    return [(r["dimensions"], {m: _value(m, v) for m, v in zip(metrics, r["metrics"], strict=True)})
            for r in body["results"]]


class Scope(NamedTuple):
    """What every v1 request names: the site, the date range, the filters, the period and today."""

    site: str
    rng: DateRange
    filters: Filter | None
    period: str
    today: date


def _scope(api: Api, request: Request) -> Scope:
    site = site_of(request)
    tz = api.settings.timezone
    today = api.queries.today(tz)
    period = request.arg("period") or "30d"
    rng = v1_period(period, request.arg("date") or None, now=api.queries.now(), tz=tz,
                    first_day=api.queries.first_day(site) if period == "all" else None,
                    max_days=MAX_API_DAYS)
    if request.arg("with_imported") not in (None, "", "true", "false"):
        raise InvalidQueryError("with_imported is true or false.", code="invalid_param")
    return Scope(site, rng, parse_filters(request.arg("filters")), period, today)


def cache_scope(api: Api, request: Request) -> CacheScope | None:
    """What a v1 request reads (the period, and the previous one for ``compare``), or None for the
    periods counted back from this instant (``realtime``, ``30m``): those are not cached."""
    site, rng, _, _, today = _scope(api, request)
    if rng.instants is not None:
        return None
    first, last = rng.partition_dates()
    if request.arg("compare") == "previous_period":
        first = min(first, _previous(rng, today).partition_dates()[0])
    return CacheScope(site, first, last, rng.tz)


# -- aggregate -------------------------------------------------------------------------------------
def _change(metric: str, old: Any, new: Any) -> Any:
    """Plausible's change: percentage points for bounce_rate, else the rounded percent change."""
    if old is None or new is None:
        return None
    if metric == "bounce_rate":
        return new - old if old > 0 else None
    if old == 0:
        return 100 if new > 0 else 0
    return _whole((new - old) / old * 100)


def _previous(rng: DateRange, today: date) -> DateRange:
    """The period of the same length (up to today) just before ``rng``."""
    last = min(rng.end, today)
    shift = (last - rng.start).days + 1
    try:
        return DateRange(rng.start - timedelta(days=shift), last - timedelta(days=shift), rng.tz)
    except (OverflowError, InvalidQueryError):
        raise InvalidQueryError("The previous period would start before the calendar does; choose "
                                "later dates.", code="date_out_of_range") from None


def aggregate(api: Api, request: Request, params: dict[str, str]) -> Response:
    site, rng, filters, _, today = _scope(api, request)
    metrics = _metrics(request, filters, ())
    compare = request.arg("compare") or None
    if compare not in (None, "previous_period"):
        raise InvalidQueryError("compare takes previous_period.", code="invalid_compare")
    now = dict(_first(_rows(api, site, rng, metrics, (), filters), metrics))
    results: dict[str, Any] = {m: {"value": now[m]} for m in metrics}
    if compare:
        before = _first(_rows(api, site, _previous(rng, today), metrics, (), filters), metrics)
        for m in metrics:
            results[m].update(comparison_value=before[m], change=_change(m, before[m], now[m]))
    return json_response({"results": results})


def _first(rows: list[tuple[list[Any], dict[str, Any]]], metrics: Sequence[str]) -> dict[str, Any]:
    return rows[0][1] if rows else {m: _value(m, METRICS[_engine(m, ())].empty) for m in metrics}


# -- timeseries ------------------------------------------------------------------------------------
def timeseries(api: Api, request: Request, params: dict[str, str]) -> Response:
    site, rng, filters, period, _ = _scope(api, request)
    interval = request.arg("interval") or None
    if interval == "date":
        interval = "day"
    if interval not in (None, "day", "month"):
        raise InvalidQueryError(f"Unknown interval {interval!r}: use day or month.",
                                code="invalid_interval")
    if interval is None:
        interval = {"day": "hour", "6mo": "month", "12mo": "month"}.get(period, "day")
    metrics = _metrics(request, filters, ())
    rows = _rows(api, site, rng, metrics, (f"time:{interval}",), filters)
    results = [{"date": _label(dims[0]), **values} for dims, values in rows]
    return json_response({"results": results})


def _label(value: str) -> str:
    """Plausible's hour labels carry seconds (``2024-05-01 13:00:00``)."""
    return f"{value}:00" if len(value) == 16 else value


# -- breakdown -------------------------------------------------------------------------------------
#: Properties whose empty value Plausible leaves out of a breakdown.
_SKIP_EMPTY: Final = ("visit:city", "visit:country", "visit:region", "visit:utm_medium", "visit:utm_source",
                      "visit:utm_campaign", "visit:utm_content", "visit:utm_term", "visit:entry_page",
                      "visit:exit_page")
#: Version properties come with their parent (``visit:browser_version`` rows name the browser too).
_WITH_PARENT: Final = {"visit:browser_version": "visit:browser", "visit:os_version": "visit:os"}


def _key(name: str) -> str:
    """The result key of a property: ``visit:source`` → ``source``, ``event:props:plan`` → ``plan``."""
    return name[len("event:props:"):] if name.startswith("event:props:") else name.split(":", 1)[-1]


def _limit(request: Request) -> tuple[int, int]:
    limit_text, page_text = request.arg("limit") or "100", request.arg("page") or "1"
    if not (limit_text.isascii() and limit_text.isdigit()) or len(limit_text) > 6 \
            or not 1 <= int(limit_text) <= 1000:
        raise InvalidQueryError("limit is a whole number from 1 to 1000.", code="invalid_limit")
    if not (page_text.isascii() and page_text.isdigit()) or len(page_text) > 6 or int(page_text) < 1:
        raise InvalidQueryError("page is a whole number from 1 (the first page).", code="invalid_page")
    limit = int(limit_text)
    return limit, (int(page_text) - 1) * limit


def breakdown(api: Api, request: Request, params: dict[str, str]) -> Response:
    site, rng, filters, _, _ = _scope(api, request)
    prop = request.arg("property") or ""
    if not prop:
        raise InvalidQueryError("property is required: the property to break down by, e.g. "
                                "property=visit:source.", code="missing_param")
    if prop == "event:hostname":
        raise InvalidQueryError("event:hostname can filter but not break down; choose another "
                                "property.", code="invalid_dimension")
    if prop in TIME_DIMENSIONS or not prop.startswith(("event:", "visit:")):
        raise InvalidQueryError(f"Unknown property {prop!r}: use an event:... or visit:... property.",
                                code="invalid_dimension")
    name = dimension(prop).name
    dims = [d for d in (_WITH_PARENT.get(name), name) if d is not None]
    metrics = _metrics(request, filters, dims)
    limit, offset = _limit(request)
    if name in _SKIP_EMPTY:
        # has a value: NULL under either vocabulary's name for it
        present = condition("is_not", name, sorted(NULL_VALUES | {NOT_SET}))
        filters = present if filters is None else Logic("and", (filters, present))
    order_metric = next((m for m in metrics if m != "time_on_page"), metrics[0])
    order = [[_engine(order_metric, dims), "desc"], *([d, "asc"] for d in dims)]
    rows = _rows(api, site, rng, metrics, dims, filters, order_by=order, limit=limit, offset=offset)
    results = [{**{_key(d): v for d, v in zip(dims, values, strict=True)}, **figures}
               for values, figures in rows]
    return json_response({"results": results})


# -- realtime --------------------------------------------------------------------------------------
def realtime_visitors(api: Api, request: Request, params: dict[str, str]) -> Response:
    return json_response(api.queries.current_visitors(site_of(request)))


def realtime(api: Api, request: Request, params: dict[str, str]) -> Response:
    text = request.arg("limit") or "10"
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or not 1 <= int(text) <= 100:
        raise HTTPError(400, "limit is a whole number from 1 to 100.", code="invalid_limit")
    return json_response(api.queries.realtime(site_of(request), limit=int(text)).to_json())


# -- routes ----------------------------------------------------------------------------------------
_SITE: Final = site_param("The site id (its domain).")
_COMMON: Final = (
    _SITE,
    Param("period", {"type": "string", "enum": list(V1_PERIODS), "default": "30d"},
          "day, 7d, 30d, month, 6mo, 12mo (relative to date), or custom."),
    Param("date", {"type": "string", "examples": ["2024-05-01", "2024-01-01,2024-01-31"]},
          "YYYY-MM-DD (default today); with period=custom, first,last."),
    Param("filters", {"type": "string", "examples": ["visit:browser==Chrome;event:page==/a|/b"]},
          "property==value, property!=value, property~text; ';' joins, '|' lists, '*' is a wildcard."),
    Param("metrics", {"type": "string", "default": "visitors"}, f"Comma-separated: {', '.join(V1_METRICS)}."),
    Param("with_imported", {"type": "string", "enum": ["", "true", "false"]}, "Accepted; mallard imports "
          "no stats."),
)


def _route(pattern: str, handler: Any, summary: str, extra: tuple[Param, ...] = (),
           common: tuple[Param, ...] = _COMMON, cached: bool = True) -> Route:
    # The realtime routes are never cached: their answers change by the second.
    return Route("GET", pattern, handler, summary, access="read", heavy=True,
                 cache_scope=cache_scope if cached else None, params=(*common, *extra), tag="stats",
                 errors=(400, 503))


ROUTES: Final = (
    _route("/api/v1/stats/aggregate", aggregate, "Plausible Stats API v1: metrics over a period.",
           (Param("compare", {"type": "string", "enum": ["", "previous_period"]},
                  "previous_period adds comparison_value and change."),)),
    _route("/api/v1/stats/timeseries", timeseries, "Plausible Stats API v1: metrics per day, month or "
           "hour.", (Param("interval", {"type": "string", "enum": ["", "day", "date", "month"]},
                           "day or month (default: hour for day, month for 6mo and 12mo, else day)."),)),
    _route("/api/v1/stats/breakdown", breakdown, "Plausible Stats API v1: metrics per value of a "
           "property.", (
               Param("property", {"type": "string", "minLength": 1, "examples": ["visit:source"]},
                     "The property to break down by.", required=True),
               Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "Rows."),
               Param("page", {"type": "integer", "minimum": 1, "default": 1}, "Page, from 1."))),
    _route("/api/v1/stats/realtime/visitors", realtime_visitors, "Plausible Stats API v1: visitors in "
           "the last 5 minutes (a bare number).", common=(_SITE,), cached=False),
    _route("/api/stats/realtime", realtime, "Visitors in the last 5 minutes, their pages and sources.",
           (Param("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                  "Pages and sources listed."),), common=(_SITE,), cached=False),
)
