"""Goals and saved segments in the query model.

A query that names ``event:goal`` (a filter or a dimension) or a segment (``["is", "segment", [id]]``)
is *resolved* against its site's goals and segments (:mod:`mallard._goals`) before it is planned:

* a segment condition is replaced by the segment's filters (several ids: any of them);
* an ``event:goal`` condition selects goals by display name (``is``/``is_not``: equal, every name must
  be a goal of the site; ``contains``…; ``matches``…: a regular expression) and becomes the condition
  "the event completed one of these goals" (negated for ``*_not``). It must be at the top level of the
  filters (only ``and`` above it; a segment's own filters may hold it anywhere), as in Plausible;
* ``event:goal`` as a dimension is bound to the goals (those the top-level goal filters select, else
  every goal): an event has one row per goal it completed.

A custom event goal is completed by an event of that name; a pageview goal by a pageview of its path
(with ``*`` wildcards, :func:`mallard._goals.page_regex`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Final

import re2

from .._errors import InvalidQueryError
from .._goals import Goal, Segment, page_regex
from .filters import Condition, Filter, Logic, as_conditions, behaviours, conditions, parse, transform
from .model import Query
from .registry import DIMENSIONS, SEGMENT, Dimension
from .sql import Sql

__all__ = ["check_segment_filters", "for_analysis", "predicate", "resolve"]

GOAL: Final = "event:goal"


def predicate(goal: Goal) -> Sql:
    """Boolean SQL over an event row: whether the event completed ``goal``."""
    if goal.event_name is not None:
        return Sql("event_name = ?", (goal.event_name,))
    path = goal.page_path or ""
    if "*" in path:
        return Sql("(event_name = 'pageview' AND regexp_matches(pathname, ?))", (page_regex(path),))
    return Sql("(event_name = 'pageview' AND pathname = ?)", (path,))


def check_segment_filters(filters: Sequence[object]) -> None:
    """Refuse a segment's filters that the query parser refuses, or that name a segment."""
    tree = parse(list(filters))
    if tree is None or any(c.dimension is SEGMENT for c in conditions(tree)):
        raise InvalidQueryError("A segment's filters must be non-empty and must not name a segment.",
                                code="invalid_segment")


def resolve(query: Query, goals: Callable[[], Sequence[Goal]],
            segment: Callable[[int], Segment | None]) -> Query:
    """``query`` with its segments and goals resolved (unchanged when it names neither).

    Raises:
        InvalidQueryError: an unknown goal name or segment id, a goal filter below ``or``/``not``.
    """
    names = {c.dimension.name for c in _all_conditions(query.filters)}
    if GOAL not in query.dimensions and not names & {GOAL, SEGMENT.name}:
        return query
    top = list(_top_level(query.filters))  # checked before segments are expanded, as Plausible does
    if any(c.dimension.name == GOAL for c in conditions(query.filters)
           if not any(c is t for t in top)):
        raise InvalidQueryError("Invalid filters. Dimension event:goal can only be filtered at the top "
                                "level (not inside 'or' or 'not').", code="invalid_filter")
    tree = transform(query.filters, lambda c: _expand_segment(c, segment))
    site_goals = list(goals()) if GOAL in query.dimensions or GOAL in {
        c.dimension.name for c in _all_conditions(tree)} else []
    tree = transform(tree, lambda c: _bind(c, site_goals))
    bound: tuple[Dimension, ...] = ()
    if GOAL in query.dimensions:
        chosen = site_goals
        for cond in _top_level(tree):
            if cond.dimension.goals is not None and not cond.op.endswith("_not"):
                keep = {name for name, _ in cond.dimension.goals}
                chosen = [g for g in chosen if g.display_name in keep]
        bound = (replace(DIMENSIONS[GOAL], goals=tuple((g.display_name, predicate(g))
                                                       for g in chosen)),)
    return replace(query, filters=tree, bound=bound)


def for_analysis(query: Query, goals: Callable[[], Sequence[Goal]],
                 segment: Callable[[int], Segment | None]) -> Filter | None:
    """The filters of ``query`` for funnels, sequences, flow, retention and raw export: segments and
    goals resolved, has_done nodes read as conditions (:func:`mallard._queries.filters.as_conditions`)."""
    return as_conditions(resolve(query, goals, segment).filters)


def _all_conditions(node: Filter | None) -> Iterator[Condition]:
    """Every condition, those inside has_done / has_not_done too."""
    yield from conditions(node)
    for behaviour in behaviours(node):
        yield from conditions(behaviour.child)


def _top_level(node: Filter | None) -> Iterator[Condition]:
    """Conditions reachable from the root through ``and`` only."""
    if isinstance(node, Condition):
        yield node
    elif isinstance(node, Logic) and node.op == "and":
        for child in node.children:
            yield from _top_level(child)


def _expand_segment(node: Condition, segment: Callable[[int], Segment | None]) -> Filter:
    if node.dimension is not SEGMENT:
        return node
    if node.op != "is":
        raise InvalidQueryError("Segments are filtered with 'is' only: [\"is\", \"segment\", [id]].",
                                code="invalid_filter")
    trees: list[Filter] = []
    for value in node.values:
        try:
            found = segment(int(value))
        except ValueError:
            found = None
        if found is None:
            raise InvalidQueryError(f"Invalid filters. Segment {value!r} does not exist for this site.",
                                    code="unknown_segment")
        tree = parse(list(found.filters))
        if tree is None or any(c.dimension is SEGMENT for c in conditions(tree)):
            raise InvalidQueryError(f"Segment {value} is not usable: its filters are empty or name "
                                    "another segment.", code="invalid_filter")
        trees.append(tree)
    return trees[0] if len(trees) == 1 else Logic("or", tuple(trees))


def _bind(node: Condition, goals: Sequence[Goal]) -> Filter:
    if node.dimension.name != GOAL:
        return node
    chosen = [g for g in goals if any(_selects(node, g.display_name, v) for v in node.values)]
    if node.op in ("is", "is_not"):
        known = {_fold(node, g.display_name) for g in goals}
        for value in node.values:
            if _fold(node, value) not in known:
                raise InvalidQueryError(f"The goal {value!r} is not configured for this site. Add it "
                                        "with `mallard goals add` or PUT /api/v1/sites/goals.",
                                        code="unknown_goal")
    dim = replace(DIMENSIONS[GOAL], goals=tuple((g.display_name, predicate(g)) for g in chosen))
    return Condition("is_not" if node.op.endswith("_not") else "is", dim, node.values,
                     node.case_sensitive)


def _fold(cond: Condition, text: str) -> str:
    return text if cond.case_sensitive else text.lower()


def _selects(cond: Condition, name: str, value: str) -> bool:
    if cond.op.startswith("matches"):
        flags = "" if cond.case_sensitive else "(?i)"
        return re2.search(flags + value, name) is not None
    if cond.op.startswith("contains"):
        return _fold(cond, value) in _fold(cond, name)
    return _fold(cond, value) == _fold(cond, name)
