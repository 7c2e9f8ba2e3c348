"""The route table: method + path pattern → handler, with the route's access level and cost class.

Patterns are literal paths with ``{name}`` segments (``/api/stats/breakdown/{dimension}``); a path
that is some route's literal path never matches a pattern (``/api/v1/sites/goals`` is not the site
``goals`` of ``/api/v1/sites/{site_id}``). The table is
also the only source of the OpenAPI document (:mod:`mallard._http.openapi`): every route carries a one-line
summary, its typed parameters (:class:`Param`, JSON Schema), its request body (:class:`Body`), the
non-error answers it gives and the error statuses of its own handler. Statuses that follow from the
route's flags (401/403 from ``access``, 429/503 from ``heavy``, 413 from a body) are added by the
generator, so they are stated once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from .messages import HTTPError, Request, Response

if TYPE_CHECKING:
    from .api import Api

__all__ = ["Access", "Body", "CacheScope", "Handler", "Param", "Route", "Router", "Scoper"]

Access = Literal["public", "read", "admin"]
Handler = Callable[["Api", Request, dict[str, str]], Response]


class CacheScope(NamedTuple):
    """What a cached answer reads: the site, the first and last UTC partition dates of every range
    it queries (a comparison's included; ``first`` None: every partition up to ``last``), and the time
    zone its "today" is counted in."""

    site: str
    first: date | None
    last: date
    tz: str


#: A cached route's scope of one request, or None to answer that request uncached (relative to now).
Scoper = Callable[["Api", Request], CacheScope | None]


Schema = Mapping[str, Any]  # a JSON Schema (OpenAPI 3.1 dialect)


@dataclass(frozen=True, slots=True)
class Param:
    """One documented parameter: its name, where it goes, its JSON Schema and whether it is required.

    The schema states what the handler accepts (types, enums, bounds, formats), so a request that breaks
    it gets a 4xx; one that keeps it may still get a 400 for a rule JSON Schema cannot say (an end date
    before the start date).
    """

    name: str
    schema: Schema
    description: str = ""
    required: bool = False
    where: Literal["query", "path"] = "query"


@dataclass(frozen=True, slots=True)
class Body:
    """A request body: its JSON Schema, whether it may be left out, and its media type."""

    schema: Schema
    description: str = ""
    required: bool = True
    media_type: str = "application/json"


JSON: Final = "application/json"


@dataclass(frozen=True, slots=True)
class Route:
    """One route.

    Attributes:
        access: ``public`` (anyone), ``read`` (a login, an API key, or loopback before a password
            exists), ``admin`` (a login or an Admin key; closed until a password exists).
        ingestion: the ingestion endpoints: open CORS, never cached, never blocking.
        heavy: counted against ``max_concurrent_queries`` (429 when exceeded).
        cache_scope: for a cached route, what a request reads: its answers are cached per (path,
            query, lake fingerprint of that scope, erasures, the site's goals and segments, today);
            None from it: this request is not cached.
        params: the query and path parameters (every ``{name}`` of the pattern has a path Param).
        body: the request body, or None for a route that reads none.
        replies: the answers that are not errors: status → media types (``()``: no body).
        errors: the ``{"error": ...}`` statuses the handler itself can give.
        cache_key: for a cached route, what else its answer depends on (e.g. the saved funnel an id
            names: deleted or not, by any process); it may raise an :class:`HTTPError`.
    """

    method: str
    pattern: str
    handler: Handler
    summary: str
    access: Access = "public"
    ingestion: bool = False
    heavy: bool = False
    cache_scope: Scoper | None = None
    params: tuple[Param, ...] = ()
    tag: str = "ops"
    body: Body | None = None
    replies: Mapping[int, tuple[str, ...]] = field(default_factory=lambda: {200: (JSON,)})
    errors: tuple[int, ...] = ()
    cache_key: Callable[[Api, Request], object] | None = None

    @property
    def regex(self) -> re.Pattern[str]:
        return _compile(self.pattern)


_CACHE: dict[str, re.Pattern[str]] = {}


def _compile(pattern: str) -> re.Pattern[str]:
    compiled = _CACHE.get(pattern)
    if compiled is None:
        parts = re.split(r"(\{[a-z_]+\})", pattern)
        regex = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
        compiled = _CACHE[pattern] = re.compile(regex + r"\Z")
    return compiled


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)
        self._exact: dict[tuple[str, str], Route] = {}
        self._patterns: list[Route] = []
        for route in self.routes:
            if "{" in route.pattern:
                self._patterns.append(route)
            else:
                self._exact[(route.method, route.pattern)] = route
        self._paths = {r.pattern for r in self.routes if "{" not in r.pattern}

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for ``method path`` and its path parameters.

        Raises:
            HTTPError: 404 for an unknown path, 405 (with ``Allow``) for a known path and another method.
        """
        route = self._exact.get((method, path))
        if route is not None:
            return route, {}
        allowed = {m for (m, p) in self._exact if p == path}
        for route in () if path in self._paths else self._patterns:  # a literal path is no parameter
            found = route.regex.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            allowed.add(route.method)
        if allowed:
            if method == "HEAD" and "GET" in allowed:
                return self.match("GET", path)
            raise HTTPError(405, f"Method {method} not allowed.",
                            headers=[("Allow", ", ".join(sorted(allowed | {"OPTIONS"})))])
        raise HTTPError(404, "Not found.")

    def methods(self, path: str) -> set[str]:
        found = {m for (m, p) in self._exact if p == path}
        if path not in self._paths:
            found.update(r.method for r in self._patterns if r.regex.match(path))
        return found
