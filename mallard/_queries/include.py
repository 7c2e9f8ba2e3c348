"""The ``include`` options of a Plausible Stats API v2 query, and the comparisons they ask for.

``time_labels``: every bucket label of the range in ``meta.time_labels`` (needs a time dimension);
``total_rows``: the number of rows before pagination in ``meta.total_rows``; ``imports``: mallard has no
imported data, so ``meta.imports_included`` is false and ``meta.imports_skip_reason`` says why;
``comparisons``: ``{"mode": "previous_period" | "year_over_year" | "custom", "date_range": [d, d],
"match_day_of_week": bool}`` adds to each result row a ``comparison`` object with the same row over the
comparison range (``dimensions``, ``metrics``) and the ``change`` of each metric.

Comparison ranges follow Plausible: ``previous_period`` is the same number of days just before the range
(the range cut at today first), ``year_over_year`` the range (cut at today) 365 days earlier, ``custom``
the given dates; ``match_day_of_week`` moves the comparison forward to the next day with the weekday the
range starts on (unless that is the range's own first day). A ``change`` is a percentage
(rounded to a whole number; 100 from 0 to anything, 0 from 0 to 0), except for ``bounce_rate``
(percentage points, none from 0) and ``conversion_rate`` (percentage points, one decimal).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Final, Literal

from .._errors import InvalidQueryError
from .buckets import bucket_labels
from .periods import DateRange, parse_date
from .registry import METRICS

if TYPE_CHECKING:
    from .model import Query
    from .results import QueryResult

__all__ = ["IMPORTS_META", "Comparison", "Include", "change", "comparison_range", "match_rows",
           "parse_include", "with_comparisons"]

Mode = Literal["previous_period", "year_over_year", "custom"]
MODES: Final[tuple[Mode, ...]] = ("previous_period", "year_over_year", "custom")
#: ``meta`` of a query with ``include.imports``: mallard never holds imported data.
IMPORTS_META: Final = {
    "imports_included": False,
    "imports_skip_reason": "no_imported_data",
    "imports_warning": "mallard holds no imported data: the results are of tracked events only.",
}
_PERCENT_POINTS: Final = frozenset({"conversion_rate", "group_conversion_rate"})


@dataclass(frozen=True, slots=True)
class Comparison:
    """What a query's rows are compared with."""

    mode: Mode
    dates: tuple[date, date] | None = None  # the custom range
    match_day_of_week: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode}
        if self.dates is not None:
            out["date_range"] = [d.isoformat() for d in self.dates]
        if self.match_day_of_week:
            out["match_day_of_week"] = True
        return out


@dataclass(frozen=True, slots=True)
class Include:
    """A v2 query's ``include`` (all off by default)."""

    time_labels: bool = False
    total_rows: bool = False
    imports: bool = False
    comparisons: Comparison | None = None

    def to_json(self) -> dict[str, Any]:
        """The options that are on, as Plausible echoes them in ``query.include``."""
        out: dict[str, Any] = {k: True for k in ("time_labels", "total_rows", "imports") if getattr(self, k)}
        if self.comparisons is not None:
            out["comparisons"] = self.comparisons.to_json()
        return out


def parse_include(raw: object) -> Include:
    """An :class:`Include` from the body's ``include`` object.

    Raises:
        InvalidQueryError: not an object, an unknown key, a value of the wrong type, a bad comparison.
    """
    if raw is None:
        return Include()
    if not isinstance(raw, Mapping):
        raise InvalidQueryError("include must be an object.", code="invalid_include")
    known = ("time_labels", "total_rows", "imports", "comparisons")
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InvalidQueryError(f"Unknown include key(s): {', '.join(map(str, unknown))}. "
                                f"Valid keys: {', '.join(known)}.", code="invalid_include")
    flags = {k: _flag(raw, k) for k in known[:3]}
    comparisons = raw.get("comparisons")
    return Include(**flags, comparisons=None if comparisons is None else _comparison(comparisons))


def _flag(raw: Mapping[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise InvalidQueryError(f"include.{key} must be true or false.", code="invalid_include")
    return value


def _comparison(raw: object) -> Comparison:
    if not isinstance(raw, Mapping) or raw.get("mode") not in MODES:
        raise InvalidQueryError("include.comparisons must be an object with a mode: "
                                + ", ".join(MODES) + ".", code="invalid_include")
    unknown = sorted(set(raw) - {"mode", "date_range", "match_day_of_week"})
    if unknown:
        raise InvalidQueryError(f"Unknown include.comparisons key(s): {', '.join(map(str, unknown))}.",
                                code="invalid_include")
    match = raw.get("match_day_of_week", False)
    if not isinstance(match, bool):
        raise InvalidQueryError("include.comparisons.match_day_of_week must be true or false.",
                                code="invalid_include")
    mode: Mode = raw["mode"]
    pair = raw.get("date_range")
    if (mode == "custom") != (pair is not None):
        raise InvalidQueryError("include.comparisons.date_range is required with mode 'custom' and "
                                "only allowed with it.", code="invalid_include")
    dates = None
    if pair is not None:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair)):
            raise InvalidQueryError("include.comparisons.date_range must be [start_date, end_date].",
                                    code="invalid_include")
        dates = (parse_date(pair[0], "comparison start_date"), parse_date(pair[1], "comparison end_date"))
        if dates[1] < dates[0]:
            raise InvalidQueryError("include.comparisons.date_range must not end before it starts.",
                                    code="invalid_range")
        DateRange(*dates)  # inside the supported dates
    return Comparison(mode, dates, match)


def comparison_range(rng: DateRange, comparison: Comparison, today: date) -> DateRange:
    """The whole local days ``rng``'s rows are compared with.

    Raises:
        InvalidQueryError: the comparison would leave the calendar.
    """
    if comparison.dates is not None:
        first, last = comparison.dates
    else:
        last = min(rng.end, max(today, rng.start))
        shift = timedelta(days=365 if comparison.mode == "year_over_year" else (last - rng.start).days + 1)
        try:
            first, last = rng.start - shift, last - shift
        except OverflowError:
            first = last = date.min
    if comparison.match_day_of_week and first.weekday() != rng.start.weekday():
        ahead = (rng.start.weekday() - first.weekday()) % 7
        moved = first + timedelta(days=ahead) if first + timedelta(days=ahead) != rng.start \
            else first - timedelta(days=7 - ahead)
        first, last = moved, last + (moved - first)
    try:
        return DateRange(first, last, rng.tz)
    except InvalidQueryError:
        raise InvalidQueryError(f"The comparison period ({first} to {last}) lies outside the supported "
                                "dates; choose later dates.", code="date_out_of_range") from None


def change(metric: str, old: Any, new: Any) -> int | float | None:
    """The change from ``old`` to ``new`` (wire values: rates in percent), as Plausible reports it."""
    if old is None or new is None:
        return None
    old, new = float(old), float(new)
    if metric in _PERCENT_POINTS:
        return _round(new - old, 1)
    if metric == "bounce_rate":
        return new - old if old > 0 else None
    if old == 0:
        return 100 if new > 0 else 0
    return int(_round((new - old) / old * 100, 0))


def _round(value: float, digits: int) -> float:
    """Half away from zero, as Elixir rounds (Python's round() rounds half to even)."""
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def match_rows(dimensions: Sequence[str], rows: Sequence[Mapping[str, Any]],
               compared: Sequence[Mapping[str, Any]], metrics: Sequence[str],
               empty: Mapping[str, Any], time_labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """For each of ``rows``, its comparison row: the ``compared`` row with the same dimension values (a
    time label mapped through ``time_labels``, main label → comparison label), else empty metrics."""
    def key(row: Mapping[str, Any], mapped: bool) -> tuple[Any, ...]:
        return tuple(time_labels.get(row[d]) if mapped and d.startswith("time:") else row[d]
                     for d in dimensions)

    index = {key(r, False): r for r in compared}
    out = []
    for row in rows:
        dims = key(row, True)
        found = index.get(dims)
        out.append({"dimensions": list(dims),
                    "metrics": {m: (found[m] if found is not None else empty[m]) for m in metrics}})
    return out


def with_comparisons(result: QueryResult, run: Callable[[Query], QueryResult], today: date) -> QueryResult:
    """``result`` with the comparison row of each of its rows (its query has ``include.comparisons``):
    ``run`` answers the same query over the comparison range, unpaged."""
    query = result.query
    assert query.include.comparisons is not None
    rng = comparison_range(query.date_range, query.include.comparisons, today)
    other = run(replace(query, date_range=rng, limit=None, offset=0, include=Include()))
    time_dim = query.time_dimension
    labels = {} if time_dim is None else dict(zip(bucket_labels(query.date_range, time_dim),
                                                  bucket_labels(rng, time_dim), strict=False))
    empty = {m: METRICS[m].empty for m in query.metrics}
    return replace(result, comparisons=match_rows(query.dimensions, result.rows, other.rows, query.metrics,
                                                  empty, labels))
