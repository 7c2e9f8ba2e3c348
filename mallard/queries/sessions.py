"""Sessionisation, shared by every analysis that needs visits.

A session is a visitor's run of events (pageviews and custom events) in scope, ordered by time, where no
gap between consecutive events is longer than the session window (30 minutes by default; a gap of
exactly the window stays in the session, equal timestamps never split). Visitor ids change with the daily
salt; an event in the first window after the change carries its id under the previous salt
(``visitor_id_prev``), and the *actor* of all that visitor's events becomes the previous id, so a session
crossing midnight stays one session.

Per session: ``start``, ``duration_s`` (last − first), ``pageviews``, ``entry_page`` and
``exit_page`` (first and last pageview, ties by pathname) and, for each visit attribute, its value on
the session's first event (pageviews before custom events on equal timestamps, then by pathname).
"""

from __future__ import annotations

from collections.abc import Sequence

from .sql import Sql


def ctes(gap_seconds: int, *, attributes: Sequence[str], flags: Sequence[Sql],
         source: str = "scoped") -> list[tuple[str, Sql]]:
    """CTEs ``actors``, ``numbered`` (events with ``actor`` and ``sess``) and ``sessions``.

    Args:
        gap_seconds: the inactivity gap.
        attributes: lake columns whose first value per session is exposed as ``s_<column>``.
        flags: boolean event expressions exposed per session as ``f_<i>`` (= any event matched).
        source: the relation of scoped events (must have the lake columns used).
    """
    gap_us = int(gap_seconds) * 1_000_000
    actors = Sql(
        "SELECT e.*, coalesce(l.prev, e.visitor_id) AS actor FROM " + source + " e LEFT JOIN ("
        "SELECT visitor_id AS vid, min(visitor_id_prev) AS prev FROM " + source + " "
        "WHERE visitor_id_prev IS NOT NULL GROUP BY visitor_id) l ON e.visitor_id = l.vid"
    )
    # TRICKY: the running sum uses a RANGE frame so rows with equal timestamps get the same session.
    numbered = Sql(
        "SELECT *, sum(new_sess) OVER (PARTITION BY actor ORDER BY ts_us "
        "RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS sess FROM ("
        "SELECT *, CASE WHEN ts_us - lag(ts_us) OVER (PARTITION BY actor ORDER BY ts_us) "
        f"> {gap_us} THEN 1 ELSE 0 END AS new_sess FROM ("
        "SELECT *, epoch_us(timestamp) AS ts_us FROM actors))"
    )
    order_key = "{'t': ts_us, 'c': event_name <> 'pageview', 'p': pathname}"
    columns = [
        "actor", "sess",
        "min(timestamp) AS start",
        "(max(ts_us) - min(ts_us)) / 1000000.0 AS duration_s",
        "count(*) FILTER (WHERE event_name = 'pageview') AS pageviews",
        "arg_min(pathname, {'t': ts_us, 'p': pathname}) FILTER (WHERE event_name = 'pageview') "
        "AS entry_page",
        "arg_max(pathname, {'t': ts_us, 'p': pathname}) FILTER (WHERE event_name = 'pageview') "
        "AS exit_page",
        *(f"arg_min_null({col}, {order_key}) AS s_{col}" for col in attributes),
    ]
    select = Sql.join([Sql(c) for c in columns]
                      + [("coalesce(bool_or(" + f + f"), false) AS f_{i}") for i, f in enumerate(flags)])
    sessions = "SELECT " + select + " FROM numbered GROUP BY actor, sess"
    return [("actors", actors), ("numbered", numbered), ("sessions", sessions)]
