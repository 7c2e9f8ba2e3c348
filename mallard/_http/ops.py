"""Operational routes and static assets: health probes, ``/metrics``, robots.txt, security.txt, the OpenAPI
document, the tracking script and the dashboard files (served by :mod:`.assets`).
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from .assets import asset
from .messages import HTTPError, Request, Response, json_response, text_response
from .routing import Param, Route
from .shares import embed_headers

if TYPE_CHECKING:
    from .api import Api

__all__ = ["READINESS", "ROUTES"]

log = logging.getLogger("mallard.http")

ROBOTS: Final = "User-agent: *\nDisallow: /api/\nDisallow: /health\nDisallow: /metrics\n"
SECURITY_TXT: Final = ("Contact: https://github.com/mallard-metrics/mallard/security/advisories/new\n"
                       "Expires: 2027-12-31T00:00:00.000Z\nPreferred-Languages: en\n")


def health(api: Api, request: Request, params: dict[str, str]) -> Response:
    return text_response("ok")


def _can_ingest(api: Api) -> list[str]:
    """A start that failed, a spool that cannot be written (a full disk), a full buffer."""
    api.mallard.start_degraded()
    return api.mallard.problems()


def _can_query(api: Api) -> list[str]:
    try:
        api.mallard.store.ping()
    except Exception as exc:
        log.warning("readiness: DuckDB cannot run a query: %s", exc)
        return [f"DuckDB cannot run a query ({type(exc).__name__})"]
    return []


#: What readiness requires of this process, each check returning the reasons it is not met.
#: Readiness is about this process's ability to ingest and answer, never about every lake file being
#: readable (unreadable files are quarantined by the queries that meet them) nor about a flush or a
#: recovery that is failing and retried (those are warnings in /health/detailed).
READINESS: Final[tuple[Callable[[Api], list[str]], ...]] = (_can_ingest, _can_query)


def ready(api: Api, request: Request, params: dict[str, str]) -> Response:
    """200 ``ready``, or 503 ``{"error": "not ready", "code": "not_ready", "reasons": [...]}``."""
    reasons = [reason for check in READINESS for reason in check(api)]
    if reasons:
        return json_response({"error": "not ready", "code": "not_ready", "reasons": reasons}, 503)
    return text_response("ready")


def detailed(api: Api, request: Request, params: dict[str, str]) -> Response:
    from .. import __version__

    stats = api.mallard.stats()
    s = api.settings
    body: dict[str, Any] = {
        "status": "ok", "version": __version__,
        "buffered_events": stats.buffer.pending, "buffer_empty": stats.buffer.pending == 0,
        "dropped_events": stats.buffer.dropped_full,
        "auth_configured": api.auth.password_configured(),
        "geoip_loaded": api.mallard.geoip_loaded,
        "geoip_source": api.mallard.geoip_source,
        "behavioral_extension_loaded": False,
        "behavioral_available": True,  # funnels, sequences, retention, flow: plain SQL, no extension
        "filter_bots": s.filter_bots, "cache_entries": len(api.cache), "cache_empty": len(api.cache) == 0,
        "trust_proxy_headers": s.trust_proxy_headers,
        "session_window": f"{s.session_window_minutes} minutes",
        "visitor_salt_rotation_days": s.visitor_salt_rotation_days,
        "last_flush_error": stats.buffer.last_error,
        "problems": api.mallard.problems(), "warnings": api.mallard.warnings(),
    }
    if body["problems"]:
        body["status"] = "unavailable"
    elif body["warnings"]:
        body["status"] = "degraded"
    count, files = api.mallard.store.quarantined()
    body["quarantined_file_count"] = count
    if api.may_read(request):  # the paths name sites: for those who may read their stats only
        body["quarantined_files"] = [f.to_dict() for f in files]
    return json_response(body)


def metrics(api: Api, request: Request, params: dict[str, str]) -> Response:
    token = api.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return text_response("Unauthorized", 401)
    body, content_type = api.metrics.render()
    return Response(200, [("Content-Type", content_type)], body)


def robots(api: Api, request: Request, params: dict[str, str]) -> Response:
    return text_response(ROBOTS)


def security_txt(api: Api, request: Request, params: dict[str, str]) -> Response:
    return text_response(SECURITY_TXT)


def openapi(api: Api, request: Request, params: dict[str, str]) -> Response:
    return json_response(api.openapi())


#: The extensions of Plausible's script variant names (``script.hash.outbound-links.js``): one
#: mallard.js serves them all and reads its features from its own file name.
VARIANT_EXTENSIONS: Final = frozenset({
    "compat", "exclusions", "file-downloads", "hash", "local", "manual", "outbound-links",
    "pageview-props", "revenue", "tagged-events"})


#: The id in Plausible's per-site script name (``js/pa-<id>.js``): a nanoid, 21 URL-safe characters.
SCRIPT_ID: Final = re.compile(r"[A-Za-z0-9_-]{21}")


def tracker_script(api: Api, request: Request, params: dict[str, str]) -> Response:
    variant = params.get("variant")
    if variant is not None and not set(variant.split(".")) <= VARIANT_EXTENSIONS:
        raise HTTPError(404, f"No script variant {variant!r}; the extensions are "
                        f"{', '.join(sorted(VARIANT_EXTENSIONS))}.")
    script_id = params.get("id")
    if script_id is not None and not SCRIPT_ID.fullmatch(script_id):
        raise HTTPError(404, "No such script: a Plausible site script is js/pa-<id>.js, the id 21 letters, "
                        "digits, '_' or '-'.")
    return asset(request, "mallard.js", extra=(("Access-Control-Allow-Origin", "*"),))


def dashboard_index(api: Api, request: Request, params: dict[str, str]) -> Response:
    return asset(request, "dashboard/index.html", extra=embed_headers(api, request))


def _dashboard_files(folder: str) -> Callable[[Api, Request, dict[str, str]], Response]:
    """The handler serving the files of one folder of the dashboard (an HTML page opened with a shared
    link's secret may be framed by the origins of ``embed_origins``)."""
    def handler(api: Api, request: Request, params: dict[str, str]) -> Response:
        extra = embed_headers(api, request) if params["file"].endswith(".html") else ()
        return asset(request, folder + params["file"], extra=extra)
    return handler


_TEXT: Final = {200: ("text/plain",)}
_ASSET: Final = {200: ("*/*",), 304: ()}  # 304 when If-None-Match names the current ETag
_FILE: Final = Param("file", {"type": "string", "minLength": 1}, "A file name.", required=True,
                     where="path")
_VARIANT: Final = Param("variant", {"type": "string", "minLength": 1}, "Extensions separated by dots, "
                        f"each one of {', '.join(sorted(VARIANT_EXTENSIONS))}.", required=True,
                        where="path")
_SCRIPT_ID: Final = Param("id", {"type": "string", "pattern": f"^{SCRIPT_ID.pattern}$"}, "The id of "
                          "Plausible's site script; every id serves the same script.", required=True,
                          where="path")
_SCRIPT: Final = {200: ("text/javascript",), 304: ()}

ROUTES: Final = (
    Route("GET", "/health", health, "Liveness probe: always `ok`.", replies=_TEXT),
    Route("GET", "/health/ready", ready, "Readiness probe: 200 `ready` once this process runs and "
          "can query; else 503 with the reasons.",
          replies={200: ("text/plain",), 503: ("application/json",)}),
    Route("GET", "/health/detailed", detailed, "Process state as JSON."),
    Route("GET", "/metrics", metrics, "Prometheus metrics of every worker process (with "
          "`Authorization: Bearer <metrics_token>` when that setting is set).",
          replies={200: ("text/plain",), 401: ("text/plain",)}),
    Route("GET", "/robots.txt", robots, "Keeps crawlers off the API.", replies=_TEXT),
    Route("GET", "/.well-known/security.txt", security_txt, "Security contact.", replies=_TEXT),
    Route("GET", "/api/openapi.json", openapi, "This API as an OpenAPI 3.1 document."),
    Route("GET", "/mallard.js", tracker_script, "The tracking script.", tag="ingestion",
          replies={200: ("text/javascript",), 304: ()}),
    Route("GET", "/js/script.js", tracker_script, "The tracking script (alias).", tag="ingestion",
          replies=_SCRIPT),
    Route("GET", "/js/plausible.js", tracker_script, "The tracking script (Plausible's legacy name).",
          tag="ingestion", replies=_SCRIPT),
    Route("GET", "/js/script.{variant}.js", tracker_script, "The tracking script under a Plausible "
          "variant name; the features follow the name.", tag="ingestion", params=(_VARIANT,),
          replies=_SCRIPT, errors=(404,)),
    Route("GET", "/js/plausible.{variant}.js", tracker_script, "The tracking script under a Plausible "
          "legacy variant name; the features follow the name.", tag="ingestion", params=(_VARIANT,),
          replies=_SCRIPT, errors=(404,)),
    Route("GET", "/js/pa-{id}.js", tracker_script, "The tracking script under the name of Plausible's "
          "per-site snippet; the features follow `plausible.init()`.", tag="ingestion", params=(_SCRIPT_ID,),
          replies=_SCRIPT, errors=(404,)),
    Route("GET", "/", dashboard_index, "The dashboard.", tag="dashboard",
          replies={200: ("text/html",), 304: ()}),
    Route("GET", "/{file}", _dashboard_files("dashboard/"), "A dashboard asset.", tag="dashboard",
          params=(_FILE,), replies=_ASSET, errors=(404,)),
    Route("GET", "/ui/{file}", _dashboard_files("dashboard/ui/"), "A module of the dashboard.",
          tag="dashboard", params=(_FILE,), replies=_ASSET, errors=(404,)),
    Route("GET", "/vendor/{file}", _dashboard_files("dashboard/vendor/"), "A vendored dashboard module.",
          tag="dashboard", params=(_FILE,), replies=_ASSET, errors=(404,)),
)
