"""The engagement reports of a query's range, each with the visit it belongs to.

Plausible's engagement events (see :mod:`mallard._engagement`) are rows named ``engagement``; the metrics
``scroll_depth`` and ``time_on_page`` aggregate them per visit. Plausible keys a report by the session
of its visitor; mallard keeps no session state at ingestion, so a visit here is a visitor id's run of
reports in which no gap is longer than the session window, as sessions.py splits events (a report
comes when a page is left: the reports of one visit are at most a session window apart as long as the
visit lasts). Unlike sessions, the visit does not follow a visitor across a salt change (midnight).
"""

from __future__ import annotations

from datetime import datetime

from .sql import Sql

__all__ = ["rows"]


def rows(source: Sql, site: str, bounds: tuple[datetime, datetime], gap_seconds: int) -> Sql:
    """SQL of the engagement rows of ``site`` in ``bounds`` (``source``: a relation of engagement rows
    with the lake schema) with a column ``visit``, numbering each visitor id's visits."""
    lower, upper = bounds
    gap_us = int(gap_seconds) * 1_000_000
    scoped = Sql("SELECT * FROM (") + source + Sql(
        ") WHERE site_id = ? AND timestamp >= ? AND timestamp < ?", (site, lower, upper))
    marked = ("SELECT *, CASE WHEN epoch_us(timestamp) - lag(epoch_us(timestamp)) OVER "
              f"(PARTITION BY visitor_id ORDER BY timestamp) <= {gap_us} THEN 0 ELSE 1 END AS new_visit "
              "FROM (" + scoped + ")")
    return ("SELECT * EXCLUDE (new_visit), sum(new_visit) OVER (PARTITION BY visitor_id ORDER BY "
            "timestamp ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS visit FROM (" + marked + ")")
