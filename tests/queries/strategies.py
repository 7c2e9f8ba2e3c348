"""Hypothesis strategies for the filter property tests, and a Python reference of the filter semantics.

Rows are small event lists of a few visitors whose gaps straddle the 30-minute session window; filter
values are drawn from the rows' own values (so filters match), from hostile strings, and from arbitrary
text. The reference evaluates the Plausible-v2-shaped filter on the rows (event metrics) and on Python-built
sessions (session metrics), independently of the SQL.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import re2
from hypothesis import strategies as st

from mallard._events import Event

from .data import SITE

NULL_VALUES = ("(unknown)", "(none)")
HOSTILE = ["'; DROP TABLE events; --", "' OR '1'='1", "\" OR \"\"=\"", "\\", "\\'", "%", "_", "%_%",
           "?", "$1", ":name", "/* x */", "--", "İ", "ΑΣ", "ß", "ẞ", "🦆", "\x00", " ", ""]
GAPS_US = [0, 1, 60_000_000, 1_799_999_999, 1_800_000_000, 1_800_000_001, 7_200_000_000]
BASE = datetime(2024, 5, 1)

# dimension → how a row is read: event-level dimensions read the row, visit-level ones the session
EVENT_DIMS = {"event:page": "pathname", "event:props:plan": "plan", "event:name": "event_name"}
VISIT_DIMS = {"visit:source": "referrer_source"}
OPS = ["is", "is_not", "contains", "contains_not", "matches", "matches_not"]

text = st.text(max_size=12)


def _compiles(pattern: str) -> bool:
    try:
        re2.compile(pattern)
    except re2.error:
        return False
    return True


@dataclass(frozen=True)
class Row:
    visitor: str
    ts: datetime
    event_name: str
    pathname: str
    referrer_source: str | None
    plan: str | None

    def event(self) -> Event:
        return Event(site_id=SITE, visitor_id=self.visitor, timestamp=self.ts, event_name=self.event_name,
                     pathname=self.pathname, referrer_source=self.referrer_source,
                     props=None if self.plan is None else json.dumps({"plan": self.plan}))


@st.composite
def rows(draw: st.DrawFn) -> list[Row]:
    """1–4 visitors with 1–6 events each, values from a small shared pool (with NULLs)."""
    pool = draw(st.lists(st.one_of(text, st.sampled_from(HOSTILE)), min_size=1, max_size=4))
    maybe = st.one_of(st.none(), st.sampled_from(pool))
    out: list[Row] = []
    for visitor in draw(st.lists(st.sampled_from("vwxy"), min_size=1, max_size=4, unique=True)):
        t = BASE
        for gap in draw(st.lists(st.sampled_from(GAPS_US), min_size=1, max_size=6)):
            t += timedelta(microseconds=gap)
            out.append(Row(visitor, t, draw(st.sampled_from(["pageview", "pageview", "signup"])),
                           draw(st.sampled_from(pool)), draw(maybe), draw(maybe)))
    # no two events of a visitor tie on (time, kind, page): the session's "first event" is then unique
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for row in out:
        key = (row.visitor, row.ts, row.event_name == "pageview", row.pathname)
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


def _values(pool: Sequence[str], op: str) -> st.SearchStrategy[list[str]]:
    value = st.one_of(st.sampled_from(pool), st.sampled_from([*HOSTILE, *NULL_VALUES, "pageview"]), text)
    if op.startswith("matches"):
        value = st.one_of(value.map(re2.escape), value.map(lambda v: "^" + re2.escape(v[:2])),
                          value.filter(_compiles), st.sampled_from(["^/", ".", "(?i)A", "^$", "a|b"]))
    return st.lists(value, min_size=1, max_size=3)


@st.composite
def condition(draw: st.DrawFn, pool: Sequence[str], dims: Sequence[str]) -> list[Any]:
    op = draw(st.sampled_from(OPS))
    leaf: list[Any] = [op, draw(st.sampled_from(list(dims))), draw(_values(pool, op))]
    if draw(st.booleans()):
        leaf.append({"case_sensitive": False})
    return leaf


def filters(pool: Sequence[str], dims: Sequence[str] = (*EVENT_DIMS, *VISIT_DIMS)) -> st.SearchStrategy[Any]:
    """A Plausible v2 filter: a condition, or and/or/not of filters (at most 5 conditions)."""
    return st.recursive(
        condition(pool, dims),
        lambda children: st.one_of(
            st.tuples(st.sampled_from(["and", "or"]), st.lists(children, min_size=1, max_size=3)).map(list),
            children.map(lambda c: ["not", c])),
        max_leaves=5)


def pool_of(rs: Sequence[Row]) -> list[str]:
    values = {v for r in rs for v in (r.pathname, r.referrer_source, r.plan) if v is not None}
    return sorted(values) or ["/"]


def placeholders(node: Any, counter: list[int] | None = None) -> Any:
    """The same filter with every value replaced by a bland one (NULL markers kept: they shape the SQL)."""
    counter = counter if counter is not None else [0]
    if node[0] in ("and", "or"):
        return [node[0], [placeholders(c, counter) for c in node[1]]]
    if node[0] == "not":
        return ["not", placeholders(node[1], counter)]
    values = []
    for v in node[2]:
        counter[0] += 1
        values.append(v if v in NULL_VALUES else f"v{counter[0]}")
    return [node[0], node[1], values, *node[3:]]


def values_of(node: Any) -> list[str]:
    if node[0] in ("and", "or"):
        return [v for c in node[1] for v in values_of(c)]
    if node[0] == "not":
        return values_of(node[1])
    return list(node[2])


# -- the reference -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def fold(value: str) -> str:
    """Case folding for case_sensitive=false: DuckDB's lower(), applied to the value and the column."""
    with duckdb.connect() as con:  # not the shared default connection: leave it clean for others
        folded = con.execute("SELECT lower(?)", [value]).fetchone()
    assert folded is not None
    return str(folded[0])


def leaf_matches(op: str, values: Sequence[str], case_sensitive: bool, x: str | None) -> bool:
    wants_null = op in ("is", "is_not") and any(v in NULL_VALUES for v in values)
    plain = [v for v in values if not (wants_null and v in NULL_VALUES)]
    f: Callable[[str], str] = (lambda s: s) if case_sensitive else fold
    if x is None:
        positive = wants_null
    elif op in ("is", "is_not"):
        positive = f(x) in {f(v) for v in plain}
    elif op in ("contains", "contains_not"):
        positive = any(f(v) in f(x) for v in plain)
    else:
        options = re2.Options()
        options.case_sensitive = case_sensitive
        positive = any(re2.search(v, x, options) is not None for v in plain)
    return not positive if op.endswith("_not") else positive


def evaluate(node: Any, leaf: Callable[[list[Any]], bool]) -> bool:
    if node[0] == "and":
        return all(evaluate(c, leaf) for c in node[1])
    if node[0] == "or":
        return any(evaluate(c, leaf) for c in node[1])
    if node[0] == "not":
        return not evaluate(node[1], leaf)
    return leaf(node)


def _cs(node: list[Any]) -> bool:
    return bool(node[3]["case_sensitive"]) if len(node) == 4 else True


@dataclass
class Session:
    events: list[Row]

    @property
    def first(self) -> Row:
        # earliest; pageviews before custom events on ties, then by page
        return min(self.events, key=lambda r: (r.ts, r.event_name != "pageview", r.pathname))


def sessions(rs: Sequence[Row], gap_us: int = 1_800_000_000) -> list[Session]:
    out: list[Session] = []
    for visitor in sorted({r.visitor for r in rs}):
        mine = sorted((r for r in rs if r.visitor == visitor), key=lambda r: r.ts)
        current = [mine[0]]
        for prev, row in itertools.pairwise(mine):
            if (row.ts - prev.ts) > timedelta(microseconds=gap_us):
                out.append(Session(current))
                current = []
            current.append(row)
        out.append(Session(current))
    return out


def _event_value(row: Row, dim: str) -> str | None:
    return getattr(row, EVENT_DIMS[dim])  # type: ignore[no-any-return]


def reference_event_metrics(rs: Sequence[Row], node: Any) -> dict[str, int]:
    """visitors, events, pageviews of rows matching ``node`` (visit dimensions from the session)."""
    session_of = {id(r): s for s in sessions(rs) for r in s.events}
    kept = []
    for row in rs:
        first = session_of[id(row)].first

        def leaf(c: list[Any], row: Row = row, first: Row = first) -> bool:
            value = _event_value(row, c[1]) if c[1] in EVENT_DIMS else getattr(first, VISIT_DIMS[c[1]])
            return leaf_matches(c[0], c[2], _cs(c), value)

        if evaluate(node, leaf):
            kept.append(row)
    return {"visitors": len({r.visitor for r in kept}), "events": len(kept),
            "pageviews": sum(r.event_name == "pageview" for r in kept)}


def reference_visits(rs: Sequence[Row], node: Any) -> int:
    """Sessions matching ``node``: event conditions hold for some event, visit ones for the session."""
    count = 0
    for s in sessions(rs):
        def leaf(c: list[Any], s: Session = s) -> bool:
            if c[1] in EVENT_DIMS:
                return any(leaf_matches(c[0], c[2], _cs(c), _event_value(r, c[1])) for r in s.events)
            return leaf_matches(c[0], c[2], _cs(c), getattr(s.first, VISIT_DIMS[c[1]]))

        count += evaluate(node, leaf)
    return count
