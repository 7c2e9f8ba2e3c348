"""The OpenAPI 3.1 document of the HTTP API, generated from the route table.

Everything route-specific comes from :class:`~mallard._http.routing.Route` (parameters, body, answers, the
handler's own error statuses). What follows from a route's flags is added here, once:

* ``access`` ``read`` → 401, 403 (open mode from another origin, a shared link asking about another
  site) and 429 (a client locked out for guessing shared-link secrets); ``admin`` → 401 and 403 (a
  read-only key, a cross-site cookie request, a shared link);
* ``heavy`` → 429 (too many concurrent queries) and 503 (query timeout, storage unavailable);
* a request body → 400 (not JSON) and 413 (over ``max_body_bytes``); query parameters → 400.

Every error answer is ``{"error": "<message>", "code": "<code>"}`` (``#/components/schemas/Error``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, Final

from .routing import Route
from .schemas import ERROR

__all__ = ["document", "error_statuses"]

_ERROR_REF: Final = {"$ref": "#/components/responses/Error"}
_ACCESS: Final = {
    "read": "Needs a dashboard login, an API key or a shared link of the site; before an admin "
            "password exists, a loopback client.",
    "admin": "Needs a dashboard login or an Admin API key; closed until an admin password exists.",
}
SECURITY_SCHEMES: Final = {
    "session": {"type": "apiKey", "in": "cookie", "name": "mm_session",
                "description": "The dashboard session, set by POST /api/auth/login."},
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API key (POST /api/keys)."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "An API key."},
    "sharedLink": {"type": "apiKey", "in": "header", "name": "X-Mallard-Share",
                   "description": "A shared link's secret (POST /api/v1/sites/shared-links): read "
                                  "routes of its own site only."},
    "sharedLinkQuery": {"type": "apiKey", "in": "query", "name": "auth",
                        "description": "A shared link's secret as the auth query parameter."},
}
_SHARED: Final = ("sharedLink", "sharedLinkQuery")


def error_statuses(route: Route) -> set[int]:
    """Every ``{"error": ...}`` status ``route`` can answer with (besides 404/405 of the router)."""
    found = set(route.errors)
    if route.access != "public":
        found.add(401)
    if route.access == "admin":
        found.add(403)
    if route.access == "read":  # open mode from another origin; a shared link: another site, lockout
        found.update((403, 429))
    if route.heavy:
        found.update((429, 503))
    if route.body is not None:
        found.update((400, 413))
    if any(p.where == "query" for p in route.params):
        found.add(400)
    return found - set(route.replies)


def _operation(route: Route) -> dict[str, Any]:
    slug = re.sub(r"[^a-z0-9]+", "_", route.pattern.lower()).strip("_") or "root"
    responses: dict[str, Any] = {}
    for status, media_types in sorted(route.replies.items()):
        answer: dict[str, Any] = {"description": HTTPStatus(status).phrase}
        if media_types:
            answer["content"] = {t: {} for t in media_types}
        responses[str(status)] = answer
    for status in sorted(error_statuses(route)):
        responses[str(status)] = _ERROR_REF
    op: dict[str, Any] = {"summary": route.summary, "tags": [route.tag],
                          "operationId": f"{route.method.lower()}_{slug}", "responses": responses}
    if route.access in _ACCESS:
        op["description"] = _ACCESS[route.access]
        op["security"] = [{name: []} for name in SECURITY_SCHEMES
                          if route.access == "read" or name not in _SHARED]
    if route.params:
        op["parameters"] = [
            {"name": p.name, "in": p.where, "required": p.required or p.where == "path",
             **({"description": p.description} if p.description else {}), "schema": dict(p.schema)}
            for p in route.params]
    if route.body is not None:
        body = route.body
        op["requestBody"] = {"required": body.required,
                             **({"description": body.description} if body.description else {}),
                             "content": {body.media_type: {"schema": dict(body.schema)}}}
    return op


def document(routes: Sequence[Route]) -> dict[str, Any]:
    from .. import __version__

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.pattern, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "mallard", "version": __version__,
                 "description": "Privacy-first, cookieless web analytics (Mallard Metrics compatible)."},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "responses": {"Error": {
                "description": "An error: {\"error\": message, \"code\": code}.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
