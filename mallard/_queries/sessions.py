"""Sessionisation, shared by every analysis that needs visits.

A session is a visitor's run of events (pageviews and custom events) in scope, ordered by time, where no
gap between consecutive events is longer than the session window (30 minutes by default; a gap of
exactly the window stays in the session, equal timestamps never split). Visitor ids change with the daily
salt; an event in the first window after the change carries its id under the previous salt
(``visitor_id_prev``), and the *actor* of all that visitor's events becomes the first id of its chain of
previous ids (up to 32 salt changes), so a session crossing midnight stays one session at every midnight
of the range.

Per session: ``start``, ``duration_s`` (last − first), ``pageviews``, ``entry_page`` and
``exit_page`` (first and last pageview, ties by pathname) and their hostnames, and, for each visit
attribute, its value on the session's first event (pageviews before custom events on equal
timestamps, then by pathname; among events tied on all three, the smallest value, so that the answer
never depends on the order of rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .acquisition import with_computed
from .sql import Sql, with_ctes

_MAX_CHAIN = 32


#: Per-session page columns, over the session's pageviews: the first and last page's path and host
#: (ties by path, then host; a NULL host is the page's, not skipped).
PAGES: Final = {
    "entry_page": "arg_min(pathname, {'t': ts_us, 'p': pathname})",
    "exit_page": "arg_max(pathname, {'t': ts_us, 'p': pathname})",
    "entry_page_hostname": "arg_min_null(hostname, {'t': ts_us, 'p': pathname, 'h': hostname})",
    "exit_page_hostname": "arg_max_null(hostname, {'t': ts_us, 'p': pathname, 'h': hostname})",
}


def ctes(gap_seconds: int, *, attributes: Sequence[str], flags: Sequence[Sql],
         pages: Sequence[str] = (), extras: Sequence[str] = (),
         source: str = "scoped") -> list[tuple[str, Sql]]:
    """CTEs ``actors``, ``numbered`` (events with ``actor`` and ``sess``) and ``sessions``.

    Args:
        gap_seconds: the inactivity gap.
        attributes: lake columns whose first value per session is exposed as ``s_<column>``.
        flags: boolean event expressions exposed per session as ``f_<i>`` (= any event matched).
        pages: which of :data:`PAGES` to compute.
        extras: further per-session aggregate columns (``"count(*) AS events"``).
        source: the relation of scoped events (must have the lake columns used).
    """
    gap_us = int(gap_seconds) * 1_000_000
    # The actor of a visitor id is the first id of its chain of previous ids: a visitor active around two
    # midnights in a row has ids d1 <- d2 <- d3, and all three are one actor. The links are few (only
    # events in the first window after a salt change carry a previous id), so the chain is followed
    # by a fixed number of joins on them: chains of up to _MAX_CHAIN consecutive salt changes. (A
    # recursive CTE gave the same answers at half the speed of main() on 2M events.)
    depth = _MAX_CHAIN
    hops = " ".join(f"LEFT JOIN lk l{i} ON l{i}.vid = l{i - 1}.prev" for i in range(1, depth))
    root = "coalesce(" + ", ".join(f"l{i}.prev" for i in reversed(range(depth))) + ")"
    actors = Sql(
        "SELECT e.*, coalesce(r.root, e.visitor_id) AS actor FROM " + source + " e LEFT JOIN ("
        "WITH lk AS MATERIALIZED (SELECT visitor_id AS vid, min(visitor_id_prev) AS prev FROM " + source
        + " WHERE visitor_id_prev IS NOT NULL GROUP BY visitor_id) "
        f"SELECT l0.vid, {root} AS root FROM lk l0 {hops}) r ON e.visitor_id = r.vid"
    )
    # TRICKY: windows are keyed by two independent 64-bit hashes of the actor instead of the 64-character
    # id: sorting fixed-width keys is ~2x faster. Partitions are by hash_a; within one, rows are ordered
    # by (hash_b, time) and a change of hash_b starts a new session, so two actors only merge if both
    # hashes collide (~2^-128). hash_b hashes other bytes (actor || 'b'): DuckDB's hash(x, y) combines
    # hash(x) with hash(y), so it could not tell apart two actors whose hash(x) collide. Equal
    # timestamps never split (gap 0), whatever their order.
    numbered = Sql(
        "SELECT *, sum(new_sess) OVER (PARTITION BY hash_a ORDER BY hash_b, ts_us "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS sess FROM ("
        "SELECT *, CASE WHEN lag(hash_b) OVER w <> hash_b OR ts_us - lag(ts_us) OVER w "
        f"> {gap_us} THEN 1 ELSE 0 END AS new_sess FROM ("
        "SELECT *, epoch_us(timestamp) AS ts_us, hash(actor) AS hash_a, hash(actor || 'b') AS hash_b "
        "FROM actors) WINDOW w AS (PARTITION BY hash_a ORDER BY hash_b, ts_us))"
    )
    order_key = "{'t': ts_us, 'c': event_name <> 'pageview', 'p': pathname, 'v': %s}"
    columns = [
        "hash_a", "sess",
        "min(timestamp) AS start",
        "(max(ts_us) - min(ts_us)) / 1000000.0 AS duration_s",
        "count(*) FILTER (WHERE event_name = 'pageview') AS pageviews",
        *(f"{PAGES[page]} FILTER (WHERE event_name = 'pageview') AS {page}" for page in pages),
        *(f"arg_min_null({col}, {order_key % col}) AS s_{col}" for col in attributes),
        *extras,
    ]
    select = Sql.join([Sql(c) for c in columns]
                      + [("coalesce(bool_or(" + f + f"), false) AS f_{i}") for i, f in enumerate(flags)])
    sessions = "SELECT " + select + " FROM numbered GROUP BY hash_a, sess"
    return [("actors", actors), ("numbered", numbered), ("sessions", sessions)]


# -- the stored relation ------------------------------------------------------------------------------
#: Visit attributes every session row carries: the value on the session's first event.
#: (``channel`` is computed from lake columns when read: queries/acquisition.py.)
ATTRIBUTES: Final = ("referrer_source", "referrer", "utm_source", "utm_medium", "utm_campaign",
                     "utm_content", "utm_term", "browser", "browser_version", "os", "os_version",
                     "device_type", "screen_size", "country_code", "region", "city", "channel")
#: The columns of a session row and their types, in file order (the public Parquet contract,
#: docs/storage.md).
COLUMNS: Final = {"start_time": "TIMESTAMP", "duration_us": "BIGINT", "pageviews": "BIGINT",
                  "events": "BIGINT", "revenue": "DECIMAL(18,2)", "entry_page": "VARCHAR",
                  "exit_page": "VARCHAR", "visitor_keys": "UBIGINT[]",
                  **{a: "VARCHAR" for a in ATTRIBUTES},
                  "entry_page_hostname": "VARCHAR", "exit_page_hostname": "VARCHAR"}
#: The format of stored session rows: part of every stored partition's fingerprint, so that files of
#: an earlier format (other columns) are stale, never read, and built again. Format 1: up to mallard's
#: schema version 2 (no ``channel``, ``entry_page_hostname``, ``exit_page_hostname``).
FORMAT: Final = 2


def version(gap_seconds: int) -> str:
    """The version the fingerprint of sessions stored with this session window hashes."""
    return f"{int(gap_seconds)}/format-{FORMAT}"


def visitor_key(column: str) -> str:
    """SQL of a visitor id's 64-bit key: the first 16 hex digits of mallard's ids (HMAC-SHA256 hex,
    uniformly random), the MD5-based number of any other id (rows written by other tools)."""
    return (f"coalesce(CASE WHEN length({column}) = 64 THEN TRY_CAST('0x' || left({column}, 16) AS "
            f"UBIGINT) END, md5_number_lower({column}))")


#: An event ``e`` belongs to the session ``s`` (a stored session row unnested on ``vid``, with its
#: ``end_time``) of one of its visitor ids whose time span holds it (an actor's sessions are more than the
#: session window apart).
BELONGS: Final = (f"{visitor_key('e.visitor_id')} = s.vid AND e.timestamp BETWEEN s.start_time AND "
                  "s.end_time")


def reaching(lower: object, upper: object, since: object | None = None) -> Sql:
    """The condition on session rows (with ``end_time``) that they reach ``[lower, upper)``; with
    ``since``, only those starting then or later (none earlier can reach it: not read)."""
    cond = Sql("end_time >= ? AND start_time < ?", (lower, upper))
    return cond if since is None else cond + Sql(" AND start_time >= ?", (since,))


def with_end_time(session_rows: Sql) -> Sql:
    """``session_rows`` (stored session rows) with each session's ``end_time`` (its last event)."""
    return "SELECT *, start_time + to_microseconds(duration_us) AS end_time FROM (" + session_rows + ")"


def rows(gap_seconds: int, source: str = "scoped") -> tuple[list[tuple[str, Sql]], Sql]:
    """CTEs and the SELECT of full session rows (:data:`COLUMNS`) over ``source``'s events."""
    with_ctes = ctes(gap_seconds, attributes=ATTRIBUTES, flags=(), pages=tuple(PAGES),
                     extras=("max(ts_us) - min(ts_us) AS duration_us", "count(*) AS events",
                             "sum(revenue_amount)::DECIMAL(18,2) AS revenue",
                             f"list_sort(list(DISTINCT {visitor_key('visitor_id')})) AS visitor_keys"),
                     source=source)
    select = Sql("SELECT start AS start_time, duration_us, pageviews, events, revenue, entry_page, "
                 "exit_page, visitor_keys, "
                 + ", ".join(f"s_{a} AS {a}" for a in ATTRIBUTES)
                 + ", entry_page_hostname, exit_page_hostname FROM sessions")
    return with_ctes, select


def relation(gap_seconds: int, events: Sql) -> Sql:
    """One statement of the session rows of every event of ``events`` (a relation with the lake
    columns): the definition the stored relation must equal, used as the reference in tests."""
    with_ctes_, select = rows(gap_seconds)
    return with_ctes([("scoped", with_computed(events)), *with_ctes_], select)
