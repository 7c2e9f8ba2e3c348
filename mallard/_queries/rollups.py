"""Per-day rollups of the event metrics: ``rollups/site_id=<site>/date=<UTC day>/`` (docs/storage.md).

For each UTC day: one row per value of every rolled dimension (:data:`DIMENSIONS`: the dimensions whose
value is each event's own) and one total row (``dimension = ''``), each with the day's ``visitors``
(distinct visitor ids), ``pageviews``, ``events`` and ``revenue``; the total row also carries the day's
distinct ``visitor_keys`` (sessions.visitor_key), sorted.

A query with no filter, at most one rolled dimension, a time bucket (if any) of a day or more in UTC
and metrics among :data:`METRICS` reads these rows instead of the events (the planner decides); the parts
of the days at the ends of a range that does not start or end at a UTC midnight (another time zone) are
computed from their events in the same shape. Pageviews, events and revenue add up over days. Visitors
add up only when no visitor id occurs on two days of the range: daily ids give that (the salt, and with
it every id, changes each UTC day) unless events were tracked with another day's timestamp. It is
checked per query from the keys (the sum over days of each day's number of keys equals the number of
distinct keys of the range); when the check fails the query reads the events.

Custom properties are rolled up too: per key an event carries (its ``props`` JSON object's keys), a row
of dimension :data:`PROPERTY_KEYS` whose value is the key, counted over the events carrying it (the
property list, properties.py); and per key and value a row of dimension ``event:props:<key>``, counted
over the events carrying the key (the breakdown by a property once the events without it are filtered
out, as the dashboard's Properties panel does; :func:`filters_roll` checks that the filters drop them).

Days are stored like sessions (one fingerprint of the day's event files, the freshness rule of
stored.py) by the same maintenance pass; today is stored provisionally (up to a horizon, provisional.py)
and completed when read (:func:`since_horizon`); the other days of a range (days changed since, days
with events this process buffers) are computed from the events for the query.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Final

import pyarrow as pa

from .._store.derived import fingerprint
from . import provisional
from .filters import Filter, behaviours, conditions, keeps_missing
from .freshness import Computed, LiveCache
from .registry import ATTRIBUTION_COLUMNS, Dimension
from .registry import DIMENSIONS as ALL_DIMENSIONS
from .registry import METRICS as ALL_METRICS
from .revenue import REVENUE_METRICS
from .sessions import visitor_key
from .sql import Sql, with_ctes
from .stored import Reading, split, union

if TYPE_CHECKING:
    from .._store import Store
    from .._store.derived import DerivedPartition
    from .._store.reader import Reader
    from .model import Query

__all__ = ["ALL", "COLUMNS", "DIMENSIONS", "METRICS", "PROPERTY_KEYS", "VERSION", "RollupRows", "answers",
           "build", "compute", "day_local", "filters_roll", "for_query", "holds", "rolled", "rows",
           "since_horizon"]

#: Part of every rollup file's fingerprint: a change of the columns or their meaning makes old files stale.
VERSION: Final = 2
_DAY: Final = timedelta(days=1)
_MICROSECOND: Final = timedelta(microseconds=1)

#: Dimensions rolled up per day: those an event carries itself (not its session's attribution), with
#: the values as stored (not renamed, vocabulary.py).
DIMENSIONS: Final = tuple(name for name, d in ALL_DIMENSIONS.items()
                          if d.column is not None and d.column not in ATTRIBUTION_COLUMNS
                          and d.words is None)
#: The dimension of the rows that count each custom property key (value: the key).
PROPERTY_KEYS: Final = "event:props"
_PROPS: Final = "event:props:"
#: Keys whose values are rolled up: those a query can name (registry.py's rule for event:props:<key>).
_QUERYABLE_KEY: Final = "[A-Za-z0-9_. :$-]{1,128}"
#: Metrics answered from rollup rows, and how (sums over days; visitors once checked, see above).
METRICS: Final = {
    "visitors": "sum(visitors)::BIGINT",
    "pageviews": "sum(pageviews)::BIGINT",
    "events": "sum(events)::BIGINT",
    "total_revenue": "sum(revenue)",
    "views_per_visitor": "coalesce(sum(pageviews) / nullif(sum(visitors), 0), 0)",
}
#: The columns of a rollup row and their types, in file order (the public Parquet contract).
COLUMNS: Final = {"dimension": "VARCHAR", "value": "VARCHAR", "visitors": "BIGINT", "pageviews": "BIGINT",
                  "events": "BIGINT", "revenue": "DECIMAL(38,2)", "visitor_keys": "UBIGINT[]"}
_EMPTY: Final = ", ".join(["NULL::DATE AS day", *(f"NULL::{t} AS {c}" for c, t in COLUMNS.items())]) \
    + " WHERE false"


#: Every dimension of the stored rows: the rolled ones, the property keys and every property's values.
ALL: Final = (*DIMENSIONS, PROPERTY_KEYS, _PROPS)


def rolled(name: str) -> bool:
    """Whether rollup rows answer a breakdown by the dimension ``name`` (a property's: see above)."""
    return name in DIMENSIONS or name.startswith(_PROPS)


def rows(source: str = "scoped", dimensions: Iterable[str] = ALL) -> Sql:
    """SELECT of the rollup rows (with their ``day``) of the events of ``source``: the total rows and
    those of ``dimensions`` (``event:props:`` alone: every property's values; ``event:props:<key>``: that
    key's)."""
    wanted = list(dimensions)
    counts = (f"{ALL_METRICS['visitors'].expr} AS visitors, {ALL_METRICS['pageviews'].expr} AS pageviews, "
              f"{ALL_METRICS['events'].expr} AS events, "
              f"{ALL_METRICS['total_revenue'].expr}::DECIMAL(38,2) AS revenue")
    total = Sql(f"SELECT timestamp::DATE AS day, '' AS dimension, NULL::VARCHAR AS value, {counts}, "
                f"list_sort(list(DISTINCT {visitor_key('visitor_id')})) AS visitor_keys "
                f"FROM {source} GROUP BY day")
    parts = [total] + [
        Sql(f"SELECT timestamp::DATE AS day, '{name}' AS dimension, {ALL_DIMENSIONS[name].column} AS value, "
            f"{counts}, NULL::UBIGINT[] AS visitor_keys FROM {source} GROUP BY day, value")
        for name in wanted if name in DIMENSIONS]
    # one row per event and key it carries (JSON that is not an object has none; text that is not JSON,
    # from a file another tool wrote, is skipped as properties.py skips it)
    keyed = (f"(SELECT *, timestamp::DATE AS day, unnest(CASE WHEN json_valid(props) THEN json_keys(props) "
             f"END) AS key FROM {source} WHERE props IS NOT NULL)")
    if PROPERTY_KEYS in wanted:
        parts.append(Sql(f"SELECT day, '{PROPERTY_KEYS}' AS dimension, key AS value, {counts}, "
                         f"NULL::UBIGINT[] AS visitor_keys FROM {keyed} GROUP BY day, key"))
    keys = [d[len(_PROPS):] for d in wanted if d.startswith(_PROPS)]
    if keys:  # the value as registry.py's event:props:<key> reads it
        only = Sql("") if "" in keys else Sql(" AND list_contains(?, key)", (keys,))
        parts.append(Sql(f"SELECT day, '{_PROPS}' || key AS dimension, json_extract_string(props, "
                         f"'$.\"' || key || '\"') AS value, {counts}, NULL::UBIGINT[] AS visitor_keys "
                         f"FROM {keyed} WHERE regexp_full_match(key, '{_QUERYABLE_KEY}')")
                     + only + " GROUP BY day, key, value")
    return Sql.join(parts, " UNION ALL ")


def answers(q: Query, ev_metrics: Sequence[str], plain: Sequence[Dimension], bucket: str | None,
            bounds: tuple[datetime, datetime]) -> bool:
    """Whether the event metrics of ``q`` (the planner's split) can read the rollups: metrics that add
    up over days, at most one dimension (``plain``) and it rolled, no filter but on that dimension
    (:func:`filters_roll`), and a time bucket (if any) made of whole UTC days. (Without a bucket the
    range may be in any time zone: the parts of its end days are computed from events.)"""
    return (bool(ev_metrics) and all(m in METRICS and m not in REVENUE_METRICS for m in ev_metrics)
            and len(plain) <= 1 and all(rolled(d.name) and d.words is None for d in plain)
            and filters_roll(q.filters, plain)
            and (bucket is None or (bucket != "hour" and q.date_range.tz == "UTC"
                                    and all(b.time() == datetime.min.time() for b in bounds))))


def filters_roll(filters: Filter | None, plain: Sequence[Dimension]) -> bool:
    """Whether the rollup rows of the dimension ``plain`` names (if any) answer under ``filters``: none,
    or conditions (no has_done) on that dimension only, which keep or drop whole rows (an event has one
    value). A custom property's rows are of the events carrying it: its conditions must drop the
    events without it."""
    if filters is None:
        return all(d.prop_key is None for d in plain)
    if len(plain) != 1 or any(True for _ in behaviours(filters)):
        return False
    dim = plain[0]
    return (all(c.dimension.name == dim.name and c.dimension.goals is None for c in conditions(filters))
            and (dim.prop_key is None or not keeps_missing(filters)))


@dataclass(frozen=True, slots=True)
class RollupRows:
    """The rollup rows a query reads: stored files and rows computed now (same columns)."""

    files: tuple[str, ...]
    live: pa.Table | None
    live_days: frozenset[date]
    #: What the rows are derived from (stored files by name, computed rows by the fingerprint of the
    #: files and the mark of the buffered events they read): the key under which :func:`day_local`
    #: remembers its answer for the open days.
    source: Hashable | None = None
    #: SQL of rows to add (an open day's since its provisional file's horizon, :func:`since_horizon`).
    since: Sql | None = None
    #: The stored files of settled days (not provisional): their rows change only with the files.
    settled: tuple[str, ...] = ()

    @property
    def view(self) -> str:
        """The name under which :attr:`live` is registered for a statement."""
        return f"__mallard_rollups_{id(self)}"

    def relation(self) -> Sql:
        """SQL of the union, with a ``day`` column (:attr:`live` registered as :attr:`view`)."""
        rows = union(_EMPTY, '"date"::DATE AS day, * EXCLUDE (site_id, "date")', self.files, self.live,
                     self.view)
        return rows if self.since is None else rows + " UNION ALL BY NAME " + self.since


def for_query(store: Store, reading: Reading, reader: Reader, site: str, lower: datetime,
              upper: datetime, dimension: str, *, cache: LiveCache | None,
              stored: bool = True) -> RollupRows | None:
    """The rollup rows of ``dimension`` (``''``: the totals) and the total rows of ``[lower, upper)``
    (naive UTC): of its whole UTC days, stored where fresh (unless ``stored`` is False); of the others,
    and of the parts of the days at either end that are not whole (a range in another time zone), computed
    from the events of the range, the computed part registered on ``reader``. An open day's fresh
    provisional rollups (provisional.py) are read as stored, with the rows of its events since their
    horizon (:func:`since_horizon`). None when no day is stored and fresh: reading the events is then
    cheaper. Before adding up their visitors, check :func:`day_local` (an end day's part is a part of one
    UTC day: its ids are that day's)."""
    first, last = lower.date(), (upper - _MICROSECOND).date()
    held = reader.buffered_dates()
    listing = store.rollup_files.listing(site) if stored else {}
    wanted = {d for d in set(store.lake.dates(site)) | held if first <= d <= last}
    ends = {d for d in (first, last) if not (_midnight(d) >= lower and upper - _midnight(d) >= _DAY)}
    files, live = split(store, site, {d: p for d, p in listing.items() if d not in ends}, wanted, VERSION,
                        held)
    settled = tuple(files)
    held_since = reader.buffered_since()
    opened = {d: listing[d] for d in sorted(live & listing.keys() - ends) if listing[d].horizon is not None
              and provisional.fresh(store, site, listing[d], VERSION, held_since)}
    files += [p.path for p in opened.values()]
    live -= opened.keys()
    if not files:
        return None
    done: list[Computed] = []
    table = bounds = None
    if live:  # only the rows this query reads
        bounds = (lower, upper) if live & ends else None
        key = ("rollups", site, frozenset(live), dimension, bounds)

        def run() -> Computed:
            return compute(store, reading, site, live, (dimension,), bounds=bounds)

        done.append(run() if cache is None else cache.computed(key, store, VERSION, held, run,
                                                               reader.buffered_mark))
        table = done[0].table
    added: list[Sql] = []
    for part in opened.values():
        events, rows_since = since_horizon(store, reading, reader, site, part, dimension, cache=cache,
                                           held=held)
        done.append(events)
        added += [] if rows_since is None else [rows_since]
    # the check reads the total rows only, the same whichever dimension's rows came with them
    source: Hashable | None = (tuple(files), frozenset(live), bounds,
                               tuple((d.fingerprint, d.mark) for d in done))
    got = RollupRows(tuple(files), table, frozenset(live | opened.keys()), source,
                     Sql.join([Sql("SELECT * FROM (") + q + ")" for q in added], " UNION ALL BY NAME ")
                     if added else None, settled)
    if got.live is not None:
        reader.register(got.view, got.live)
    return got


def since_horizon(store: Store, reading: Reading, reader: Reader, site: str, part: DerivedPartition,
                  dimension: str, *, cache: LiveCache | None, held: set[date]) -> tuple[Computed, Sql | None]:
    """The rows of ``dimension`` (and the total rows) to add to the provisional rollups ``part`` of an
    open day (the rows of its events before the horizon ``H``) for the day's events at or after ``H``.

    Pageviews, events and revenue are those of the events at or after ``H``. A value's visitors are
    those with an event of that value at or after ``H`` and none before: of the visitors with an event
    at or after ``H`` (few: the events since the horizon, a few minutes'), those with the value on the
    day minus those with it before ``H``; the total row's keys are the keys of the visitors whose first
    event of the day is at or after ``H``. Those visitors' events of the day are fetched once (and kept
    in ``cache``) and registered on ``reader``; returned with the SQL of the rows computed from them
    (None: no event since the horizon), which the query's statement runs (a few hundred rows: cheaper
    there than in a statement of its own)."""
    assert part.horizon is not None
    horizon, day = part.horizon, part.day
    version = f"{VERSION}/since={horizon.isoformat()}"

    def fetch() -> Computed:
        with reading(site, day, day) as own:
            src, params = own.source()
            scoped = Sql(f"SELECT * FROM ({src}) WHERE site_id = ? AND timestamp >= ? AND timestamp < ?",
                         (*params, site, _midnight(day), _midnight(day) + _DAY))
            ids = with_ctes([("scoped", scoped)],
                            Sql("SELECT DISTINCT visitor_id FROM scoped WHERE timestamp >= ?", (horizon,)))
            visitors = own.execute(ids.text, ids.params).column(0)
            table = own.execute(scoped.text + " AND list_contains(?, visitor_id)",
                                (*scoped.params, visitors.to_pylist())) if len(visitors) else None
            files, mark = own.files, own.mark_for(day, day)
        return Computed(table if table is not None else pa.table({"visitor_id": visitors}), site, day, day,
                        files, fingerprint(files, version), mark)

    events = fetch() if cache is None else cache.computed(("rollups-since", site, part.path), store, version,
                                                          held, fetch, reader.buffered_mark)
    if not events.table.num_rows:  # no event since the horizon
        return events, None
    name = f"__mallard_since_{id(events)}"
    reader.register(name, events.table)
    newcomers = f"SELECT visitor_id FROM {name} GROUP BY visitor_id HAVING min(timestamp) >= ?"
    return events, with_ctes(
        [("since_rel", Sql(f"SELECT * FROM {name}")),
         ("since_before", Sql("SELECT * FROM since_rel WHERE timestamp < ?", (horizon,))),
         ("since_plus", rows("since_rel", (dimension,))), ("since_minus", rows("since_before", (dimension,))),
         ("since_keys", Sql(f"SELECT list_sort(list({visitor_key('visitor_id')})) AS k FROM ({newcomers})",
                            (horizon,)))],
        Sql("SELECT p.day, p.dimension, p.value, (p.visitors - coalesce(m.visitors, 0))::BIGINT AS "
            "visitors, (p.pageviews - coalesce(m.pageviews, 0))::BIGINT AS pageviews, "
            "(p.events - coalesce(m.events, 0))::BIGINT AS events, "
            "(p.revenue - coalesce(m.revenue, 0))::DECIMAL(38,2) AS revenue, "
            "CASE WHEN p.dimension = '' THEN coalesce((SELECT k FROM since_keys), []) END::UBIGINT[] "
            "AS visitor_keys FROM since_plus p LEFT JOIN since_minus m ON p.day = m.day AND "
            "p.dimension = m.dimension AND p.value IS NOT DISTINCT FROM m.value"))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time())


def day_local(reader: Reader, rolled: RollupRows, cache: LiveCache | None = None) -> bool:
    """Whether no visitor id occurs on two days of ``rolled`` (so that their visitors add up).

    Checked in two steps, each reading the total rows' keys. The settled days' stored files: the sum
    over days of each day's number of keys equals the number of distinct keys; remembered in
    ``cache`` by those files, which never change (at 5M events, 0.1 s for 30 days). Then the open
    days (computed now, or provisional with the rows since their horizon, which change with every
    flush): their keys are distinct across them and none is a settled day's key (a semi-join of their
    few keys against the settled ones, remembered by the rows' source when they have one)."""
    if len(rolled.files) + len(rolled.live_days) <= 1:
        return True
    settled = rolled.settled
    if len(settled) > 1:
        def check_settled() -> bool:
            rows = union(_EMPTY, '"date"::DATE AS day, * EXCLUDE (site_id, "date")', settled, None, "")
            # array_length, not len: a list's length in any dialect (len is a text's too)
            return holds(reader, Sql("SELECT coalesce(sum(array_length(visitor_keys)), 0) = (SELECT "
                                      "count(DISTINCT k) FROM (SELECT unnest(visitor_keys) AS k FROM "
                                      "totals)) FROM totals"), rows, materialize=("totals",))

        if not (check_settled() if cache is None else cache.fact(("day_local", settled), check_settled,
                                                                      lasting=True)):
            return False
    opened = sorted(rolled.live_days)
    if not opened:
        return True

    def check_open() -> bool:
        return holds(reader, Sql(
            "SELECT (SELECT count(*) FROM opened) = (SELECT count(DISTINCT k) FROM opened) AND (SELECT "
            "count(*) FROM (SELECT unnest(visitor_keys) AS k FROM totals WHERE NOT list_contains(?, day)) "
            "WHERE k IN (SELECT k FROM opened)) = 0", (opened,)), rolled.relation(),
            ("opened", Sql("SELECT unnest(visitor_keys) AS k FROM totals WHERE list_contains(?, day)",
                           (opened,))), materialize=("opened",))

    if cache is None or rolled.source is None:
        return check_open()
    return cache.fact(("day_local_open", rolled.source), check_open)


def holds(reader: Reader, test: Sql, rows: Sql, *more: tuple[str, Sql],
          materialize: tuple[str, ...]) -> bool:
    """The boolean ``test`` reads over ``totals`` (the day and keys of the total rows among ``rows``)
    and the CTEs ``more`` (those named in ``materialize`` buffered)."""
    sql = with_ctes([("totals", "SELECT day, visitor_keys FROM (" + rows + ") WHERE dimension = ''"),
                     *more], test, materialize=materialize)
    return bool(reader.execute(sql.text, sql.params).column(0)[0].as_py())


def compute(store: Store, reading: Reading, site: str, days: Iterable[date],
            dimensions: Iterable[str] = ALL, *,
            bounds: tuple[datetime, datetime] | None = None) -> Computed:
    """The total rows and the rows of ``dimensions`` of ``days``, computed from the events ``reading``
    gives (buffered ones too); with ``bounds``, of their events in ``[lower, upper)`` only."""
    wanted = sorted(days)
    with reading(site, wanted[0], wanted[-1]) as reader:
        src, params = reader.source()
        scoped = Sql(f"SELECT * FROM ({src}) WHERE site_id = ? AND list_contains(?, timestamp::DATE)",
                     (*params, site, wanted))
        if bounds is not None:
            scoped = scoped + Sql(" AND timestamp >= ? AND timestamp < ?", bounds)
        sql = with_ctes([("scoped", scoped)],
                        rows(dimensions=dimensions) + " ORDER BY day, dimension, value NULLS FIRST")
        table = reader.execute(sql.text, sql.params)
        files, mark = reader.files, reader.mark_for(wanted[0], wanted[-1])
    return Computed(table, site, wanted[0], wanted[-1], files, fingerprint(files, VERSION), mark)


def build(store: Store, site: str, day: date) -> None:
    """Compute and store the rollup rows of ``day`` from the lake's files (buffered events are not
    read: the fingerprint is of files; a file written since makes the partition stale at once)."""
    done = compute(store, store.reading, site, [day])
    table = done.table.drop_columns(["day"])
    store.rollup_files.publish(site, day, table, done.files, day, day, VERSION)
