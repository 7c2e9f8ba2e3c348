"""Ingestion routes: ``POST /api/event`` (one event or a batch) and the ``GET /api/event`` pixel.

Order of checks (Mallard Metrics v0.2): body size (the adapter, 413) → JSON shape (400/422) → Origin
allowlist (403) → per-site and per-IP rate limits (429) → the pipeline (validation 400, bots accepted and
dropped with 202). A batch is all or nothing: 202 when every event was valid (``X-Mallard-Accepted``
counts those stored, bots excluded), otherwise 400 naming the first bad event and nothing is stored.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Final

from ..errors import InvalidEventError
from ..payload import RawEvent, from_query, parse_request
from ..tracker import ClientContext, Outcome
from .messages import HTTPError, Request, Response
from .routing import Route
from .security import client_context

if TYPE_CHECKING:
    from .api import Api

__all__ = ["ROUTES", "origin_allowed"]

PIXEL: Final = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
assert len(PIXEL) == 43


def origin_allowed(origin: str | None, allowed: frozenset[str]) -> bool:
    """Origin allowlist: the host of ``Origin`` equals an allowed site id, with any port."""
    if not allowed or not origin:
        return True
    host = origin.split("://", 1)[-1].split("/", 1)[0]
    if host in allowed:
        return True
    name, sep, port = host.rpartition(":")
    return bool(sep) and port.isdigit() and name in allowed


def _admit(api: Api, request: Request, raws: list[RawEvent], ctx: ClientContext) -> None:
    allowed = api.allowed_sites
    if allowed:
        if not origin_allowed(request.headers.get("origin"), allowed):
            raise HTTPError(403, "Origin not allowed.")
        for raw in raws:
            if isinstance(raw.site, str) and raw.site not in allowed:
                raise HTTPError(403, f"Site {raw.site!r} is not allowed (site_ids).")
    site_limiter, ip_limiter = api.site_limiter, api.ip_limiter
    if site_limiter.rate <= 0 and ip_limiter.rate <= 0:
        return
    for raw in raws:
        site_ok = site_limiter.allow(raw.site)
        ip_ok = ip_limiter.allow(ctx.ip or "unknown")
        if not (site_ok and ip_ok):
            api.count("mallard_rate_limit_rejections_total")
            raise HTTPError(429, "Rate limit exceeded. Slow down.", headers=[("Retry-After", "1")])


#: Refusals that are the server's state, not the event's fault: 503 with Retry-After (seconds).
_UNAVAILABLE: Final = {
    "buffer_full": ("The event buffer is full; retry later.", "1"),
    "storage_unavailable": ("Storage is unavailable (the spool cannot be written, e.g. the disk is "
                            "full); the event was not stored. Retry later.", "5"),
}


def _store(api: Api, raws: list[RawEvent], ctx: ClientContext,
           origins: list[int] | None = None) -> Response:
    """Ingest the events; ``origins`` maps each to its index in the array the client sent (a batch)."""
    outcomes = api.mallard.ingest(raws, ctx, all_or_nothing=True)
    accepted = 0
    refused: str | None = None
    invalid: tuple[int, Outcome] | None = None
    for index, outcome in enumerate(outcomes):  # one pass: counts, the first invalid event
        if outcome.accepted:
            accepted += 1
            continue
        reason = outcome.reason
        if reason in _UNAVAILABLE:
            refused = reason
        if outcome.error is not None and invalid is None:
            invalid = (index, outcome)
        if reason not in (None, "invalid", "not_stored"):
            api.count("mallard_events_dropped_total", reason=reason)
    if accepted:
        api.metrics.inc("mallard_events_ingested_total", accepted)
    if refused is not None:
        message, retry = _UNAVAILABLE[refused]
        raise HTTPError(503, message, headers=[("Retry-After", retry)])
    if invalid is not None:
        index, outcome = invalid
        assert outcome.error is not None
        where = f"event {origins[index]}: " if origins is not None else ""
        several = origins is not None or len(outcomes) > 1
        raise HTTPError(400, f"{where}{outcome.error.message}"
                        + (" (no event of the batch was stored)" if several else ""))
    return Response(202, [("X-Mallard-Accepted", str(accepted))] if len(outcomes) > 1 else [])


def post_event(api: Api, request: Request, params: dict[str, str]) -> Response:
    try:
        raws, origins = parse_request(request.body)
    except InvalidEventError as exc:
        if exc.code in _REFUSALS:
            api.count("mallard_ingest_refused_total", reason=exc.code)
        # As the reference: a missing field or a wrong type is 422, an empty or malformed body 400.
        missing = exc.code == "missing_field" and "Missing required field" in exc.message
        status = 422 if missing or exc.code == "invalid_type" else 400
        raise HTTPError(status, exc.message) from None
    ctx = client_context(request, api.settings)
    _admit(api, request, raws, ctx)
    return _store(api, raws, ctx, origins)


# Requests refused for the work they would cause (counted in /metrics).
_REFUSALS: Final = frozenset({"too_many_sites", "batch_too_large"})


def pixel(api: Api, request: Request, params: dict[str, str]) -> Response:
    """Always the GIF (rejections are silent, as in the reference), except for a missing d or u."""
    try:
        raws = from_query(request.query)
    except InvalidEventError as exc:
        if exc.code in _REFUSALS:
            api.count("mallard_ingest_refused_total", reason=exc.code)
        raise HTTPError(400, exc.message) from None
    ctx = client_context(request, api.settings)
    try:
        _admit(api, request, raws, ctx)
        _store(api, raws, ctx)
    except HTTPError:
        pass
    return Response(200, [("Content-Type", "image/gif"),
                          ("Cache-Control", "no-store, no-cache, must-revalidate")], PIXEL)


_EVENT_PARAMS: Final = {"d": "site id", "n": "event name (default pageview)", "u": "page URL",
                        "r": "referrer", "w": "viewport width"}

ROUTES: Final = (
    Route("POST", "/api/event", post_event, "Record one event, or a JSON array of up to 1000 events.",
          ingestion=True, tag="ingestion"),
    Route("GET", "/api/event", pixel, "Record a pageview from a 1x1 GIF pixel.", ingestion=True,
          params=_EVENT_PARAMS, tag="ingestion"),
)
