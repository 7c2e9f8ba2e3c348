"""Read-only shared links over HTTP: what a link's secret may do, and the Admin routes managing links.

A request carries a link's secret as ``?auth=<secret>`` (the form of the URL that is shared: the
dashboard page and, copied from it, every API call) or as the header ``X-Mallard-Share: <secret>``
(what the dashboard should send on API calls, so the secret stays out of access logs). A request with
a login or an API key is authorised by those, never by a link.

A live link may use the ``read`` routes (the stats routes, the v1/v2 APIs, realtime, saved funnels)
for its own site only: another site is 403. An ``admin`` route is 403 to any secret, without looking
it up. A revoked link is 401 in every
process at its next request. An unknown secret is 401 and counts as a failed login of the client
(the login lockout then answers 429 with ``Retry-After``), so secrets cannot be guessed faster than
passwords; a revoked one does not count (its holder is no guesser).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .._queries.model import check_site
from .._shares import SharedLink
from .admin import check_lockout
from .messages import HTTPError, Request, Response, json_response
from .routing import JSON, Body, Param, Route
from .schemas import SITE_ID, site_param
from .security import client_ip
from .sites import DELETE_BODY, item_id, request_body, site_of_body, site_of_delete

if TYPE_CHECKING:
    from .api import Api
    from .routing import Route as RouteType

__all__ = ["HEADER", "ROUTES", "authorize", "embed_headers", "live_link", "secret_of"]

HEADER: Final = "x-mallard-share"
PARAM: Final = "auth"


def secret_of(request: Request) -> str | None:
    """The shared-link secret the request carries (header first), or None."""
    return request.headers.get(HEADER) or request.arg(PARAM) or None


def live_link(api: Api, request: Request) -> SharedLink | None:
    """The live link authorising this request: it carries a link's secret and no login or key."""
    secret = secret_of(request)
    if secret is None or api.principal(request) is not None:
        return None
    link = api.mallard.shared_links.find(secret)
    return None if link is None or link.revoked else link


def _requested_site(request: Request) -> object:
    if request.method == "POST":  # /api/v2/query: the site is in the body
        body = request.json()
        return body.get("site_id") if isinstance(body, dict) else None
    return request.arg("site_id")


def authorize(api: Api, route: RouteType, request: Request, secret: str) -> None:
    """Let the request through under a shared link's rules (see the module docstring), or raise."""
    if route.access != "read":  # whatever the secret: no answer here tells a guesser anything
        raise HTTPError(403, "A shared link only reads the stats of its site.", code="shared_link_refused")
    ip = client_ip(request, api.settings) or "unknown"
    check_lockout(api, ip)
    link = api.mallard.shared_links.find(secret)
    if link is None:
        api.auth.record_failure(ip)
        api.count("mallard_shared_link_failures_total")
        raise HTTPError(401, "Unknown shared link: ask the site's owner for a new one.",
                        code="unknown_shared_link")
    if link.revoked:
        raise HTTPError(401, "This shared link was revoked: ask the site's owner for a new one.",
                        code="shared_link_revoked")
    if route.pattern == "/api/sites":  # answers the link's site only (stats.sites)
        return
    site = _requested_site(request)
    if site is None or check_site(site) != link.site_id:
        raise HTTPError(403, f"This shared link reads the stats of {link.site_id} only.",
                        code="shared_link_refused")


def embed_headers(api: Api, request: Request) -> tuple[tuple[str, str], ...]:
    """The Content-Security-Policy letting ``embed_origins`` frame a dashboard page opened with a live
    shared link; nothing otherwise (the default policy forbids framing)."""
    from .security import csp

    origins = api.settings.embed_origins
    if not origins or live_link(api, request) is None:
        return ()
    return (("Content-Security-Policy", csp(frame_ancestors=origins)),)


# -- Admin routes ----------------------------------------------------------------------------------
def create(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = request_body(request)
    site = site_of_body(body)
    secret, link = api.mallard.shared_links.create(site, body.get("name"))  # type: ignore[arg-type]
    url = f"{request.root_path}/?site={site}&{PARAM}={secret}"
    return json_response({**link.to_json(), "secret": secret, "url": url}, 201)


def list_links(api: Api, request: Request, params: dict[str, str]) -> Response:
    site = check_site(request.arg("site_id") or "")
    return json_response({"shared_links": [link.to_json() for link in api.mallard.shared_links.list(site)]})


def revoke(api: Api, request: Request, params: dict[str, str]) -> Response:
    if not api.mallard.shared_links.revoke(item_id(params["link_id"]), site_of_delete(request)):
        raise HTTPError(404, "Shared link could not be found", code="unknown_shared_link")
    return json_response({"revoked": "true"})


ROUTES: Final = (
    Route("POST", "/api/v1/sites/shared-links", create, "Create a read-only shared link of a site "
          "(its secret is shown once).", access="admin", tag="sites", replies={201: (JSON,)},
          errors=(400,), body=Body({"type": "object", "required": ["site_id", "name"], "properties": {
              "site_id": SITE_ID, "name": {"type": "string", "minLength": 1, "maxLength": 120}}})),
    Route("GET", "/api/v1/sites/shared-links", list_links, "List a site's shared links (without "
          "secrets).", access="admin", tag="sites", errors=(400,), params=(site_param(),)),
    Route("DELETE", "/api/v1/sites/shared-links/{link_id}", revoke, "Revoke a shared link, in every "
          "worker at once.", access="admin", tag="sites", errors=(400, 404),
          body=DELETE_BODY,
          params=(Param("link_id", {"type": "string", "pattern": "^[0-9]{1,18}$"}, "The link's id.",
                        required=True, where="path"),)),
)
