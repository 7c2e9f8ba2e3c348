"""The OpenAPI 3.1 document of the HTTP API, generated from the route table."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .routing import Route

__all__ = ["document"]

_ERROR = {"description": "Error", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}}}


def _operation(route: Route) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{([a-z_]+)\}", route.pattern)]
    params += [{"name": name, "in": "query", "required": name == "site_id",
                "description": text, "schema": {"type": "string"}} for name, text in route.params.items()]
    slug = re.sub(r"[^a-z0-9]+", "_", route.pattern.lower()).strip("_") or "root"
    op: dict[str, Any] = {
        "summary": route.summary, "tags": [route.tag],
        "operationId": f"{route.method.lower()}_{slug}",
        "responses": {"200" if not route.ingestion or route.method == "GET" else "202":
                      {"description": "Success"}, "400": _ERROR, "default": _ERROR},
    }
    if params:
        op["parameters"] = params
    if route.access != "public":
        op["security"] = [{"session": []}, {"bearer": []}, {"apiKey": []}]
        op["responses"]["401"] = _ERROR
    if route.method in ("POST",):
        op["requestBody"] = {"content": {"application/json": {"schema": {"type": ["object", "array"]}}}}
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
        "components": {"securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "mm_session"},
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }},
    }
