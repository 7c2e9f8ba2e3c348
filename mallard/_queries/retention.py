"""Weekly retention: per-identity cohorts by the ISO week of first visit (behavioral-analytics.md §5.3).

Rules:

* The identity of an event is its stable ``user_id`` pseudonym where present, else its daily visitor id
  (``actor_id = coalesce(user_id, visitor_id)``, §4). The two kinds never merge: a user id and a visitor
  id that happen to be equal strings are different identities.
* ``first_seen`` = the identity's earliest event on the site before the range's end (history before the
  start counts); members of the cohorts are the identities first seen inside the range.
* ``cohort_date`` = Monday (00:00 UTC) of first_seen's ISO week; week k = days ``[7k, 7k + 7)`` after it.
  A member is retained in week k if it has any event (pageview or custom) in scope that week, so
  ``retained[0]`` is the cohort size.
* ``complete[k]``: week k ended on or before both the range's end and today (UTC); incomplete weeks are
  lower bounds.
* Filters select identities (selection.py): those with an event in the range in a session matching the
  filter (visit dimensions, entry and exit page included, read on the whole session); their cohorts and
  weeks then use all of their events.

Anonymous ids live for one salt period (``visitor_salt_rotation_days``, aligned to UTC days), so an
anonymous member can only be seen in week k if ``rotation_days >= 7k - 5`` (first seen on a Sunday, id
alive until the period's last day); later weeks are structurally zero, and ``caveat`` says so.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final

from .._errors import InvalidQueryError
from .attributed import Attributed
from .filters import FilterInput
from .model import check_option
from .periods import DateRange
from .results import Report
from .selection import actor_selection, read_selected
from .sql import Sql, with_ctes

if TYPE_CHECKING:
    from .access import Access

__all__ = ["COHORT_COLUMNS", "MAX_WEEKS", "retention"]

MAX_WEEKS: Final = 52
COHORT_COLUMNS: Final = ("cohort_date", "visitors", "retained", "rates", "complete")
# The identity of an event: a user id where present, else the daily visitor id. ``kind`` keeps the two
# name spaces apart.
ACTOR_COLUMNS: Final = ("CASE WHEN user_id IS NULL THEN 'v' ELSE 'u' END AS kind, "
                        "coalesce(user_id, visitor_id) AS actor")


def check_weeks(weeks: object) -> int:
    """``weeks`` if it is an integer 1..52, else raise InvalidQueryError."""
    if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= MAX_WEEKS:
        raise InvalidQueryError(f"weeks must be an integer between 1 and {MAX_WEEKS}, not {weeks!r}.",
                                code="invalid_weeks")
    return weeks


def first_unreachable_week(rotation_days: int) -> int:
    """The first week offset k >= 1 that an anonymous id can never reach (``rotation_days < 7k - 5``)."""
    return max(1, (rotation_days + 5) // 7 + 1)


def compile_retention(source: Sql, site: str, lower: object, upper: object, weeks: int,
                      filters: FilterInput = None, sessions: Sql | None = None,
                      stored: Attributed | None = None) -> Sql:
    """SQL: rows ``(cohort DATE, k, identified, anonymous)`` = members per kind active in week k.

    ``sessions``: the session rows starting in the range or reaching into it, needed with ``filters``.
    """
    selection, keep = actor_selection("retention", filters, sessions, site, lower, upper, stored)
    scoped = Sql("SELECT " + ACTOR_COLUMNS + ", timestamp FROM events "
                 "WHERE site_id = ? AND timestamp < ?", (site, upper)) + keep
    first_seen = Sql("SELECT kind, actor, CAST(date_trunc('week', min(timestamp)) AS DATE) AS cohort "
                     "FROM scoped GROUP BY kind, actor HAVING min(timestamp) >= ?", (lower,))
    # :TRICKY: the week offset counts whole UTC days from the cohort's Monday, as ClickHouse's
    # intDiv(dateDiff('day', toMonday(fs), toDate(ts)), 7); timestamps are naive UTC.
    activity = Sql("SELECT DISTINCT m.kind, m.actor, m.cohort, "
                   "date_diff('day', m.cohort, CAST(s.timestamp AS DATE)) // 7 AS k "
                   "FROM scoped s JOIN first_seen m ON s.kind = m.kind AND s.actor = m.actor")
    body = Sql("SELECT cohort, k, count(*) FILTER (WHERE kind = 'u') AS identified, "
               "count(*) FILTER (WHERE kind = 'v') AS anonymous FROM activity WHERE k < ? "
               "GROUP BY cohort, k ORDER BY cohort, k", (weeks,))
    return with_ctes([("events", source), *selection, ("scoped", scoped), ("first_seen", first_seen),
                      ("activity", activity)], body, inline=("events", "inrange"))


def caveat_text(weeks: int, rotation_days: int) -> str | None:
    """The plain-language caveat for anonymous members, or None when no week offset is affected."""
    if weeks < 2:
        return None
    k0 = first_unreachable_week(rotation_days)
    period = "every day" if rotation_days == 1 else f"every {rotation_days} days"
    lead = (f"Some visitors have no user_id, so they are counted by their anonymous visitor id, which "
            f"changes {period}: a returning visitor with a new id counts as a new visitor.")
    advice = "Send a user_id from your server for real retention."
    if k0 > weeks - 1:
        return f"{lead} Weeks after week 0 are lower bounds. {advice}"
    zero = f"week {k0} is" if k0 == weeks - 1 else f"weeks {k0} to {weeks - 1} are"
    earlier = "; earlier weeks after week 0 are lower bounds" if k0 > 1 else ""
    return f"{lead} For these visitors {zero} always 0 (their id cannot last that long){earlier}. {advice}"


def _ended(cohort: date, weeks: int, horizon: datetime) -> bool:
    """Whether ``weeks`` weeks from ``cohort`` have passed by ``horizon`` (never, past 9999-12-31)."""
    if (date.max - cohort).days < 7 * weeks:
        return False
    return datetime.combine(cohort + timedelta(days=7 * weeks), time()) <= horizon


def retention(access: Access, site: str, rng: DateRange, weeks: int,
              filters: FilterInput = None, identity: str = "all") -> Report:
    """Weekly retention cohorts of ``site`` over ``rng`` (identities first seen in the range).

    Returns a :class:`Report` whose rows are the cohorts ``{"cohort_date", "visitors", "retained",
    "rates", "complete"}``; ``to_dict()`` (the HTTP body) is ``{"cohorts": rows, "weeks",
    "identity": "user_id" | "visitor_id" | "mixed", "caveat": str | None}``.

    ``identity="user_id"`` counts only the identities with a user id (the anonymous ones, whose later
    weeks are structurally 0, are left out of every cohort).

    Raises:
        InvalidQueryError: bad site, weeks not an integer 1..52, a bad filter or identity.
    """
    n = check_weeks(weeks)
    users_only = check_option(identity, "identity", ("all", "user_id")) == "user_id"
    lower, upper = rng.bounds()
    # first_seen looks at all history before the end
    table = read_selected(access, site, rng, filters, lambda query, source, sessions, stored: (
        compile_retention(source, query.site_id, lower, upper, n, query.filters, sessions, stored)),
        history=True)
    by_cohort: dict[date, list[tuple[int, int]]] = {}
    for cohort, k, identified, anonymous in zip(*(table.column(i).to_pylist() for i in range(4)),
                                                strict=True):
        by_cohort.setdefault(cohort, [(0, 0)] * n)[int(k)] = (int(identified), int(anonymous))
    # A week is complete when it has ended by the range's end (naive UTC) and by today (UTC).
    horizon = min(upper, datetime.combine(access.today_utc(), time()))
    cohorts: list[dict[str, Any]] = []
    identified_members = anonymous_members = 0
    for cohort in sorted(by_cohort):
        counts = [(i, 0) for i, _ in by_cohort[cohort]] if users_only else by_cohort[cohort]
        size = counts[0][0] + counts[0][1]
        if size == 0:
            continue
        identified_members += counts[0][0]
        anonymous_members += counts[0][1]
        retained = [a + b for a, b in counts]
        cohorts.append({
            "cohort_date": cohort.isoformat(),
            "visitors": size,
            "retained": retained,
            "rates": [r / size for r in retained],
            "complete": [_ended(cohort, k + 1, horizon) for k in range(n)],
        })
    identity = ("mixed" if identified_members and anonymous_members
                else "user_id" if identified_members else "visitor_id")
    caveat = caveat_text(n, access.salt_rotation_days) if anonymous_members else None
    return Report("cohorts", COHORT_COLUMNS, cohorts,
                  {"weeks": n, "identity": identity, "caveat": caveat})

