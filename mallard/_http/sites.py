"""Plausible's Sites API for goals and segments: ``/api/v1/sites/goals`` and ``/api/v1/sites/segments``,
and one site's settings: ``/api/v1/sites/{site_id}``.

Admin access (a login or an Admin API key). Shapes follow Plausible's Sites API: ``PUT`` finds or
creates a goal and answers it; ``GET`` lists a site's goals with cursor pagination
(``{"goals": [...], "meta": {"after", "before", "limit"}}``); ``DELETE …/:goal_id`` answers
``{"deleted": "true"}``. Segments (not in Plausible's Sites API) use the same shapes.

``GET /api/v1/sites/{site_id}`` answers Plausible's ``{"domain", "timezone"}`` with the site's
reporting ``currency`` and the UTC date of its first stored events; ``PUT`` changes the currency only
(the time zone is one setting of the server). A site is known when it has events or is configured
(``site_ids``); the literal paths beside it (``goals``, ``segments``, ...) are never a site id here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .._goals import Goal, Segment
from .._queries.model import check_site
from .messages import HTTPError, Request, Response, json_response
from .routing import Body, Param, Route
from .schemas import SITE_ID, site_param

if TYPE_CHECKING:
    from .api import Api

__all__ = ["DELETE_BODY", "PAGING", "ROUTES", "item_id", "page", "request_body", "site_of_body",
           "site_of_delete"]

#: What ``PUT /api/v1/sites/{site_id}`` changes.
SITE_SETTINGS: Final = ("currency",)

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000


def request_body(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise HTTPError(400, 'The body must be a JSON object with at least "site_id".', code="invalid_body")
    return body


def _site(value: object) -> str:
    if value is None:
        raise HTTPError(400, "site_id is required (the site's domain, e.g. example.com).",
                        code="missing_field")
    return check_site(value)


def site_of_body(body: dict[str, Any]) -> str:
    """The ``site_id`` of a request body, checked."""
    return _site(body.get("site_id"))


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise HTTPError(400, f"{key} must be a string.", code="invalid_field")
    return value


def put_goal(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = request_body(request)
    site = _site(body.get("site_id"))
    kind = body.get("goal_type")
    if kind not in ("event", "page"):
        raise HTTPError(400, "goal_type must be 'event' or 'page'.", code="invalid_field")
    props = body.get("custom_props")
    if props not in (None, {}):
        raise HTTPError(400, "custom_props on goals are not supported by mallard; leave them out.",
                        code="invalid_field")
    event_name = _optional_text(body, "event_name")
    page_path = _optional_text(body, "page_path")
    if kind == "event" and event_name is None:
        raise HTTPError(400, "event_name is required when goal_type is 'event'.", code="missing_field")
    if kind == "page" and page_path is None:
        raise HTTPError(400, "page_path is required when goal_type is 'page'.", code="missing_field")
    goal = api.mallard.goals.add(
        site, event_name=event_name if kind == "event" else None,
        page_path=page_path if kind == "page" else None,
        display_name=_optional_text(body, "display_name"), currency=_optional_text(body, "currency"))
    return json_response(goal.to_json())


def page(request: Request, items: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Cursor pagination over items ordered by id: ``after``/``before`` are ids."""
    try:
        limit = int(request.arg("limit") or DEFAULT_LIMIT)
        after = request.arg("after")
        before = request.arg("before")
        after_id = None if after is None else int(after)
        before_id = None if before is None else int(before)
    except ValueError:
        raise HTTPError(400, "limit, after and before must be integers.", code="invalid_param") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise HTTPError(400, f"limit must be between 1 and {MAX_LIMIT}.", code="invalid_limit")
    if after_id is not None:
        chosen = [i for i in items if i.id > after_id][:limit]
    elif before_id is not None:
        chosen = [i for i in items if i.id < before_id][-limit:]
    else:
        chosen = items[:limit]
    more_after = bool(chosen) and any(i.id > chosen[-1].id for i in items)
    more_before = bool(chosen) and any(i.id < chosen[0].id for i in items)
    return chosen, {"after": str(chosen[-1].id) if more_after else None,
                    "before": str(chosen[0].id) if more_before else None, "limit": limit}


def list_goals(api: Api, request: Request, params: dict[str, str]) -> Response:
    site = _site(request.arg("site_id"))
    goals, meta = page(request, api.mallard.goals.list(site))
    return json_response({"goals": [_listed(g) for g in goals], "meta": meta})


def _listed(goal: Goal) -> dict[str, Any]:
    data = goal.to_json()
    del data["domain"]
    return data


def item_id(text: str, missing: str = "Not found.", code: str = "not_found") -> int:
    """A record id from a path or parameter; 404 (``missing``, ``code``) for anything but 1-18 digits."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise HTTPError(404, missing, code=code)
    return int(text)


def site_of_delete(request: Request) -> str | None:
    body = request.json() if request.body else None
    site = body.get("site_id") if isinstance(body, dict) else None
    site = site if site is not None else request.arg("site_id")
    return None if site is None else check_site(site)


def delete_goal(api: Api, request: Request, params: dict[str, str]) -> Response:
    if not api.mallard.goals.remove(item_id(params["goal_id"]), site_of_delete(request)):
        raise HTTPError(404, "Goal could not be found", code="unknown_goal")
    return json_response({"deleted": "true"})


def put_segment(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = request_body(request)
    site = _site(body.get("site_id"))
    data = body.get("segment_data")
    filters = data.get("filters") if isinstance(data, dict) else None
    name = body.get("name")
    if not isinstance(name, str) or not isinstance(filters, list):
        raise HTTPError(400, 'The body is {"site_id", "name", "segment_data": {"filters": [...]}}.',
                        code="invalid_body")
    segment: Segment = api.mallard.goals.add_segment(site, name, filters)
    return json_response(segment.to_json())


def list_segments(api: Api, request: Request, params: dict[str, str]) -> Response:
    site = _site(request.arg("site_id"))
    segments, meta = page(request, api.mallard.goals.segments(site))
    return json_response({"segments": [s.to_json() for s in segments], "meta": meta})


def delete_segment(api: Api, request: Request, params: dict[str, str]) -> Response:
    if not api.mallard.goals.remove_segment(item_id(params["segment_id"]), site_of_delete(request)):
        raise HTTPError(404, "Segment could not be found", code="unknown_segment")
    return json_response({"deleted": "true"})


def _known_site(api: Api, params: dict[str, str]) -> str:
    site = check_site(params["site_id"])
    if site not in api.settings.site_ids and site not in api.queries.sites():
        raise HTTPError(404, "Site could not be found", code="unknown_site")
    return site


def _site_json(api: Api, site: str) -> dict[str, Any]:
    first = api.queries.first_day(site)
    return {"domain": site, "timezone": api.settings.timezone, "currency": api.mallard.goals.currency(site),
            "first_event_date": None if first is None else first.isoformat()}


def get_site(api: Api, request: Request, params: dict[str, str]) -> Response:
    return json_response(_site_json(api, _known_site(api, params)))


def put_site(api: Api, request: Request, params: dict[str, str]) -> Response:
    site = _known_site(api, params)
    body = request.json()
    if not isinstance(body, dict) or not body:
        raise HTTPError(400, 'The body is {"currency": "EUR"} (or null to clear it).', code="invalid_body")
    other = sorted(k for k in body if k not in SITE_SETTINGS)
    if other:
        raise HTTPError(400, f"Only currency can be changed here; {', '.join(map(repr, other))[:200]} "
                             "cannot (the time zone is the server's timezone setting).",
                        code="invalid_field")
    currency = body["currency"]
    if currency is not None and not isinstance(currency, str):
        raise HTTPError(400, "currency must be an ISO 4217 code such as 'EUR', or null to clear it.",
                        code="invalid_currency")
    api.mallard.goals.set_currency(site, currency)
    return json_response(_site_json(api, site))


PAGING: Final = (
    Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
          "Page size."),
    Param("after", {"type": "string"}, "Cursor: the page after this one (from meta.after)."),
    Param("before", {"type": "string"}, "Cursor: the page before this one (from meta.before)."),
)
_ID: Final = {"type": "string", "pattern": "^[0-9]{1,18}$"}
_SITE_PATH: Final = Param("site_id", SITE_ID, "The site id.", required=True, where="path")
DELETE_BODY: Final = Body({"type": "object", "properties": {"site_id": SITE_ID}}, required=False)

ROUTES: Final = (
    Route("PUT", "/api/v1/sites/goals", put_goal, "Find or create a goal (Plausible's Sites API).",
          access="admin", tag="sites", errors=(400,), body=Body({
              "type": "object", "required": ["site_id", "goal_type"], "properties": {
                  "site_id": SITE_ID, "goal_type": {"type": "string", "enum": ["event", "page"]},
                  "event_name": {"type": "string"}, "page_path": {"type": "string"},
                  "display_name": {"type": "string"},
                  "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                  "custom_props": {"type": "object", "maxProperties": 0}}})),
    Route("GET", "/api/v1/sites/goals", list_goals, "List a site's goals.", access="admin",
          tag="sites", errors=(400,), params=(site_param(), *PAGING)),
    Route("DELETE", "/api/v1/sites/goals/{goal_id}", delete_goal, "Delete a goal.", access="admin",
          tag="sites", errors=(400, 404), body=DELETE_BODY,
          params=(Param("goal_id", _ID, "The goal's id.", required=True, where="path"),)),
    Route("PUT", "/api/v1/sites/segments", put_segment, "Save a segment (a named list of filters).",
          access="admin", tag="sites", errors=(400,), body=Body({
              "type": "object", "required": ["site_id", "name", "segment_data"], "properties": {
                  "site_id": SITE_ID, "name": {"type": "string"},
                  "segment_data": {"type": "object", "required": ["filters"],
                                   "properties": {"filters": {"type": "array"}}}}})),
    Route("GET", "/api/v1/sites/segments", list_segments, "List a site's segments.", access="admin",
          tag="sites", errors=(400,), params=(site_param(), *PAGING)),
    Route("DELETE", "/api/v1/sites/segments/{segment_id}", delete_segment, "Delete a segment.",
          access="admin", tag="sites", errors=(400, 404), body=DELETE_BODY,
          params=(Param("segment_id", _ID, "The segment's id.", required=True, where="path"),)),
    Route("GET", "/api/v1/sites/{site_id}", get_site, "A site's time zone and reporting currency "
          "(Plausible's Sites API), and the UTC date of its first stored events.", access="admin",
          heavy=True, tag="sites", errors=(400, 404), params=(_SITE_PATH,)),
    Route("PUT", "/api/v1/sites/{site_id}", put_site, "Set or clear a site's reporting currency.",
          access="admin", heavy=True, tag="sites", errors=(400, 404), params=(_SITE_PATH,), body=Body({
              "type": "object", "required": ["currency"], "additionalProperties": False,
              "properties": {"currency": {"type": ["string", "null"], "pattern": "^[A-Z]{3}$",
                                          "examples": ["EUR"]}}})),
)

