"""The raw export (``Queries.export(kind="raw")``): one row per event of a range, identifiers left out.
Plausible's engagement reports are not events: the reader leaves them out, as every analysis."""

from __future__ import annotations

from .._errors import InvalidQueryError
from .._events import COLUMN_NAMES
from .access import ReaderFactory
from .acquisition import with_computed
from .filters import FilterInput, event_rows
from .model import build
from .periods import DateRange
from .results import Table
from .sql import Sql

__all__ = ["EXPORTED_COLUMNS", "raw_export"]

#: Every lake column but the identifiers (even pseudonymous ones stay out of exports) and the values of
#: engagement reports, which are not events and are not exported (only their metrics are).
EXPORTED_COLUMNS = tuple(c for c in COLUMN_NAMES if c not in (
    "site_id", "visitor_id", "visitor_id_prev", "user_id", "scroll_depth", "engagement_ms"))


def raw_export(reading: ReaderFactory, site: str, rng: DateRange, limit: int, filters: FilterInput) -> Table:
    """The events of ``site`` in ``rng`` matching ``filters`` (event conditions only), in time order,
    at most ``limit`` (1 to 1,000,000) of them."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1_000_000:
        raise InvalidQueryError("limit must be between 1 and 1000000", code="invalid_limit")
    query = build(site, rng, filters=filters)
    lower, upper = rng.bounds()
    where = Sql(" WHERE site_id = ? AND timestamp >= ? AND timestamp < ?", (site, lower, upper))
    if query.filters is not None:
        where = where + " AND " + event_rows(query.filters, "Raw export")
    first, last = rng.partition_dates()
    with reading(site, first, last) as reader:
        src, src_params = reader.source()
        events = with_computed(Sql(src, tuple(src_params)))
        sql = ("WITH events AS (" + events + ") SELECT " + ", ".join(f'"{c}"' for c in EXPORTED_COLUMNS)
               + " FROM events") + where + Sql(
            " ORDER BY timestamp, pathname, event_name LIMIT ?", (limit,))
        table = reader.execute(sql.text, sql.params)
    return Table(EXPORTED_COLUMNS, table.to_pylist(), rng.to_dict())
