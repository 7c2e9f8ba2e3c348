"""Funnels and sequence conversion (behavioral-analytics.md §5.2 and §5.4), in plain DuckDB SQL.

A step is ``page:<path>`` (a pageview of exactly that pathname) or ``event:<name>`` (a custom event of that
name; ``event:pageview`` is rejected), so every event belongs to at most one step *class* and two steps
select either the same events or disjoint ones. An identity's **level** is the largest k such that k
distinct events e1…ek in scope satisfy steps 1…k with ``ts(e1) <= … <= ts(ek)`` (equal timestamps in any
order: ties never hurt) and ``ts(ek) − ts(e1) <= window`` (inclusive, from step 1): exactly ClickHouse
``windowFunnel(window_us, 'strict_once')`` on microsecond timestamps. A sequence converts at level n with
no window.

Identity: an event counts for its stable ``user_id`` pseudonym where it carries one, else for its session
actor (the visitor id, joined across one salt change through ``visitor_id_prev``, as in sessions.py).
Filters select identities: those with an event in scope belonging to a session that matches the filter
(the session of the stored relation, whole, as every query reads it: visit dimensions are read on the
session, event dimensions on any of its events in scope); their funnel then uses all of their events in
scope.

:TRICKY: because step classes are disjoint or identical, a greedy scan is exact (§5.2's recipe): for each
entry timestamp t1 (one with a step-1 event), step i of class c stays at the current timestamp when an
unused class-c event is left there (count at that timestamp minus steps of class c already placed there),
else moves to the next class-c timestamp; the chain stops past ``t1 + window``. The level is the best
over entries, so "reached step i" is "some entry's chain reached i". Each step is one ASOF join on the
per-(identity, class, timestamp) counts; nothing depends on the physical order of rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from .._errors import InvalidQueryError
from . import sessions as _sessions
from .filters import FilterInput
from .periods import DateRange
from .results import Record, Report
from .selection import keep_ctes, needs, read_selected
from .sql import Sql, with_ctes

if TYPE_CHECKING:
    from .access import Access

__all__ = ["FUNNEL_COLUMNS", "MAX_STEPS", "MAX_WINDOW_SECONDS", "Step", "compile_funnel", "funnel",
           "parse_steps", "parse_window", "sequences"]

MAX_STEPS: Final = 32
FUNNEL_COLUMNS: Final = ("step", "label", "visitors", "conversion_rate", "step_conversion_rate",
                          "median_seconds")
MAX_STEP_VALUE: Final = 2048
MAX_WINDOW_SECONDS: Final = 366 * 86_400
_UNITS: Final = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400, "week": 7 * 86_400}
_WINDOW: Final = re.compile(r"(\d{1,12})(?:\s*(second|minute|hour|day|week)s?)?", re.ASCII | re.IGNORECASE)
_BASE_COLUMNS: Final = ("visitor_id", "visitor_id_prev", "user_id", "timestamp", "event_name", "pathname")
# The identity of an event: its user_id pseudonym, else its session actor; the kind flag keeps the two
# namespaces apart (a user id and a visitor id that are equal strings are different identities).
# :TRICKY: an identity is keyed by one 64-bit hash ``ik`` of (kind, id), not by the id text: grouping,
# windows and ASOF joins on one fixed-width key are ~2x faster than on 64-character strings (and a 128-bit
# key, two hashes, cost 15% more at 10M events). Two identities merge only if their hashes collide: with n
# identities in scope the chance that any pair does is about n^2 / 2^65 (1e-7 for 2 million), and the
# effect is one count off by one. The identity itself is far coarser: a visitor id already merges
# everybody behind one IP address with one browser.
_IDENT_ID: Final = "coalesce({p}user_id, {p}actor)"
_IDENT_KEYS: Final = "hash({id}, {p}user_id IS NULL) AS ik, {p}user_id IS NOT NULL AS by_user"


def _ident_keys(prefix: str = "") -> str:
    return _IDENT_KEYS.format(id=_IDENT_ID.format(p=prefix), p=prefix)


@dataclass(frozen=True, slots=True)
class Step:
    """One funnel step: a pageview of ``value`` (``kind="page"``) or a custom event named ``value``."""

    kind: Literal["page", "event"]
    value: str

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.value}"

    def condition(self) -> Sql:
        """Boolean SQL selecting the step's events (the value is bound)."""
        if self.kind == "page":
            return Sql("(event_name = 'pageview' AND pathname = ?)", (self.value,))
        return Sql("(event_name = ?)", (self.value,))


def parse_steps(steps: Sequence[str] | str, *, min_steps: int = 1) -> tuple[Step, ...]:
    """Validated steps from ``["page:/", "event:Signup"]`` or the API's ``"page:/,event:Signup"``.

    Raises:
        InvalidQueryError: not a list of strings, too few or more than 32 steps, an unknown prefix, an empty
            or too long value, or ``event:pageview``.
    """
    items = [s.strip() for s in steps.split(",")] if isinstance(steps, str) else steps
    if not isinstance(items, Sequence) or not all(isinstance(s, str) for s in items):
        raise InvalidQueryError("steps must be a list of strings such as 'page:/pricing' or "
                                "'event:Signup'.", code="invalid_steps")
    if not min_steps <= len(items) <= MAX_STEPS:
        raise InvalidQueryError(f"A funnel needs {min_steps} to {MAX_STEPS} steps; got {len(items)}.",
                                code="invalid_steps")
    out: list[Step] = []
    for item in items:
        kind, sep, value = item.strip().partition(":")
        value = value.strip()
        if not sep or kind not in ("page", "event"):
            raise InvalidQueryError(f"Invalid step {item[:100]!r}: use 'page:<path>' or 'event:<name>'.",
                                    code="invalid_steps")
        if not value or len(value) > MAX_STEP_VALUE:
            raise InvalidQueryError(f"A step value must be 1 to {MAX_STEP_VALUE} characters.",
                                    code="invalid_steps")
        if kind == "event" and value == "pageview":
            raise InvalidQueryError("'event:pageview' is not a step: use 'page:<path>' for pageviews.",
                                    code="invalid_steps")
        out.append(Step("page" if kind == "page" else "event", value))
    return tuple(out)


def parse_window(text: str | int) -> int:
    """Seconds from ``"N unit"`` (second(s), minute(s), hour(s), day(s), week(s)) or plain seconds.

    Raises:
        InvalidQueryError: any other text, or a window outside 1 second .. 366 days.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise InvalidQueryError("window must be a text such as '1 day' or a number of seconds.",
                                code="invalid_window")
    if isinstance(text, int):
        return check_window(text)
    match = _WINDOW.fullmatch(text.strip())
    if match is None:
        raise InvalidQueryError(f"Invalid window {text[:100]!r}: use 'N seconds|minutes|hours|days|weeks' "
                                "or a number of seconds.", code="invalid_window")
    unit = _UNITS[(match.group(2) or "second").lower()]
    return check_window(int(match.group(1)) * unit)


def check_window(seconds: object) -> int:
    """``seconds`` if it is an integer from 1 to 366 days (in seconds), else InvalidQueryError."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= MAX_WINDOW_SECONDS:
        raise InvalidQueryError(f"The funnel window must be 1 to {MAX_WINDOW_SECONDS} seconds (366 days).",
                                code="invalid_window")
    return seconds


def compile_funnel(site: str, rng: DateRange, steps: Sequence[Step], window_us: int | None, *,
                   source: Sql, filters: Any = None, gap_seconds: int = 1800,
                   sessions: Sql | None = None) -> Sql:
    """SQL of one row: ``total`` identities in scope, ``by_user`` of them user ids, ``v1``…``vn``.

    ``v_i`` = identities whose level is at least i; ``window_us=None`` means no window (sequences).
    ``sessions``: the session rows starting in the range or reaching into it (stored.py), needed with
    ``filters``.
    """
    classes: dict[Step, int] = {}
    cls = [classes.setdefault(s, len(classes)) for s in steps]
    lower, upper = rng.bounds()
    scoped = Sql("SELECT " + needs(_BASE_COLUMNS, filters) + " FROM events "
                 "WHERE site_id = ? AND timestamp >= ? AND timestamp < ?", (site, lower, upper))
    ctes: list[tuple[str, Sql]] = [("events", source), ("scoped", scoped)]
    keep = Sql("")
    ctes += [c for c in _sessions.ctes(gap_seconds, attributes=(), flags=()) if c[0] == "actors"]
    if filters is not None:
        if sessions is None:
            raise ValueError("a filtered funnel reads sessions: pass their relation")
        ctes += keep_ctes(filters, sessions, lower, upper, events="actors", ident=_ident_keys())
        keep = Sql(" WHERE ik IN (SELECT ik FROM keep)")
    case = Sql.join([Sql("WHEN ") + step.condition() + f" THEN {i}" for step, i in classes.items()], " ")
    ctes.append(("ev", "SELECT * FROM (SELECT " + _ident_keys() + ", epoch_us(timestamp) AS ts_us, "
                 "CASE " + case + " END AS cls FROM actors)" + keep))
    # Per identity, class and timestamp: how many events, and the class's next timestamp. (Only a class
    # that two steps share ever needs to move past an event it already used: without one, the step's
    # timestamp is simply the first of its class at or after the previous step's.)
    shared = len(classes) < len(steps)
    ctes.append(("g", Sql("SELECT ik, cls, ts_us, count(*) AS n" + (
        ", lead(ts_us) OVER (PARTITION BY ik, cls ORDER BY ts_us) AS next_us" if shared else "")
        + " FROM ev WHERE cls IS NOT NULL GROUP BY ik, cls, ts_us")))
    for k in sorted(set(cls)):
        ctes.append((f"g{k}", Sql(f"SELECT * FROM g WHERE cls = {k}")))
    # Entries: every step-1 timestamp, as a later one may fit the window better. Without a window the
    # earliest one dominates (a chain from a later entry is also one from it), so it alone is kept.
    ctes.append(("s1", Sql(f"SELECT ik, ts_us AS p1 FROM g{cls[0]}" if window_us is not None
                           else f"SELECT ik, min(ts_us) AS p1 FROM g{cls[0]} GROUP BY ik")))
    limit = "" if window_us is None else " AND p{i} - p1 <= ?"
    for i in range(2, len(steps) + 1):
        k, prev = cls[i - 1], f"s.p{i - 1}"
        # steps of class c already placed at the current timestamp
        placed = " + ".join([f"(s.p{j} = {prev})::INTEGER" for j in range(1, i) if cls[j - 1] == k]) or "0"
        pick = "a.ts_us" if placed == "0" else (
            f"CASE WHEN a.ts_us > {prev} THEN a.ts_us WHEN a.n > {placed} THEN {prev} ELSE a.next_us END")
        body = Sql(f"SELECT * FROM (SELECT s.*, {pick} AS p{i} FROM s{i - 1} s ASOF JOIN g{k} a "
                   f"ON a.ik = s.ik AND a.ts_us >= {prev}) WHERE p{i} IS NOT NULL"
                   + limit.format(i=i), () if window_us is None else (window_us,))
        ctes.append((f"s{i}", body))
    counts = ", ".join(f"(SELECT count(DISTINCT ik) FROM s{i}) AS v{i}" for i in range(1, len(steps) + 1))
    if window_us is not None:
        # Time to convert: per identity, the shortest p_i - p1 over its entries. The greedy chain from an
        # entry places every step at its earliest possible timestamp, so this is the shortest time from a
        # step-1 event to step i over every valid chain; t_i is its median over the identities.
        counts += "".join(f", (SELECT median(d::DOUBLE) FROM (SELECT min(p{i} - p1) AS d FROM s{i} "
                          f"GROUP BY ik)) AS t{i}" for i in range(2, len(steps) + 1))
    body = Sql("SELECT count(*) AS total, count(*) FILTER (WHERE by_user) AS by_user, " + counts
               + " FROM (SELECT DISTINCT ik, by_user FROM ev)")
    # ev (fixed-width columns) is read twice, by g and by the total: buffer it rather than the wide
    # actors rows it is computed from.
    inline = ("events", "scoped") if filters is not None else ("events", "scoped", "actors")
    return with_ctes(ctes, body, inline=inline, materialize=("ev",))


def _levels(access: Access, site: str, rng: DateRange, steps: Sequence[Step], window_us: int | None,
            filters: Any) -> tuple[int, int, list[int], list[float | None]]:
    row = read_selected(access, site, rng, filters, lambda query, source, sessions, _: compile_funnel(
        query.site_id, rng, steps, window_us, source=source, filters=query.filters,
        gap_seconds=access.gap_seconds, sessions=sessions)).to_pylist()[0]
    medians = [None if row.get(f"t{i}") is None else row[f"t{i}"] / 1e6 for i in range(1, len(steps) + 1)]
    return (int(row["total"]), int(row["by_user"]), [int(row[f"v{i}"]) for i in range(1, len(steps) + 1)],
            medians)


def _identity(total: int, by_user: int) -> str:
    if by_user == 0 or total == 0:
        return "visitor_id"
    return "user_id" if by_user == total else "mixed"


def _rate(n: int, d: int) -> float:
    return n / d if d else 0.0


def funnel(access: Access, site: str, rng: DateRange, steps: Sequence[str] | str, window_seconds: int,
           filters: FilterInput = None) -> Report:
    """Cumulative funnel: for each step, the identities that reached at least that step (§5.2).

    Args:
        access: what to read from (see :class:`~mallard._queries.access.Access`).
        site: the site id.
        rng: the date range (scope: ``site`` and ``[lower, upper)`` of ``rng.bounds()``).
        steps: 1 to 32 ``page:<path>`` / ``event:<name>`` steps (a list, or a comma-separated text).
        window_seconds: 1 s to 366 days, inclusive, measured from step 1 (see :func:`parse_window`).
        filters: a filter tree, Plausible v2 filters or ``dim==value;…``; selects identities.

    Returns:
        A :class:`Report` whose rows are the steps ``{"step", "label", "visitors", "conversion_rate",
        "step_conversion_rate", "median_seconds"}`` (its HTTP body) and ``to_dict()`` is ``{"steps": rows,
        "total_visitors", "level_counts": [{"level", "visitors"}, …] (0 = never did step 1),
        "window_seconds", "identity": "user_id" | "visitor_id" | "mixed", "start_date", "end_date",
        "timezone"}``. ``conversion_rate`` is relative to step 1, ``step_conversion_rate`` to the previous
        step (1.0 for step 1 when anybody reached it); both 0.0 when the base is 0. ``median_seconds`` is
        the time to convert: over the identities that reached the step, the median of each one's
        shortest time from a step-1 event to the step in a chain within the window (None for step 1
        and for a step nobody reached).

    Raises:
        InvalidQueryError: bad steps, window, site or filters.
    """
    parsed = parse_steps(steps)
    window = check_window(window_seconds)
    total, by_user, reached, medians = _levels(access, site, rng, parsed, window * 1_000_000, filters)
    rows = [{"step": i, "label": step.label, "visitors": n,
             "conversion_rate": _rate(n, reached[0]),
             "step_conversion_rate": _rate(n, reached[i - 2] if i > 1 else reached[0]),
             "median_seconds": median}
            for i, (step, n, median) in enumerate(zip(parsed, reached, medians, strict=True), start=1)]
    levels = [total - reached[0]] + [n - m for n, m in zip(reached, [*reached[1:], 0], strict=True)]
    meta = {"total_visitors": total,
            "level_counts": [{"level": k, "visitors": n} for k, n in enumerate(levels)],
            "window_seconds": window, "identity": _identity(total, by_user), **rng.to_dict()}
    return Report("steps", FUNNEL_COLUMNS, rows, meta, body="rows")


def sequences(access: Access, site: str, rng: DateRange, steps: Sequence[str] | str,
              filters: FilterInput = None) -> Record:
    """Sequence conversion (§5.4): identities that did all steps in order, with no time limit.

    Returns:
        A :class:`Record` of ``{"converting_visitors", "total_visitors", "conversion_rate"}``
        (converting / total, 0.0 for no visitors), plus ``"step1_visitors"`` and
        ``"step1_conversion_rate"`` (converting / step 1), ``"steps"`` (labels), ``"identity"`` and the
        date range.

    Raises:
        InvalidQueryError: fewer than 2 or more than 32 steps, bad steps, site or filters.
    """
    parsed = parse_steps(steps, min_steps=2)
    total, by_user, reached, _ = _levels(access, site, rng, parsed, None, filters)
    return Record({"converting_visitors": reached[-1], "total_visitors": total,
                   "conversion_rate": _rate(reached[-1], total), "step1_visitors": reached[0],
                   "step1_conversion_rate": _rate(reached[-1], reached[0]),
                   "steps": [s.label for s in parsed], "identity": _identity(total, by_user),
                   **rng.to_dict()}, rng.to_dict())
