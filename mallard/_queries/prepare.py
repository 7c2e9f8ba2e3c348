"""What a dashboard's first view checks, established ahead of it (by maintenance, after its daily pass).

A view sums the stored rollups and visit rows of its settled days once it has checked that they add up
over its range (:func:`~mallard._queries.rollups.day_local`, :func:`~mallard._queries.visits.exact`):
0.1-0.3 CPU-seconds each at 5M events, kept in ``state/facts/`` once done
(:meth:`~mallard._queries.freshness.LiveCache.fact`, lasting). The settled days change once a day (a day
settles, yesterday's rollups are stored), so the first view of each day would check again; maintenance
asks the same questions first, for the dashboard's default period and the period it is compared with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .include import Comparison, comparison_range
from .model import build

if TYPE_CHECKING:
    from . import Queries

__all__ = ["DEFAULT_PERIOD", "prepare"]

#: The dashboard's default period (static/dashboard/ui/url.js), compared with the previous one.
DEFAULT_PERIOD: Final = "30d"


def prepare(q: Queries, site: str, period: str = DEFAULT_PERIOD) -> None:
    """Check the stored rollups of ``period`` and of the period before it, and the visit rows of
    ``period``, as a view of them would (the answers are dropped; the lasting facts stay)."""
    rng = q.date_range(site, period)
    previous = comparison_range(rng, Comparison("previous_period"), q.today(rng.tz))
    for days, dimension in ((rng, "event:page"), (previous, "event:page"), (rng, "visit:source")):
        q.run(build(site, days, metrics=["visitors"], dimensions=[dimension], limit=1))
