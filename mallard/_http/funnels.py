"""Saved funnels over HTTP: ``/api/v1/sites/funnels`` (Admin to save and delete; listing is a read
route, so read-only keys and a site's shared links see the site's funnels), and
:func:`saved_funnel`, which ``GET /api/stats/funnel?funnel=<id>`` uses to run one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .._funnels import SavedFunnel
from .._queries.funnels import MAX_STEPS
from .messages import HTTPError, Request, Response, json_response
from .routing import JSON, Body, Param, Route
from .schemas import SITE_ID, site_param
from .sites import DELETE_BODY, PAGING, item_id, page, request_body, site_of_body, site_of_delete

if TYPE_CHECKING:
    from .api import Api

__all__ = ["ROUTES", "saved_funnel"]


def saved_funnel(api: Api, site: str, text: str) -> SavedFunnel:
    """The site's saved funnel with id ``text``; 404 when there is none (of that site)."""
    found = api.mallard.funnels.get(site, item_id(text, "Funnel could not be found", "unknown_funnel"))
    if found is None:
        raise HTTPError(404, "Funnel could not be found", code="unknown_funnel")
    return found


def create(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = request_body(request)
    site = site_of_body(body)
    name, steps, window = body.get("name"), body.get("steps"), body.get("window", "1 day")
    if not isinstance(name, str) or not isinstance(steps, (list, str)) \
            or not isinstance(window, (str, int)) or isinstance(window, bool):
        raise HTTPError(400, 'The body is {"site_id", "name", "steps": ["page:/a", "event:B"], '
                             '"window": "1 day"}.', code="invalid_body")
    funnel = api.mallard.funnels.add(site, name, steps, window=window)
    return json_response(funnel.to_json(), 201)


def list_funnels(api: Api, request: Request, params: dict[str, str]) -> Response:
    site = site_of_body({"site_id": request.arg("site_id")})
    funnels, meta = page(request, api.mallard.funnels.list(site))
    return json_response({"funnels": [f.to_json() for f in funnels], "meta": meta})


def delete(api: Api, request: Request, params: dict[str, str]) -> Response:
    if not api.mallard.funnels.remove(item_id(params["funnel_id"]), site_of_delete(request)):
        raise HTTPError(404, "Funnel could not be found", code="unknown_funnel")
    return json_response({"deleted": "true"})


_STEP: Final = {"type": "string", "minLength": 1, "examples": ["page:/pricing", "event:Signup"]}

ROUTES: Final = (
    Route("POST", "/api/v1/sites/funnels", create, "Save a funnel (a name, its steps and window).",
          access="admin", tag="sites", replies={201: (JSON,)}, errors=(400,), body=Body({
              "type": "object", "required": ["site_id", "name", "steps"], "properties": {
                  "site_id": SITE_ID, "name": {"type": "string", "minLength": 1, "maxLength": 120},
                  "steps": {"anyOf": [
                      {"type": "array", "minItems": 1, "maxItems": MAX_STEPS, "items": _STEP},
                      {"type": "string", "minLength": 1, "examples": ["page:/,event:Signup"]}]},
                  "window": {"anyOf": [{"type": "string"}, {"type": "integer"}],
                             "default": "1 day"}}})),
    Route("GET", "/api/v1/sites/funnels", list_funnels, "List a site's saved funnels.",
          access="read", tag="sites", errors=(400,), params=(site_param(), *PAGING)),
    Route("DELETE", "/api/v1/sites/funnels/{funnel_id}", delete, "Delete a saved funnel.",
          access="admin", tag="sites", errors=(400, 404), body=DELETE_BODY,
          params=(Param("funnel_id", {"type": "string", "pattern": "^[0-9]{1,18}$"},
                        "The funnel's id.", required=True, where="path"),)),
)
