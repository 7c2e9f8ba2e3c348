"""Your own SQL over the relations ``events`` and ``sessions`` (:meth:`mallard.Queries.sql`).

``events`` is every stored row (and, under ``Mallard.queries``, the process's buffered ones), with the
full typed lake schema. ``sessions`` is one row per session with the columns of the stored sessions
(docs/storage.md, "Sessions") after ``site_id``: the stored rows of the days whose events have not
changed since they were built, and rows computed from events for the others (the open days, days
changed since, buffered events), exactly as the queries read them. It is built only when the statement
names it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import duckdb
import pyarrow as pa

from .._errors import InvalidQueryError
from .freshness import LiveCache
from .sql import Sql, with_ctes
from .stored import Reading, SessionRows, discard_unreadable, gather, stored_or_events

if TYPE_CHECKING:
    from .._store import Store
    from .._store.reader import Reader

__all__ = ["run_sql", "sessions_relation"]

# A word "sessions" anywhere (a string literal too): building the relation for nothing costs time only.
_NAMES_SESSIONS: Final = re.compile(r"\bsessions\b", re.IGNORECASE)


def run_sql(store: Store, reading: Reading, cache: LiveCache, gap_seconds: int, text: str,
            params: Sequence[object], site: str | None, sites: Sequence[str]) -> pa.Table:
    """Run ``text`` over ``events`` and ``sessions`` of ``site`` (None: of ``sites``) → Arrow table.

    Raises:
        InvalidQueryError: the statement fails (syntax, unknown column, …).
    """
    with reading(site, None, None) as reader:
        src, src_params = reader.source("all")
        events = ("events", Sql(src, tuple(src_params)))

        def attempt(stored: bool, read: list[str]) -> pa.Table:
            ctes = [events]
            if _NAMES_SESSIONS.search(text):
                scope = [site] if site is not None else list(sites)
                ctes.append(("sessions", sessions_relation(store, reading, reader, scope, gap_seconds, cache,
                                                           stored=stored, read=read)))
            # The caller's statement runs as a subquery, so it may have its own WITH clause.
            sql = with_ctes(ctes, Sql(f"SELECT * FROM ({text})", tuple(params)))
            return reader.execute(sql.text, sql.params)

        try:  # an unreadable stored sessions file: the sessions computed from events
            return stored_or_events(attempt, lambda files: discard_unreadable(store, files))
        except duckdb.Error as exc:
            if isinstance(exc, (duckdb.IOException, duckdb.InterruptException)):
                raise
            raise InvalidQueryError(f"SQL error: {exc}", code="invalid_sql") from None


def sessions_relation(store: Store, reading: Reading, reader: Reader, sites: Sequence[str],
                      gap_seconds: int, cache: LiveCache | None, *, stored: bool = True,
                      read: list[str] | None = None) -> Sql:
    """SQL of every session of ``sites`` (``site_id`` and the stored session columns), their computed
    rows registered on ``reader``; stored rows where fresh unless ``stored`` is False (their files
    listed in ``read``)."""
    held = reader.buffered_dates()
    parts: list[Sql] = []
    kept: list[SessionRows] = []  # alive until the statement is built: each view is named by its id()
    for site in sites:
        days = sorted(set(store.lake.dates(site)) | held)
        if not days:
            continue
        rows = gather(store, reading, site, days[0], days[-1], gap_seconds, buffered=held, cache=cache,
                      stored=stored, held_since=reader.buffered_since(), mark=reader.buffered_mark)
        kept.append(rows)
        if read is not None:
            read.extend(rows.files)
        if rows.live is not None:
            reader.register(rows.view, rows.live)
        parts.append(Sql("SELECT ?::VARCHAR AS site_id, * FROM (", (site,)) + rows.relation() + ")")
    if not parts:  # typed, empty
        empty = SessionRows((), None, frozenset(), ())
        parts.append("SELECT NULL::VARCHAR AS site_id, * FROM (" + empty.relation() + ")")
    return Sql.join(parts, " UNION ALL BY NAME ")
