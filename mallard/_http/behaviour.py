"""Behavioural analytics routes: funnels, sequences, retention and page flow (thin presets over
:class:`mallard.Queries`, whose SQL needs no DuckDB extension). They take the parameters of every stats
route (:mod:`.stats`: ``site_id``, the range, ``filters``) and their own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Final

from .._queries.flow import MAX_FLOW_LIMIT
from .._queries.funnels import MAX_STEPS
from .._queries.retention import MAX_WEEKS
from .funnels import saved_funnel
from .messages import HTTPError, Request, Response, json_response
from .routing import Param
from .stats import (
    dates_of,
    history_scope,
    int_param,
    int_schema,
    scope_of,
    site_of,
    stats_route,
    text_param,
)

if TYPE_CHECKING:
    from .._funnels import SavedFunnel
    from .api import Api

__all__ = ["ROUTES"]

_STEPS: Final = {"type": "string", "minLength": 1, "examples": ["page:/,event:Signup"]}


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
    site, rng, filters = scope_of(api, request)
    saved = _saved(api, request)
    steps = list(saved.steps) if saved else text_param(request, "steps")
    window = saved.window if saved else text_param(request, "window", required=False) or "1 day"
    result = api.queries.funnel(site, steps, window=window, filters=filters, **dates_of(rng))
    return json_response(result.to_json())


def sequences(api: Api, request: Request, params: dict[str, str]) -> Response:
    """``steps=page:/a,event:B`` (at least 2)."""
    site, rng, filters = scope_of(api, request)
    result = api.queries.sequences(site, text_param(request, "steps"), filters=filters, **dates_of(rng))
    return json_response(result.to_json())


def retention(api: Api, request: Request, params: dict[str, str]) -> Response:
    """``weeks`` (1-52, default 4), ``identity`` (``all`` or ``user_id``: identified users only)."""
    site, rng, filters = scope_of(api, request)
    result = api.queries.retention(site, weeks=int_param(request, "weeks", 4), filters=filters,
                                   identity=text_param(request, "identity", required=False), **dates_of(rng))
    return json_response(result.to_json())


def flow(api: Api, request: Request, params: dict[str, str]) -> Response:
    """``page`` (required), ``limit`` (1-100, default 10), ``direction`` (``next`` or ``previous``)."""
    site, rng, filters = scope_of(api, request)
    result = api.queries.flow(site, text_param(request, "page"), limit=int_param(request, "limit", 10),
                              filters=filters, direction=text_param(request, "direction", required=False),
                              **dates_of(rng))
    return json_response(result.to_json())


ROUTES: Final = (
    replace(stats_route("/api/stats/funnel", funnel, "Cumulative funnel (windowFunnel strict_once).",
                        heavy=True, extra=(
                            Param("steps", _STEPS, f"page:/path,event:Name (1-{MAX_STEPS} steps); "
                                  "required unless funnel is given."),
                            Param("window", {"type": "string", "default": "1 day"},
                                  "'N seconds|minutes|hours|days|weeks' or seconds (at most 366 days)."),
                            Param("funnel", {"type": "string", "pattern": "^[0-9]{1,18}$"},
                                  "A saved funnel's id (GET /api/v1/sites/funnels), instead of steps and "
                                  "window."))),
            errors=(400, 404, 503), cache_key=_saved),
    stats_route("/api/stats/sequences", sequences, "Visitors who did every step in order.",
                heavy=True, extra=(Param("steps", _STEPS, "page:/path,event:Name (at least 2).",
                                         required=True),)),
    stats_route("/api/stats/retention", retention, "Weekly cohorts by first visit.",
                heavy=True, scope=history_scope,
                extra=(Param("weeks", int_schema(1, MAX_WEEKS, 4), "Weeks after the cohort week."),
                       Param("identity", {"type": "string", "enum": ["all", "user_id"]},
                             "user_id: identified users only (default all)."))),
    stats_route("/api/stats/flow", flow, "Next page after a page.", heavy=True,
                extra=(Param("page", {"type": "string", "minLength": 1}, "The page path.", required=True),
                       Param("limit", int_schema(1, MAX_FLOW_LIMIT, 10), "Next pages listed."),
                       Param("direction", {"type": "string", "enum": ["next", "previous"]},
                             "previous: the pages viewed just before (default next)."))),
)
