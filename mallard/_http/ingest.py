"""Ingestion routes: ``POST /api/event`` (one event or a batch) and the ``GET /api/event`` pixel.

Order of checks (Mallard Metrics v0.2): body size (the adapter, 413) → JSON shape (400/422) → Origin
allowlist (403) → per-site and per-IP rate limits (429) → the pipeline (validation 400, bots accepted and
dropped with 202). A batch is all or nothing: 202 when every event was valid (``X-Mallard-Accepted``
counts those stored, bots excluded), otherwise 400 naming the first bad event and nothing is stored.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Final

from .. import _drops as drops
from .._errors import InvalidEventError
from .._payload import MAX_BATCH, RawEvent, from_query, parse_request
from .._tracker import ClientContext, Outcome
from .messages import HTTPError, Request, Response, json_response
from .routing import Body, Param, Route
from .security import client_context

if TYPE_CHECKING:
    from .api import Api

__all__ = ["BATCH", "EVENT", "ROUTES", "origin_allowed"]

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
            raise HTTPError(403, "Origin not allowed.", code="origin_not_allowed")
        for raw in raws:
            if isinstance(raw.site, str) and raw.site not in allowed:
                raise HTTPError(403, f"Site {raw.site!r} is not allowed (site_ids).",
                                code="site_not_allowed")
    site_limiter, ip_limiter = api.site_limiter, api.ip_limiter
    if site_limiter.rate <= 0 and ip_limiter.rate <= 0:
        return
    for raw in raws:
        site_ok = site_limiter.allow(raw.site)
        ip_ok = ip_limiter.allow(ctx.ip or "unknown")
        if not (site_ok and ip_ok):
            api.count("mallard_rate_limit_rejections_total")
            raise HTTPError(429, "Rate limit exceeded. Slow down.", code="rate_limited",
                            headers=[("Retry-After", "1")])


#: Refusals that are the server's state, not the event's fault: 503 with Retry-After (seconds); the
#: reason is the answer's code.
_UNAVAILABLE: Final = {
    "buffer_full": ("The event buffer is full; retry later.", "1"),
    "storage_unavailable": ("Storage is unavailable (the spool cannot be written, e.g. the disk is "
                            "full); the event was not stored. Retry later.", "5"),
}


def _store(api: Api, raws: list[RawEvent], ctx: ClientContext,
           origins: list[int] | None = None, *, debug: bool = False) -> Response:
    """Ingest the events; ``origins`` maps each to its index in the array the client sent (a batch).
    The answer names the reasons of dropped events (``X-Mallard-Dropped``; with ``debug``, a JSON body
    explaining each: mallard/_drops.py)."""
    outcomes = api.mallard.ingest(raws, ctx, all_or_nothing=True)
    accepted = 0
    refused: str | None = None
    invalid: tuple[int, Outcome] | None = None
    dropped: list[tuple[int, str]] = []
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
            dropped.append((index if origins is None else origins[index], reason))
    if accepted:
        api.metrics.inc("mallard_events_ingested_total", accepted)
    if refused is not None:
        message, retry = _UNAVAILABLE[refused]
        raise HTTPError(503, message, code=refused, headers=[("Retry-After", retry)])
    if invalid is not None:
        index, outcome = invalid
        assert outcome.error is not None
        where = f"event {origins[index]}: " if origins is not None else ""
        several = origins is not None or len(outcomes) > 1
        raise InvalidEventError(f"{where}{outcome.error.message}"
                                + (" (no event of the batch was stored)" if several else ""),
                                code=outcome.error.code)
    headers = [("X-Mallard-Accepted", str(accepted))] if len(outcomes) > 1 else []
    if dropped:
        headers.append(("X-Mallard-Dropped", ", ".join(sorted({reason for _, reason in dropped}))))
    if not debug:
        return Response(202, headers)
    body = {"accepted": accepted, "dropped": [{"event": i, "reason": r, "why": drops.explain(r)}
                                              for i, r in dropped]}
    return json_response(body, 202, headers=headers)


def post_event(api: Api, request: Request, params: dict[str, str]) -> Response:
    debug = request.arg("debug")
    if debug not in (None, "0", "1"):
        raise HTTPError(400, "debug must be 0 or 1.", code="invalid_param")
    try:
        raws, origins = parse_request(request.body)
    except InvalidEventError as exc:  # answered by its code (422 for a body of the wrong shape)
        _count_refusal(api, exc)
        raise
    ctx = client_context(request, api.settings)
    _admit(api, request, raws, ctx)
    return _store(api, raws, ctx, origins, debug=debug == "1")


# Requests refused for the work they would cause (counted in /metrics).
_REFUSALS: Final = frozenset({"too_many_sites", "batch_too_large"})


def _count_refusal(api: Api, exc: InvalidEventError) -> None:
    if exc.code in _REFUSALS:
        api.count("mallard_ingest_refused_total", reason=exc.code)


def pixel(api: Api, request: Request, params: dict[str, str]) -> Response:
    """Always the GIF (rejections are silent, as in the reference), except for a missing d or u."""
    try:
        raws = from_query(request.query)
    except InvalidEventError as exc:  # a query string: a missing d or u is missing_param (400)
        _count_refusal(api, exc)
        raise
    ctx = client_context(request, api.settings)
    try:
        _admit(api, request, raws, ctx)
        _store(api, raws, ctx)
    except (HTTPError, InvalidEventError):
        pass
    return Response(200, [("Content-Type", "image/gif"),
                          ("Cache-Control", "no-store, no-cache, must-revalidate")], PIXEL)


_UINT32: Final = 2**32 - 1
_TEXT: Final = {"type": "string", "minLength": 1}


def _first_of(keys: tuple[str, ...], schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    """payload's rule for a field with several keys: the first key whose value is not null is read (and
    must match ``schema``); the later keys are then ignored, whatever they hold."""
    branches: list[dict[str, Any]] = [
        {"required": [key], "properties": {**{k: {"type": "null"} for k in keys[:i]},
                                           key: {"not": {"type": "null"}, **schema}}}
        for i, key in enumerate(keys)]
    if not required:
        branches.append({"properties": {k: {"type": "null"} for k in keys}})
    return {"anyOf": branches}


_FIELDS: Final = (  # keys (read in this order), schema of the value read, required, description
    (("d", "domain"), _TEXT, True, "Site id ('domain' may list several, separated by commas)."),
    (("n", "name"), _TEXT, True, "Event name ('pageview' for a page view)."),
    (("u", "url"), _TEXT, True, "Page URL."),
    (("r", "referrer"), {"type": "string"}, False, "Referrer URL."),
    (("w", "screen_width"), {"type": "integer", "minimum": 0, "maximum": _UINT32}, False,
     "Screen width in pixels."),
    (("p", "props", "m", "meta"), {"type": ["object", "string"]}, False,
     "Custom properties: an object, or a string holding one as JSON."),
)

EVENT: Final = {
    "type": "object",
    "description": "One event, with Mallard Metrics' short keys or Plausible's keys. Where a field has "
                   "several keys the first one that is not null is read; unknown keys are ignored.",
    "properties": {
        **{key: {"description": text} for keys, _, _, text in _FIELDS for key in keys},
        "ra": {"description": "Revenue amount (a number or a decimal string; other values are dropped)."},
        "rc": {"description": "Revenue currency, a 3-letter ISO 4217 code (other values are dropped)."},
        "revenue": {"description": 'Plausible revenue {"amount": ..., "currency": "EUR"}, or a string '
                                   "holding it as JSON (other values are ignored)."},
        "$": {"description": "Plausible revenue (short key)."},
    },
    "allOf": [_first_of(keys, schema, required=required) for keys, schema, required, _ in _FIELDS],
}
BATCH: Final = {"type": "array", "items": EVENT, "minItems": 1, "maxItems": MAX_BATCH,
                "description": f"Up to {MAX_BATCH} events, stored all or nothing."}

ROUTES: Final = (
    Route("POST", "/api/event", post_event, "Record one event, or a JSON array of up to 1000 events. "
          "Dropped events (a bot, a site not allowed, an opt-out) are answered 202 too, with their reasons "
          "in X-Mallard-Dropped.", ingestion=True, tag="ingestion", body=Body({"oneOf": [EVENT, BATCH]}),
          params=(Param("debug", {"type": "string", "enum": ["0", "1"]},
                        "1: answer a JSON body {accepted, dropped: [{event, reason, why}]}."),),
          replies={202: ()}, errors=(400, 403, 422, 429, 503)),
    Route("GET", "/api/event", pixel, "Record a pageview from a 1x1 GIF pixel.", ingestion=True,
          params=(Param("d", _TEXT, "Site id.", required=True),
                  Param("u", _TEXT, "Page URL.", required=True),
                  Param("n", _TEXT, "Event name (default pageview)."),
                  Param("r", {"type": "string"}, "Referrer."),
                  Param("w", {"type": "integer", "minimum": 0, "maximum": _UINT32}, "Screen width.")),
          tag="ingestion", replies={200: ("image/gif",)}, errors=(400,)),
)
