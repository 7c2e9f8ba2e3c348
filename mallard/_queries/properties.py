"""Custom property keys: which ``props`` keys the events of a range carry (Mallard Metrics v0.2's
``GET /api/stats/properties``), so a dashboard can offer them before asking ``event:props:<key>``.

Rules:

* A key counts for an event whose ``props`` JSON object has it (any value, ``null`` included).
* ``visitors`` are distinct visitor ids (over several days, visitor-days, as the ``visitors`` metric),
  ``events`` the events carrying the key.
* Keys are ordered by visitors, then events (descending), then key (ascending, byte order); at most
  ``limit`` of them (1..:data:`MAX_PROPERTIES_LIMIT`).
* Filters select visitors as flow and retention do (selection.py): the keys are those of every event
  of the visitors with a session matching the filters (entry and exit pages, sources included);
  ``contains`` keeps the keys holding it, in any case (suggestions for a filter menu). Engagement
  reports (mallard/_engagement.py) are no events and are not counted.

Without filters the keys are read from the per-day rollups (rollups.py: a row per key and day) where
they answer, else from one scan of the ``props`` column.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Final

import pyarrow as pa

from .._errors import InvalidQueryError
from .attributed import Attributed
from .filters import FilterInput
from .model import build
from .periods import DateRange
from .results import Report
from .rollups import PROPERTY_KEYS
from .selection import actor_selection, read_selected
from .sql import Sql, with_ctes
from .stored import stored_or_events

if TYPE_CHECKING:
    from .access import Access

__all__ = ["MAX_PROPERTIES_LIMIT", "MAX_SEARCH", "PROPERTY_COLUMNS", "properties"]

MAX_PROPERTIES_LIMIT: Final = 100
MAX_SEARCH: Final = 128
PROPERTY_COLUMNS: Final = ("key", "visitors", "events")


def compile_properties(source: Sql, site: str, lower: object, upper: object, limit: int,
                       filters: FilterInput, sessions: Sql | None, contains: str = "",
                       stored: Attributed | None = None) -> Sql:
    """SQL: rows ``(key, visitors, events)``, most visitors first."""
    selection, keep = actor_selection("property list", filters, sessions, site, lower, upper, stored)
    # json_keys is [] for a JSON value that is not an object; text that is not JSON (a file written by
    # another tool) is skipped rather than failing the query.
    keyed = Sql("SELECT visitor_id, unnest(CASE WHEN json_valid(props) THEN json_keys(props) END) AS key "
                "FROM events WHERE site_id = ? AND timestamp >= ? AND timestamp < ? AND props IS NOT NULL "
                "AND event_name <> 'engagement'", (site, lower, upper)) + keep
    body = Sql("SELECT key, count(DISTINCT visitor_id) AS visitors, count(*) AS events FROM keyed "
               "WHERE contains(lower(key), lower(?)) GROUP BY key "
               "ORDER BY visitors DESC, events DESC, key ASC LIMIT ?", (contains, limit))
    return with_ctes([("events", source), *selection, ("keyed", keyed)], body, inline=("events",))


def properties(access: Access, site: str, rng: DateRange, limit: int = 50,
               filters: FilterInput = None, contains: str = "") -> Report:
    """The custom property keys of ``site``'s events in ``rng`` (those holding ``contains``, in any
    case) with their visitors and events.

    Raises:
        InvalidQueryError: bad site, limit (1..100), search text (over 128 characters) or filter.
    """
    if not isinstance(contains, str) or len(contains) > MAX_SEARCH:
        raise InvalidQueryError(f"The search text is at most {MAX_SEARCH} characters.",
                                code="invalid_search")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PROPERTIES_LIMIT:
        raise InvalidQueryError(f"limit must be an integer between 1 and {MAX_PROPERTIES_LIMIT}, not "
                                f"{limit!r}.", code="invalid_limit")
    lower, upper = rng.bounds()
    query = build(site, rng, filters=filters)
    table = _rolled(access, query.site_id, rng, limit, contains) if query.filters is None else None
    if table is None:
        table = read_selected(access, site, rng, filters, lambda query, source, sessions, stored: (
            compile_properties(source, query.site_id, lower, upper, limit, query.filters, sessions,
                               contains, stored)))
    rows = table.to_pylist()
    found = [{"key": r["key"], "visitors": int(r["visitors"]), "events": int(r["events"])} for r in rows]
    return Report("properties", PROPERTY_COLUMNS, found,
                  {"site_id": site, **({"search": contains} if contains else {})})


def _rolled(access: Access, site: str, rng: DateRange, limit: int, contains: str) -> pa.Table | None:
    """The rows of :func:`compile_properties` without filters, from the rollups' key rows (None: the
    rollups do not answer for this range)."""
    lower, upper = rng.bounds()
    first, last = rng.partition_dates()
    with access.reading(site, first, last) as reader:
        def attempt(stored: bool, read: list[str]) -> pa.Table | None:
            rolled = access.rollups(reader, site, rng, PROPERTY_KEYS, stored)
            if rolled is None:
                return None
            read.extend(rolled.files)
            body = Sql("SELECT value AS key, sum(visitors)::BIGINT AS visitors, "
                       "sum(events)::BIGINT AS events FROM rollups "
                       "WHERE dimension = ? AND day >= ? AND day <= ? "
                       "AND contains(lower(value), lower(?)) GROUP BY value "
                       "ORDER BY visitors DESC, events DESC, key ASC LIMIT ?",
                       (PROPERTY_KEYS, lower.date(), (upper - timedelta(microseconds=1)).date(), contains,
                        limit))
            sql = with_ctes([("rollups", rolled.relation())], body)
            return reader.execute(sql.text, sql.params)

        return stored_or_events(attempt, access.discard)
