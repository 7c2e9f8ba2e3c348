"""Custom property keys used in a date range, for the dashboard's filter menu and funnel builder.

Every other suggestion the dashboard needs (pages, event names, a property's values, sources,
countries, ...) is a v2 query: the dimension, a ``contains`` filter (``{"case_sensitive": false}``)
and a pagination limit. Property *keys* are no dimension, so they are listed here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ..errors import InvalidQueryError
from .periods import DateRange
from .results import Report
from .retention import event_filter
from .sql import Sql, with_ctes

if TYPE_CHECKING:
    from .access import Access

__all__ = ["MAX_SUGGESTIONS", "PROP_KEY_COLUMNS", "prop_keys"]

MAX_SUGGESTIONS: Final = 100
MAX_SEARCH: Final = 128
PROP_KEY_COLUMNS: Final = ("key", "events")


def prop_keys(access: Access, site: str, rng: DateRange, contains: str = "", limit: int = 20,
              filters: object = None) -> Report:
    """The property keys of ``site``'s events in ``rng`` whose name contains ``contains`` (ignoring
    case), most used first (then by key), with the number of events carrying each.

    Raises:
        InvalidQueryError: bad site, filter, search text (over 128 characters) or limit (1..100).
    """
    if not isinstance(contains, str) or len(contains) > MAX_SEARCH:
        raise InvalidQueryError(f"The search text is at most {MAX_SEARCH} characters.",
                                code="invalid_search")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SUGGESTIONS:
        raise InvalidQueryError(f"limit must be an integer between 1 and {MAX_SUGGESTIONS}.",
                                code="invalid_limit")
    where = event_filter(site, rng, filters)  # validates the site too
    lower, upper = rng.bounds()
    first, last = rng.partition_dates()
    with access.reading(site, first, last) as reader:
        src, src_params = reader.source()
        keys = Sql("SELECT unnest(json_keys(props)) AS key FROM events WHERE site_id = ? "
                   "AND timestamp >= ? AND timestamp < ? AND props IS NOT NULL AND props <> '{}' "
                   "AND event_name <> 'engagement'", (site, lower, upper)) + where
        body = Sql("SELECT key, count(*) AS events FROM keys WHERE contains(lower(key), lower(?)) "
                   "GROUP BY key ORDER BY events DESC, key ASC LIMIT ?", (contains, limit))
        sql = with_ctes([("events", Sql(src, tuple(src_params))), ("keys", keys)], body,
                        inline=("events",))
        rows = [{"key": r["key"], "events": int(r["events"])}
                for r in reader.execute(sql.text, sql.params).to_pylist()]
    return Report("prop_keys", PROP_KEY_COLUMNS, rows, {"search": contains})
