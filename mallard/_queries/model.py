"""The query model: one :class:`Query` (site, date range, metrics, dimensions, filters, order, page)
behind every report, and :func:`parse_query` for Plausible's Stats API v2 request body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from .._errors import InvalidEventError, InvalidQueryError
from .._events import validate_site_id
from . import filters as _filters
from .include import Include, parse_include
from .periods import DateRange, plausible_range
from .registry import TIME_DIMENSIONS, Dimension, dimension, metric
from .vocabulary import Vocabulary

MAX_LIMIT: Final = 10_000
Direction = Literal["asc", "desc"]


@dataclass(frozen=True, slots=True)
class Query:
    """A validated, normalised analytics question."""

    site_id: str
    date_range: DateRange
    metrics: tuple[str, ...] = ("visitors",)
    dimensions: tuple[str, ...] = ()
    filters: _filters.Filter | None = None
    order_by: tuple[tuple[str, Direction], ...] = ()
    limit: int | None = None
    offset: int = 0
    include: Include = Include()  # the v2 body's include options
    vocabulary: Vocabulary = "mallard"  # the values dimensions report (vocabulary.py)
    #: a time series reports every bucket of the range, empty ones too (Plausible's v2 leaves them out;
    #: ``include.time_labels`` lists them)
    empty_buckets: bool = True
    #: dimensions bound to site data (event:goal with the site's goals, queries/goals.py): they
    #: replace the registry's definition of the same name when the query is planned
    bound: tuple[Dimension, ...] = ()

    @property
    def time_dimension(self) -> str | None:
        return next((d for d in self.dimensions if d in TIME_DIMENSIONS), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "metrics": list(self.metrics),
            "date_range": self.date_range.to_json(),
            "timezone": self.date_range.tz,
            "dimensions": list(self.dimensions),
            "filters": [] if self.filters is None else [self.filters.to_json()],
            "order_by": [list(o) for o in self.order_by],
            "pagination": {"limit": self.limit, "offset": self.offset},
            **({"include": self.include.to_json()} if self.include != Include() else {}),
        }


def check_option(value: object, name: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices`` (``""`` or None: the first, the default), else raise
    InvalidQueryError ``invalid_<name>``."""
    if value in ("", None):
        return choices[0]
    if isinstance(value, str) and value in choices:
        return value
    allowed = " or ".join(repr(c) for c in choices)
    raise InvalidQueryError(f"{name} must be {allowed}, not {str(value)[:40]!r}.", code=f"invalid_{name}")


def check_site(site_id: object) -> str:
    try:
        return validate_site_id(site_id)
    except InvalidEventError as exc:
        raise InvalidQueryError(exc.message, code="invalid_site_id") from None


def build(site_id: object, date_range: DateRange, *, metrics: Sequence[str] = ("visitors",),
          dimensions: Sequence[str] = (), filters: _filters.FilterInput = None,
          order_by: Sequence[Sequence[str]] | None = None, limit: int | None = None,
          offset: int = 0) -> Query:
    """A validated :class:`Query` (names resolved, filters parsed, order checked)."""
    site = check_site(site_id)
    if isinstance(metrics, str) or not metrics:
        raise InvalidQueryError("metrics must be a non-empty list of metric names.",
                                code="invalid_metric")
    for name in metrics:
        metric(name)
    if len(set(metrics)) != len(metrics):
        raise InvalidQueryError("metrics must not repeat.", code="invalid_metric")
    dims: list[str] = []
    for name in dimensions:
        if name == "time":
            name = "time:hour" if date_range.days <= 2 else "time:day"
        dims.append(name if name in TIME_DIMENSIONS else dimension(name).name)
    if len(set(dims)) != len(dims):
        raise InvalidQueryError("dimensions must not repeat.", code="invalid_dimension")
    if "percentage" in metrics and not dims:
        raise InvalidQueryError("The percentage metric needs a dimension: it is each row's share of "
                                "the query's visitors.", code="invalid_metric")
    if sum(d in TIME_DIMENSIONS for d in dims) > 1:
        raise InvalidQueryError("At most one time dimension is allowed.", code="invalid_dimension")
    tree = filters if isinstance(filters, (_filters.Condition, _filters.Logic, _filters.Not,
                                           _filters.Behaviour)) \
        else (_filters.parse_string(filters) if isinstance(filters, str) else _filters.parse(filters))
    orders: list[tuple[str, Direction]] = []
    for item in order_by or ():
        if not isinstance(item, (list, tuple)) or len(item) != 2 or item[1] not in ("asc", "desc"):
            raise InvalidQueryError("order_by entries are [name, 'asc'|'desc'].",
                                    code="invalid_order")
        if item[0] not in metrics and item[0] not in dims:
            raise InvalidQueryError(f"Cannot order by {item[0]!r}: it is not a metric or "
                                    "dimension of the query.", code="invalid_order")
        orders.append((item[0], "asc" if item[1] == "asc" else "desc"))
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or not 1 <= limit <= MAX_LIMIT):
        raise InvalidQueryError(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidQueryError("offset must be a non-negative integer", code="invalid_limit")
    return Query(site, date_range, tuple(metrics), tuple(dims), tree, tuple(orders), limit, offset)


def parse_query(body: object, *, today: date, tz: str, first_day: date | None,
                max_days: int | None = None, now: datetime | None = None) -> Query:
    """A :class:`Query` from a Plausible-Stats-API-v2-shaped mapping.

    Keys: ``site_id``, ``metrics``, ``date_range`` (a period name as Plausible counts it, or a
    ``[start, end]`` pair of dates or datetimes: :func:`~mallard._queries.periods.plausible_range`),
    ``dimensions``, ``filters``, ``order_by``, ``pagination`` ``{limit, offset}``, ``include``
    (:mod:`~mallard._queries.include`), ``timezone``. ``now`` (aware) is the clock; without it, the
    start of ``today``.
    """
    if not isinstance(body, Mapping):
        raise InvalidQueryError("The query must be a JSON object.", code="invalid_query")
    known = {"site_id", "metrics", "date_range", "dimensions", "filters", "order_by",
             "pagination", "include", "timezone"}
    unknown = set(body) - known
    if unknown:
        raise InvalidQueryError(f"Unknown query key(s): {', '.join(sorted(unknown))}. "
                                f"Valid keys: {', '.join(sorted(known))}.", code="invalid_query")
    zone = body.get("timezone")
    if zone is None or zone == "":
        zone = tz
    elif not isinstance(zone, str):
        raise InvalidQueryError("timezone must be a string.", code="invalid_query")
    _check_zone(zone)
    if now is None:
        now = datetime.combine(today, time(), ZoneInfo(zone))
    date_range = plausible_range(body.get("date_range", "30d"), now=now, tz=zone, first_day=first_day,
                                 max_days=max_days)
    metrics = body.get("metrics")
    dims = body.get("dimensions", [])
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise InvalidQueryError("metrics must be a non-empty list of metric names.",
                                code="invalid_metric")
    if not isinstance(dims, list) or not all(isinstance(d, str) for d in dims):
        raise InvalidQueryError("dimensions must be a list of dimension names.",
                                code="invalid_dimension")
    page = body.get("pagination")
    if page is None:
        page = {}
    elif not isinstance(page, Mapping):
        raise InvalidQueryError("pagination must be an object {limit, offset}.",
                                code="invalid_limit")
    order_by = body.get("order_by")
    if order_by is not None and not isinstance(order_by, list):
        raise InvalidQueryError("order_by must be a list of [name, direction].",
                                code="invalid_order")
    include = parse_include(body.get("include"))
    query = build(body.get("site_id"), date_range, metrics=metrics, dimensions=dims,
                  filters=body.get("filters"), order_by=order_by, limit=page.get("limit", 10_000),
                  offset=page.get("offset", 0))
    if include.time_labels and query.time_dimension is None:
        raise InvalidQueryError("include.time_labels needs a time dimension (time, time:hour, time:day, "
                                "time:week or time:month).", code="invalid_include")
    return replace(query, include=include)


def _check_zone(zone: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidQueryError(f"Unknown time zone {zone!r}.", code="invalid_timezone") from None
