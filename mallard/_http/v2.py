"""Plausible's Stats API v2: ``POST /api/v2/query``, the query-object route (its parsing and rules are
:meth:`mallard.Queries.query_json`'s). Answers are cached per query body (keys sorted), except for ranges
counted back from this instant and custom comparison ranges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import orjson

from .._errors import InvalidQueryError
from .._queries.model import MAX_LIMIT as MAX_QUERY_LIMIT
from .._queries.periods import MAX_API_DAYS, PLAUSIBLE_PERIODS
from .._queries.registry import METRICS
from .messages import HTTPError, Request, Response, json_response
from .routing import Body, CacheScope, Route
from .schemas import SITE_ID

if TYPE_CHECKING:
    from .api import Api

__all__ = ["ROUTES", "V2_QUERY"]


def v2_scope(api: Api, request: Request) -> CacheScope | None:
    """What a v2 query reads, or None (not cached) for a body that is not a valid query (the route
    answers its error), a range counted back from this instant (``24h``, ``realtime``…) or a custom
    comparison range (which may lie anywhere)."""
    try:
        query = api.queries.parse_json(request.json(), max_days=MAX_API_DAYS)
    except (HTTPError, InvalidQueryError):
        return None
    rng, compared = query.date_range, query.include.comparisons
    if rng.instants is not None or (compared is not None and compared.mode == "custom"):
        return None
    first, last = rng.partition_dates()
    # previous_period and year_over_year read earlier dates: every partition up to the range's end
    return CacheScope(query.site_id, None if compared is not None else first, last, rng.tz)


def _v2_body(api: Api, request: Request) -> bytes:
    """The cache key's part for a v2 query: its body, keys sorted (the same query, the same key)."""
    return orjson.dumps(request.json(), option=orjson.OPT_SORT_KEYS)


def v2_query(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = request.json()
    if not isinstance(body, dict):
        raise HTTPError(400, "The query must be a JSON object with site_id, metrics and date_range.",
                        code="invalid_query")
    return json_response(api.queries.query_json(body, max_days=MAX_API_DAYS).to_json())


V2_QUERY: Final = {
    "type": "object", "additionalProperties": False, "required": ["site_id", "metrics"],
    "description": "A Plausible Stats API v2 query.",
    "properties": {
        "site_id": SITE_ID,
        "metrics": {"type": "array", "minItems": 1, "uniqueItems": True,
                    "items": {"type": "string", "enum": list(METRICS)}},
        "date_range": {"anyOf": [
            {"type": "string", "enum": list(PLAUSIBLE_PERIODS),
             "description": "A period as Plausible counts it (7d: the 7 days before today); any other "
                            "Nd (1-5000) or Nmo (1-100) works too."},
            {"type": "array", "minItems": 2, "maxItems": 2,
             "items": {"type": "string", "description": "Two YYYY-MM-DD dates (inclusive), or two ISO 8601 "
                                                        "datetimes with offsets (the end second included)"}}],
            "default": "30d"},
        "dimensions": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
        "filters": {"type": ["array", "string", "null"],
                    "description": "[operator, dimension, [values]], ['and'|'or', [filters]], "
                                   "['not', filter], a list of filters that must all hold, or a "
                                   "filter string (dim==value;dim!=value)."},
        "order_by": {"type": ["array", "null"], "items": {
            "type": "array", "minItems": 2, "maxItems": 2,
            "prefixItems": [{"type": "string"}, {"enum": ["asc", "desc"]}]}},
        "pagination": {"type": ["object", "null"], "properties": {
            "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_QUERY_LIMIT},
            "offset": {"type": "integer", "minimum": 0}}},
        "include": {"type": ["object", "null"], "additionalProperties": False, "properties": {
            "time_labels": {"type": "boolean", "description": "meta.time_labels: every bucket of the range "
                                                              "(needs a time dimension)."},
            "total_rows": {"type": "boolean", "description": "meta.total_rows: rows before pagination."},
            "imports": {"type": "boolean", "description": "meta.imports_included (always false: mallard "
                                                          "holds no imported data)."},
            "comparisons": {"type": ["object", "null"], "required": ["mode"], "additionalProperties": False,
                            "description": "Adds a comparison (dimensions, metrics, change) to each row.",
                            "properties": {
                                "mode": {"enum": ["previous_period", "year_over_year", "custom"]},
                                "date_range": {"type": "array", "minItems": 2, "maxItems": 2,
                                               "items": {"type": "string", "format": "date"}},
                                "match_day_of_week": {"type": "boolean"}}}}},
        "timezone": {"type": ["string", "null"], "description": "An IANA time zone (default UTC)."},
    },
}


ROUTES: Final = (
    Route("POST", "/api/v2/query", v2_query, "A Plausible Stats API v2 query.", access="read",
          heavy=True, tag="stats", body=Body(V2_QUERY), errors=(400,), cache_scope=v2_scope,
          cache_key=_v2_body),
)
