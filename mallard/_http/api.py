"""The framework-neutral HTTP layer: one :class:`Api` per :class:`mallard.Mallard`.

``Api.handle(request) -> Response`` does routing, authentication, CORS, the heavy-query limit, the
query cache, error mapping and security headers, in that order, for every adapter alike. It never
imports a web framework and builds no SQL: handlers call the core.

Every exception a route raises is answered by :func:`mallard._http.errors.answer`, whose table is the only
place where exceptions become status codes: ``{"error": <message>, "code": <code>}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import admin, behaviour, funnels, info, ingest, ops, shares, sites, stats, v1, v2, view
from .cache import QueryCache
from .errors import answer, refusal
from .limits import ConcurrencyLimit, RateLimiter
from .messages import HTTPError, Request, Response
from .parts import Parts
from .routing import CacheScope, Route, Router
from .security import (
    apply_security_headers,
    cors_headers,
    csrf_ok,
    from_this_machine,
    open_mode_allowed,
    own_origin,
    request_id,
)

if TYPE_CHECKING:
    from .._app import Mallard
    from .._auth import Auth
    from .._queries import Queries
    from .._settings import Settings

__all__ = ["Api"]


ROUTES: tuple[Route, ...] = (*ingest.ROUTES, *stats.ROUTES, *view.ROUTES, *v2.ROUTES, *behaviour.ROUTES,
                             *info.ROUTES, *v1.ROUTES, *admin.ROUTES, *sites.ROUTES, *funnels.ROUTES,
                             *shares.ROUTES, *ops.ROUTES)


class Api:
    """mallard's HTTP API over one :class:`mallard.Mallard`.

    Adapters take the instance's own with :meth:`for_mallard`; building one directly gives a second
    query cache and set of limits (tests do, to inject a clock).

    Args:
        mallard: the instance to serve.
        clock: monotonic seconds for the query cache (injected by tests).
    """

    @classmethod
    def for_mallard(cls, mallard: Mallard) -> Api:
        """The one Api over ``mallard``, built on first use and closed by ``mallard.close()``: every
        adapter over one instance shares its query cache, rate limits and concurrency limit."""
        return mallard.extension(cls, cls)

    def __init__(self, mallard: Mallard, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.mallard = mallard
        self.settings: Settings = mallard.settings
        s = self.settings
        self.router = Router(ROUTES)
        self.cache = QueryCache(s.cache_ttl_secs, s.cache_max_entries, stale=s.cache_stale_secs,
                                clock=clock,
                                on_evict=lambda n: self.count("mallard_cache_evictions_total", n))
        self.heavy = ConcurrencyLimit(s.max_concurrent_queries)
        self.parts = Parts(mallard.store.time_limit, s.query_timeout_secs)
        self.site_limiter = RateLimiter(s.rate_limit_per_site, max_keys=s.max_tracked_keys)
        self.ip_limiter = RateLimiter(s.rate_limit_per_ip, max_keys=s.max_tracked_keys)
        self.max_body_bytes = s.max_body_bytes
        self.allowed_sites = frozenset(s.site_ids)
        self.metrics = mallard.metrics
        self.metrics.set_gauge_source("mallard_cache_entries", lambda: len(self.cache))
        self._blocking: dict[tuple[str, str], bool] = {}
        self._bare: dict[tuple[int, str, bool, bool], tuple[tuple[str, str], ...]] = {}

    # -- shared state ------------------------------------------------------------------------------
    @property
    def queries(self) -> Queries:
        return self.mallard.queries

    @property
    def auth(self) -> Auth:
        return self.mallard.auth

    def count(self, name: str, amount: int = 1, **labels: str | None) -> None:
        self.metrics.inc(name, amount, **{k: v for k, v in labels.items() if v is not None})

    def is_blocking(self, method: str, path: str) -> bool:
        """Whether handling may block (queries, password hashing): adapters on an event loop run those
        in a thread; ingestion and static files are answered inline."""
        known = self._blocking.get((method, path))
        if known is not None:
            return known
        try:
            route, _ = self.router.match(method, path)
        except HTTPError:
            return False
        blocking = not (route.ingestion or route.tag in ("dashboard",) or route.pattern in (
            "/health", "/robots.txt", "/.well-known/security.txt"))
        if len(self._blocking) < 1024:  # paths are few; the bound keeps junk paths from growing it
            self._blocking[(method, path)] = blocking
        return blocking

    # -- credentials -------------------------------------------------------------------------------
    def principal(self, request: Request) -> tuple[str, str] | None:
        """``("session", "Admin")`` or ``("key", scope)`` for valid credentials, else None."""
        token = request.cookie(admin.COOKIE)
        if token and self.auth.check_session(token):
            return "session", "Admin"
        key = None
        authorization = request.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            key = authorization[7:].strip()
        key = key or request.headers.get("x-api-key")
        if key:
            scope = self.auth.check_key(key)
            if scope is not None:
                return "key", str(scope)
        return None

    def may_read(self, request: Request) -> bool:
        """Whether the request may read stats (a login, an API key, or open mode's rules)."""
        if not self.auth.password_configured():
            return open_mode_allowed(request)
        return self.principal(request) is not None

    def _authorize(self, route: Route, request: Request) -> None:
        if route.access == "public":
            return
        configured = self.auth.password_configured()
        who = self.principal(request) if configured else None
        if who is None and not (route.access == "read" and not configured
                                and open_mode_allowed(request)):
            secret = shares.secret_of(request)
            if secret is not None:
                shares.authorize(self, route, request, secret)
                return
        if route.access == "read":
            if not configured:
                if open_mode_allowed(request):
                    return
                if from_this_machine(request):
                    raise HTTPError(403, admin.OPEN_MODE_REFUSED, code="open_mode_refused")
                raise HTTPError(401, "No admin password is set, so stats are readable only from this "
                                     "machine. Set one with `mallard password`.", code="not_configured")
            if who is None:
                raise HTTPError(401, "Authentication required: log in or send an API key.")
            return
        if not configured:
            raise HTTPError(401, "No admin password configured. Use /api/auth/setup first.",
                            code="not_configured")
        if who is None:
            raise HTTPError(401, "Authentication required: log in or send an Admin API key.")
        kind, scope = who
        if scope != "Admin":
            raise HTTPError(403, "This API key is read-only; an Admin key is required.",
                            code="admin_required")
        if kind == "session" and request.method not in ("GET", "HEAD"):
            allowed = [o for o in (self.settings.dashboard_origin, own_origin(request)) if o]
            if not csrf_ok(request, allowed):
                raise HTTPError(403, "Cross-site request refused (Origin does not match).",
                                code="cross_site_refused")

    # -- handling ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """Answer one request; never raises."""
        started = time.perf_counter()
        rid = request_id(request)
        route: Route | None = None
        try:
            if request.method == "OPTIONS":
                response = self._preflight(request)
            else:
                route, params = self.router.match(request.method, request.path)
                response = self._dispatch(route, request, params)
        except Exception as exc:  # every route's errors, answered by the one table (errors.py)
            response = answer(exc, f"{request.method} {route.pattern if route else '(unrouted)'}")
        if route is not None and route.ingestion and not response.headers and not response.body:
            # The ingestion 202 (most responses by far): its headers depend on nothing but these, so
            # they are worked out once by _finish and reused.
            key = (response.status, request.method, bool(request.headers.get("origin")),
                   request.scheme == "https")
            tail = self._bare.get(key)
            if tail is None:
                bare = Response(response.status)
                self._finish(bare, request, route, "")
                tail = self._bare[key] = tuple(h for h in bare.headers if h[0] != "X-Request-ID")
            response.headers = [*tail, ("X-Request-ID", rid)]
        else:
            self._finish(response, request, route, rid)
        self.metrics.record_request(response.status, time.perf_counter() - started)
        return response

    def _finish(self, response: Response, request: Request, route: Route | None, rid: str) -> None:
        """CORS, Content-Length, HEAD and the security headers of an answer."""
        if request.method != "OPTIONS" and route is not None and request.headers.get("origin") \
                and (not response.headers or response.header("Access-Control-Allow-Origin") is None):
            response.headers.extend(cors_headers(request, self.settings, ingestion=route.ingestion))
        if response.status not in (204, 304):
            response.headers.append(("Content-Length", str(len(response.body))))
        if request.method == "HEAD":
            response.body = b""
        apply_security_headers(response, rid, https=request.scheme == "https")

    def refuse(self, status: int, message: str, headers: Sequence[tuple[str, str]] = (), *,
               code: str | None = None) -> Response:
        """An error answered before a :class:`Request` could be built (a body over the limit); its
        code is ``code`` or its status's (413: ``payload_too_large``)."""
        response = refusal(status, message, headers, code=code)
        response.headers.append(("Content-Length", str(len(response.body))))
        apply_security_headers(response, request_id(Request("GET", "/")))
        self.metrics.record_request(status, 0.0)
        return response

    def refuse_slow_body(self) -> Response:
        """408 for a client whose body did not arrive within ``body_timeout_secs``; the connection
        is closed, so a stalled client holds nothing."""
        self.count("mallard_http_refusals_total", reason="body_timeout")
        return self.refuse(408, f"Request body not received within {self.settings.body_timeout_secs:g} s.",
                           [("Connection", "close")], code="body_timeout")

    def refuse_busy(self) -> Response:
        """503 for a request past the server's connection limit (``limit_concurrency``)."""
        self.count("mallard_http_refusals_total", reason="concurrency_limit")
        return self.refuse(503, "Server busy: too many open connections. Retry in a moment.",
                           [("Retry-After", "1"), ("Connection", "close")], code="server_busy")

    def _preflight(self, request: Request) -> Response:
        methods = self.router.methods(request.path)
        if not methods:
            raise HTTPError(404, "Not found.")
        ingestion = request.path == "/api/event"
        return Response(204, list(cors_headers(request, self.settings, ingestion=ingestion,
                                               preflight=True)))

    def _dispatch(self, route: Route, request: Request, params: dict[str, str]) -> Response:
        self._authorize(route, request)
        # A cached route's answer depends only on what its scope and key name (POST /api/v2/query
        # keys on its body); HEAD is answered uncached, as before.
        if route.cache_scope is not None and request.method == route.method and self.cache.enabled:
            scope = route.cache_scope(self, request)
            if scope is not None:
                return self._cached(route, request, params, scope)
        return self._run(route, request, params)

    def _run(self, route: Route, request: Request, params: dict[str, str]) -> Response:
        if not route.heavy:
            return route.handler(self, request, params)
        if not self.heavy.try_enter():
            raise HTTPError(429, "Too many concurrent queries. Please retry in a moment.",
                            code="too_many_queries", headers=[("Retry-After", "1")])
        try:
            with self.mallard.store.time_limit(self.settings.query_timeout_secs):
                return route.handler(self, request, params)
        finally:
            self.heavy.leave()

    def _cached(self, route: Route, request: Request, params: dict[str, str],
                scope: CacheScope) -> Response:
        """Answer from the query cache (``X-Mallard-Cache: hit``), from an expired entry while one
        background refresh recomputes it (``stale``), or by running the query (``miss``)."""
        site = scope.site
        store = self.mallard.store
        # Erasures recorded by any process are part of the key: one that deleted no lake file (the
        # events were still in a worker's buffer) must not leave that worker's answers reachable.
        erasures = tuple(t.at for t in store.tombstones.all() if t.site_id == site)
        # So are the site's goals and segments, as stored in state/ (a change by any process, or by
        # `mallard goals`, is a miss in every worker at once): they decide event:goal, conversion
        # rates, revenue and segment filters.
        goals = self.queries.goals.version(site)
        key = (route.pattern, tuple(sorted(params.items())),
               tuple(sorted((k, tuple(v)) for k, v in request.query.items() if k != shares.PARAM)),
               route.cache_key(self, request) if route.cache_key is not None else None,
               store.fingerprint(site, scope.first, scope.last), erasures, goals,
               self.queries.today(scope.tz))
        state, hit = self.cache.lookup(key)
        if hit is not None:
            self.count("mallard_cache_stale_total" if state == "stale" else "mallard_cache_hits_total")
            if state == "stale":
                self.cache.refresh(key, site, lambda: self._refresh(route, request, params, site, goals))
            status, headers, body = hit
            return Response(status, [*headers, ("X-Mallard-Cache", state)], body)
        self.count("mallard_cache_misses_total")
        epoch = self.cache.epoch(site)
        response, entry = self._compute(route, request, params, site, goals)
        if entry is not None:
            self.cache.put(key, site, entry, epoch=epoch)
        response.headers.append(("X-Mallard-Cache", "miss"))
        return response

    def _compute(self, route: Route, request: Request, params: dict[str, str], site: str,
                 goals: str) -> tuple[Response, tuple[Any, ...] | None]:
        """Run the route, and the cache entry of its answer (None when it must not be kept).
        ``goals`` is the version of the site's goals that the entry's key holds."""
        excluded = self.mallard.store.excluded()
        response = self._run(route, request, params)
        # An answer that left out unreadable files is not kept: the files it skipped may still be
        # being written (same names, so the same fingerprint once complete). Nor one computed while
        # the goals changed: it may hold the new ones, and the key the old ones, which come back when
        # the change is undone.
        if response.status != 200 or self.mallard.store.excluded() != excluded \
                or self.queries.goals.version(site) != goals:
            return response, None
        return response, (response.status, tuple(response.headers), response.body)

    def _refresh(self, route: Route, request: Request, params: dict[str, str], site: str,
                 goals: str) -> tuple[Any, ...] | None:
        try:
            return self._compute(route, request, params, site, goals)[1]
        except Exception:
            self.count("mallard_cache_refresh_failures_total")
            raise

    def close(self, timeout: float | None = None) -> bool:
        """Stop background refreshes of the query cache (waiting for running ones at most ``timeout``
        seconds, by default the query time limit), then the view workers. Returns whether none is left
        running."""
        idle = self.cache.close(self.settings.query_timeout_secs + 1 if timeout is None else timeout)
        self.parts.close()
        return idle

    # -- OpenAPI -----------------------------------------------------------------------------------
    def openapi(self) -> dict[str, Any]:
        from .openapi import document

        return document(self.router.routes)
