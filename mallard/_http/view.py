"""``GET /api/stats/view``: the dashboard's first screen in one answer.

Its parts are computed at once on the view workers (parts.py), and the work they share (the open
days' session rows and rollups) once. Each part is the body its own route answers for the same query
parameters: ``main`` (with the compared period), ``timeseries`` (and ``previous_timeseries``),
``sessions``, one breakdown per ``breakdowns`` slug, and, when ``panels`` names them, the panels the
page would otherwise ask for only after this answer came (their requests waited for the first
screen's layout): ``goals`` (the Goal conversions panel's Stats API v2 query) and ``properties`` (the
property keys, and the values of the first).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from .._queries.filters import FilterInput, parse_string
from .._queries.periods import MAX_API_DAYS, DateRange
from .messages import HTTPError, Request, Response, json_response
from .routing import Param
from .stats import (
    COMPARE,
    INTERVAL,
    LIMIT,
    breakdown_answer,
    compared,
    dates_of,
    main_answer,
    scope_of,
    sessions_answer,
    stats_route,
    timeseries_answer,
)

if TYPE_CHECKING:
    from .api import Api

__all__ = ["GOAL_METRICS", "ROUTES", "VIEW_BREAKDOWNS", "VIEW_PANELS"]

#: The first tab of each breakdown panel of the dashboard (static/dashboard/ui/labels.js, GROUPS).
VIEW_BREAKDOWNS: Final = ("pages", "sources", "countries", "browsers", "events")
MAX_VIEW_BREAKDOWNS: Final = 10
#: The panels ``panels`` may name.
VIEW_PANELS: Final = ("goals", "properties")
#: The Goal conversions panel's metrics (static/dashboard/ui/goals.js, GOAL_METRICS).
GOAL_METRICS: Final = ("visitors", "events", "conversion_rate", "total_revenue", "average_revenue")
#: Rows of the first property's values (the Properties panel's).
PROPERTY_VALUES: Final = 10


def _listed(request: Request, name: str, default: tuple[str, ...]) -> list[str]:
    text = request.arg(name) or ""
    return list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip())) or list(default)


def view(api: Api, request: Request, params: dict[str, str]) -> Response:
    slugs = _listed(request, "breakdowns", VIEW_BREAKDOWNS)
    if len(slugs) > MAX_VIEW_BREAKDOWNS:
        raise HTTPError(400, f"breakdowns lists at most {MAX_VIEW_BREAKDOWNS} dimensions.",
                        code="invalid_dimension")
    panels = _listed(request, "panels", ())
    unknown = [p for p in panels if p not in VIEW_PANELS]
    if unknown:
        raise HTTPError(400, f"Unknown panel {unknown[0]!r} in panels: use {', '.join(VIEW_PANELS)}.",
                        code="invalid_panel")
    site, rng, filters = scope_of(api, request)
    # heaviest first: main reads what the others share, then the breakdowns (the sources one reads
    # every session of the range)
    jobs: dict[str, Callable[[], Any]] = {"main": lambda: main_answer(api, request)}
    jobs |= {f"breakdown {s}": partial(breakdown_answer, api, request, s) for s in slugs}
    jobs |= {"timeseries": lambda: timeseries_answer(api, request),
             "sessions": lambda: sessions_answer(api, request)}
    previous = compared(rng, request.arg("compare") or "")
    if previous is not None:  # the series of the compared range, drawn behind the current one
        shift = (rng.start - previous.start).days
        jobs["previous_timeseries"] = partial(timeseries_answer, api, request, shift)
    if "goals" in panels:
        jobs["goals"] = lambda: goals_answer(api, site, rng, filters)
    if "properties" in panels:
        jobs["properties"] = lambda: _properties(api, site, rng, filters)
    done = api.parts.run(jobs)
    out = {"main": done.pop("main"), "timeseries": done.pop("timeseries"), "sessions": done.pop("sessions"),
           "breakdowns": {s: done.pop(f"breakdown {s}") for s in slugs},
           "range": {"start_date": rng.start.isoformat(), "end_date": rng.end.isoformat(),
                     "timezone": rng.tz}}
    return json_response(out | done)


def goals_answer(api: Api, site: str, rng: DateRange, filters: FilterInput) -> Any:
    """The Goal conversions panel's answer: the v2 query of :data:`GOAL_METRICS` by ``event:goal``."""
    body: dict[str, Any] = {"site_id": site, "metrics": list(GOAL_METRICS), "dimensions": ["event:goal"],
                            "date_range": [rng.start.isoformat(), rng.end.isoformat()], "timezone": rng.tz}
    if filters is not None:
        body["filters"] = filters
    return api.queries.query_json(body, max_days=MAX_API_DAYS).to_json()


def _properties(api: Api, site: str, rng: DateRange, filters: FilterInput) -> Any:
    """The property keys (as ``/api/stats/properties`` answers with its default limit) and the values
    of the first (``key``) as ``/api/stats/breakdown/event:props:<key>`` answers them once the events
    without it are filtered out, as the Properties panel asks; ``key`` and ``values`` are null when no
    event has a property."""
    keys = api.queries.properties(site, filters=filters, **dates_of(rng)).to_json()
    listed = keys.get("properties") or []
    if not listed:
        return {"properties": keys, "key": None, "values": None}
    key = str(listed[0]["key"])
    values = api.queries.breakdown(
        site, f"event:props:{key}", metrics=("visitors", "pageviews", "events"), limit=PROPERTY_VALUES,
        filters=_with(filters, ["is_not", f"event:props:{key}", ["(unknown)"]]), **dates_of(rng)).to_json()
    return {"properties": keys, "key": key, "values": values}


def _with(filters: FilterInput, cond: list[Any]) -> list[Any]:
    """``filters`` (as a request gives them: a filter string or v2 JSON) and ``cond``, as v2 filters."""
    if filters is None:
        return [cond]
    if isinstance(filters, str):
        tree = parse_string(filters)
        return [cond] if tree is None else [tree.to_json(), cond]
    items = list(filters) if isinstance(filters, list | tuple) else [filters]
    return [*items, cond] if items and all(isinstance(f, list) for f in items) else [items, cond]


ROUTES: Final = (
    stats_route("/api/stats/view", view, "A dashboard view in one answer: main, timeseries, sessions, "
                "breakdowns and panels, each as its own route answers it.", heavy=True,
                extra=(COMPARE, INTERVAL, LIMIT,
                       Param("breakdowns", {"type": "string", "default": ",".join(VIEW_BREAKDOWNS)},
                             f"Comma-separated breakdown dimensions (at most {MAX_VIEW_BREAKDOWNS}), each "
                             "as in /api/stats/breakdown/{dimension}."),
                       Param("panels", {"type": "string"},
                             "Comma-separated panels to add: goals (the v2 event:goal query of "
                             + ", ".join(GOAL_METRICS) + "), properties (the property keys and the "
                             "first key's values).")),
                ),
)
