"""Next-page flow: where visitors go after a page (behavioral-analytics.md §5.5).

Rules:

* Nodes are the pageviews in scope (custom events are not nodes), per identity (``user_id`` where
  present, else the daily visitor id, as in retention), ordered by ``(timestamp, pathname)``: the
  pathname breaks timestamp ties (ClickHouse ``sequenceNextNode``'s rule); rows equal in both are
  interchangeable, so the result never depends on the physical order of rows.
* Each identity's *first* pageview of the page counts; its next page is the pathname of the following
  pageview (any time later in scope, no session limit; it may be the page itself). An identity whose
  first pageview of the page is its last pageview is an exit.
* ``next_pages`` are ordered by visitors (descending), then next page (ascending, byte order).
* ``direction="previous"`` reads the same sequence backwards: the pathname of the pageview just before
  the identity's first pageview of the page (``previous_pages``); an identity with none entered the
  site's scope there (``entrances``).
* Filters select identities (selection.py): those with an event in scope in a session matching the filter
  (visit dimensions, entry and exit page included, read on the whole session); the flow then uses all of
  their pageviews in scope.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .._errors import InvalidQueryError
from .attributed import Attributed
from .filters import FilterInput
from .model import check_option
from .periods import DateRange
from .results import Report
from .retention import ACTOR_COLUMNS
from .selection import actor_selection, read_selected
from .sql import Sql, with_ctes

if TYPE_CHECKING:
    from .access import Access

__all__ = ["FLOW_COLUMNS", "MAX_FLOW_LIMIT", "MAX_PAGE_LEN", "PREVIOUS_COLUMNS", "flow"]

MAX_PAGE_LEN: Final = 2048
MAX_FLOW_LIMIT: Final = 100
FLOW_COLUMNS: Final = ("next_page", "visitors", "share")
PREVIOUS_COLUMNS: Final = ("previous_page", "visitors", "share")


def check_page(page: object) -> str:
    """``page`` if it is a path of 1..2048 characters starting with ``/``, else raise."""
    if not isinstance(page, str) or not page.startswith("/") or len(page) > MAX_PAGE_LEN:
        raise InvalidQueryError(f"page must be a path of 1 to {MAX_PAGE_LEN} characters starting with "
                                "'/', such as /pricing.", code="invalid_page")
    return page


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_FLOW_LIMIT:
        raise InvalidQueryError(f"limit must be an integer between 1 and {MAX_FLOW_LIMIT}, not {limit!r}.",
                                code="invalid_limit")
    return limit


def compile_flow(source: Sql, site: str, lower: object, upper: object, page: str, limit: int,
                 filters: FilterInput = None, sessions: Sql | None = None, backwards: bool = False,
                 stored: Attributed | None = None) -> Sql:
    """SQL: a totals row ``(0, NULL, visitors_at_page, exits)``, then ``(1, next_page, visitors, 0)``.

    ``sessions``: the session rows starting in the range or reaching into it, needed with ``filters``;
    ``stored``: the range's stored attributed events (read instead of joined; optional).
    """
    selection, keep = actor_selection("flow", filters, sessions, site, lower, upper, stored)
    pageviews = Sql("SELECT " + ACTOR_COLUMNS + ", timestamp, pathname FROM events "
                    "WHERE site_id = ? AND timestamp >= ? AND timestamp < ? AND event_name = 'pageview'",
                    (site, lower, upper)) + keep
    # :TRICKY: the order (timestamp, pathname) is total up to identical rows, which are interchangeable:
    # the first pageview of the page and the pathname following it do not depend on storage order.
    sequence = Sql("SELECT kind, actor, pathname, row_number() OVER w AS rk, "
                   f"{'lag' if backwards else 'lead'}(pathname) OVER w AS next_page FROM pageviews "
                   "WINDOW w AS (PARTITION BY kind, actor ORDER BY timestamp, pathname)")
    firsts = Sql("SELECT next_page FROM sequence WHERE pathname = ? "
                 "QUALIFY row_number() OVER (PARTITION BY kind, actor ORDER BY rk) = 1", (page,))
    body = Sql("SELECT 0 AS part, NULL AS next_page, count(*) AS visitors, "
               "count(*) FILTER (WHERE next_page IS NULL) AS exits FROM firsts "
               "UNION ALL SELECT * FROM (SELECT 1 AS part, next_page, count(*) AS visitors, 0 AS exits "
               "FROM firsts WHERE next_page IS NOT NULL GROUP BY next_page "
               "ORDER BY visitors DESC, next_page ASC LIMIT ?) ORDER BY part, visitors DESC, next_page ASC",
               (limit,))
    return with_ctes([("events", source), *selection, ("pageviews", pageviews), ("sequence", sequence),
                      ("firsts", firsts)], body, inline=("events", "inrange"))


def flow(access: Access, site: str, rng: DateRange, page: str, limit: int = 10,
         filters: FilterInput = None, direction: str = "next") -> Report:
    """The pages visitors view next after their first pageview of ``page`` in ``rng``.

    Returns a :class:`Report` whose rows are the next pages ``{"next_page", "visitors", "share"}``
    (``share = visitors / visitors_at_page``); ``to_dict()`` (the HTTP body) is ``{"page",
    "visitors_at_page", "exits", "next_pages": rows}``. With ``direction="previous"``: the pages viewed
    just before, ``{"page", "visitors_at_page", "entrances", "previous_pages": [{"previous_page",
    "visitors", "share"}]}``.

    Raises:
        InvalidQueryError: bad site, page, limit (1..100), filter or direction.

    Filters select identities (see the module docstring).
    """
    page = check_page(page)
    n = check_limit(limit)
    backwards = check_option(direction, "direction", ("next", "previous")) == "previous"
    lower, upper = rng.bounds()
    rows = read_selected(access, site, rng, filters, lambda query, source, sessions, stored: compile_flow(
        source, query.site_id, lower, upper, page, n, query.filters, sessions, backwards, stored)).to_pylist()
    totals, rest = rows[0], rows[1:]
    at_page = int(totals["visitors"])
    side = "previous" if backwards else "next"
    pages = [{f"{side}_page": r["next_page"], "visitors": int(r["visitors"]),
              "share": int(r["visitors"]) / at_page} for r in rest]
    return Report(f"{side}_pages", PREVIOUS_COLUMNS if backwards else FLOW_COLUMNS, pages,
                  {"page": page, "visitors_at_page": at_page,
                   "entrances" if backwards else "exits": int(totals["exits"])})
