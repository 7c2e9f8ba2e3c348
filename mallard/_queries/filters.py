"""Filters: the operators ``is, is_not, contains, contains_not, matches, matches_not`` combined with
``and``, ``or`` and ``not``, parsed from Plausible's v2 shape or Mallard Metrics' ``dim==v;dim!=v`` string,
and compiled to SQL with every value bound as a parameter.

The value ``(unknown)`` (or ``(none)``) matches a missing value (NULL). Several values in one condition
mean "any of them". ``{"case_sensitive": false}`` compares case-insensitively.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import re2

from .._errors import InvalidQueryError
from .registry import SEGMENT, Dimension, dimension
from .sql import Sql

Op = Literal["is", "is_not", "contains", "contains_not", "matches", "matches_not"]
OPERATORS: Final = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
NULL_VALUES: Final = frozenset({"(unknown)", "(none)"})
MAX_VALUES: Final = 100
MAX_VALUE_LEN: Final = 2048
MAX_DEPTH: Final = 8
MAX_CONDITIONS: Final = 50


@dataclass(frozen=True, slots=True)
class Condition:
    op: Op
    dimension: Dimension
    values: tuple[str, ...]
    case_sensitive: bool = True

    def to_json(self) -> list[object]:
        out: list[object] = [self.op, self.dimension.name, list(self.values)]
        if not self.case_sensitive:
            out.append({"case_sensitive": False})
        return out


@dataclass(frozen=True, slots=True)
class Logic:
    op: Literal["and", "or"]
    children: tuple[Filter, ...]

    def to_json(self) -> list[object]:
        return [self.op, [c.to_json() for c in self.children]]


@dataclass(frozen=True, slots=True)
class Not:
    child: Filter

    def to_json(self) -> list[object]:
        return ["not", self.child.to_json()]


@dataclass(frozen=True, slots=True)
class Written(Logic):
    """A condition compiled as the tree it stands for (``children``, joined by ``op``) and echoed as it
    was written (``to_json``): a Plausible region code made conditions on stored names."""

    written: Condition | None = None

    def to_json(self) -> list[object]:
        return Logic.to_json(self) if self.written is None else self.written.to_json()


@dataclass(frozen=True, slots=True)
class Behaviour:
    """``["has_done", filter]`` / ``["has_not_done", filter]``: the session of the event (or the
    session) has / has no event in the range matching ``child`` (event dimensions only)."""

    op: Literal["has_done", "has_not_done"]
    child: Filter

    def to_json(self) -> list[object]:
        return [self.op, self.child.to_json()]


Filter = Condition | Logic | Not | Behaviour
#: What every ``filters=`` argument accepts: a filter tree (:class:`Condition`, :class:`Logic`…),
#: Mallard Metrics' filter string (``"event:page==/pricing;visit:country==DE"``), Plausible's v2 JSON
#: shape (a list of ``[operator, dimension, [values]]`` filters, or one filter), or None (no filter).
FilterInput = Filter | str | Sequence[Any] | None
BEHAVIOURS: Final = ("has_done", "has_not_done")


def conditions(node: Filter | None) -> Iterator[Condition]:
    """Every leaf condition of a filter tree (not those inside ``has_done``: see :func:`behaviours`)."""
    if node is None or isinstance(node, Behaviour):
        return
    if isinstance(node, Condition):
        yield node
    elif isinstance(node, Not):
        yield from conditions(node.child)
    else:
        for child in node.children:
            yield from conditions(child)


def prune(node: Filter | None, drop: Callable[[Condition], bool]) -> Filter | None:
    """The tree without conditions for which ``drop`` is true (used for conversion-rate totals)."""
    if node is None or isinstance(node, Behaviour):
        return node
    if isinstance(node, Condition):
        return None if drop(node) else node
    if isinstance(node, Not):
        child = prune(node.child, drop)
        return None if child is None else Not(child)
    kept = tuple(c for c in (prune(ch, drop) for ch in node.children) if c is not None)
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else Logic(node.op, kept)


def behaviours(node: Filter | None) -> Iterator[Behaviour]:
    """Every ``has_done`` / ``has_not_done`` node of a tree, in tree order."""
    if isinstance(node, Behaviour):
        yield node
    elif isinstance(node, Not):
        yield from behaviours(node.child)
    elif isinstance(node, Logic):
        for child in node.children:
            yield from behaviours(child)


def transform(node: Filter | None, leaf: Callable[[Condition], Filter], *,
              rebuild_behaviours: bool = True) -> Filter | None:
    """The tree with every condition replaced by ``leaf(condition)``; with ``rebuild_behaviours``
    False, the has_done / has_not_done nodes are kept as they are (the very objects: a plan finds them
    by identity), their conditions being about events, not about the rows the transform rewrites."""
    return None if node is None else _mapped(node, leaf, rebuild_behaviours)


def _mapped(node: Filter, leaf: Callable[[Condition], Filter], rebuild: bool) -> Filter:
    if isinstance(node, Condition):
        return leaf(node)
    if isinstance(node, Not):
        return Not(_mapped(node.child, leaf, rebuild))
    if isinstance(node, Behaviour):
        return Behaviour(node.op, _mapped(node.child, leaf, rebuild)) if rebuild else node
    children = tuple(_mapped(c, leaf, rebuild) for c in node.children)
    if isinstance(node, Written):  # still echoed as written
        return Written(node.op, children, node.written)
    return Logic(node.op, children)


def as_conditions(node: Filter | None) -> Filter | None:
    """The tree for an analysis with no has_done of its own: ``has_done(X)`` reads as ``X`` and
    ``has_not_done(X)`` as ``not X``. Funnels and sequences keep whole sessions having a matching event,
    so there this is exact; flow, retention and raw export read single events: the events matching X
    (or not matching it)."""
    return None if node is None else _as_conditions(node)


def _as_conditions(node: Filter) -> Filter:
    if isinstance(node, Condition):
        return node
    if isinstance(node, Behaviour):
        return node.child if node.op == "has_done" else Not(node.child)
    if isinstance(node, Not):
        return Not(_as_conditions(node.child))
    children = tuple(_as_conditions(c) for c in node.children)
    if isinstance(node, Written):
        return Written(node.op, children, node.written)
    return Logic(node.op, children)


# -- parsing ------------------------------------------------------------------------------------
def parse(obj: object) -> Filter | None:
    """A filter tree from Plausible's v2 JSON shape: a list of filters (all must hold) or one filter."""
    if obj is None or obj == []:
        return None
    counter = [0]
    if isinstance(obj, list) and obj and all(isinstance(f, list) for f in obj):
        children = tuple(_parse(f, 1, counter) for f in obj)
        return children[0] if len(children) == 1 else Logic("and", children)
    return _parse(obj, 1, counter)


def _parse(obj: object, depth: int, counter: list[int]) -> Filter:
    if depth > MAX_DEPTH:
        raise InvalidQueryError(f"Filters may be nested at most {MAX_DEPTH} deep.",
                                code="invalid_filter")
    if not isinstance(obj, list) or not obj or not isinstance(obj[0], str):
        raise InvalidQueryError(
            f"Invalid filter {obj!r}: expected [operator, dimension, [values]], "
            "['and'|'or', [filters]] or ['not', filter].", code="invalid_filter")
    op = obj[0]
    if op in ("and", "or"):
        if len(obj) != 2 or not isinstance(obj[1], list) or not obj[1]:
            raise InvalidQueryError(f"'{op}' takes a non-empty list of filters.",
                                    code="invalid_filter")
        return Logic("and" if op == "and" else "or",
                     tuple(_parse(f, depth + 1, counter) for f in obj[1]))
    if op == "not":
        if len(obj) != 2:
            raise InvalidQueryError("'not' takes exactly one filter.", code="invalid_filter")
        return Not(_parse(obj[1], depth + 1, counter))
    if op in BEHAVIOURS:
        if len(obj) != 2:
            raise InvalidQueryError(f"'{op}' takes exactly one filter.", code="invalid_filter")
        child = _parse(obj[1], depth + 1, counter)
        if any(True for _ in behaviours(child)) or any(
                c.dimension.level == "visit" for c in conditions(child)):
            raise InvalidQueryError(f"'{op}' takes a filter on event dimensions (event:page, event:name, "
                                    "event:goal, event:props:*), without has_done or has_not_done.",
                                    code="invalid_filter")
        return Behaviour("has_done" if op == "has_done" else "has_not_done", child)
    if op not in OPERATORS:
        raise InvalidQueryError(f"Unknown filter operator {op!r}. Valid operators: "
                                f"{', '.join(OPERATORS)}, and, or, not, has_done, has_not_done.",
                                code="invalid_filter")
    if len(obj) not in (3, 4) or not isinstance(obj[1], str):
        raise InvalidQueryError(f"Invalid filter {obj!r}: expected [operator, dimension, [values]].",
                                code="invalid_filter")
    values = obj[2] if isinstance(obj[2], list) else [obj[2]]
    case_sensitive = True
    if len(obj) == 4:
        options = obj[3]
        if not isinstance(options, dict) or set(options) - {"case_sensitive"} or not isinstance(
                options.get("case_sensitive", True), bool):
            raise InvalidQueryError("Filter options may only hold {\"case_sensitive\": bool}.",
                                    code="invalid_filter")
        case_sensitive = options.get("case_sensitive", True)
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise InvalidQueryError(f"At most {MAX_CONDITIONS} filter conditions are allowed.",
                                code="invalid_filter")
    return condition(op, obj[1], values, case_sensitive=case_sensitive)


def condition(op: str, dim: str, values: Sequence[object], *, case_sensitive: bool = True) -> Condition:
    """One validated condition."""
    if op not in OPERATORS:
        raise InvalidQueryError(f"Unknown filter operator {op!r}. Valid operators: "
                                f"{', '.join(OPERATORS)}.", code="invalid_filter")
    target = SEGMENT if dim == SEGMENT.name else dimension(dim)
    if not values or len(values) > MAX_VALUES:
        raise InvalidQueryError(f"A filter needs 1 to {MAX_VALUES} values.", code="invalid_filter")
    clean: list[str] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidQueryError("Filter values must be strings or numbers.",
                                    code="invalid_filter")
        text = str(value)
        if len(text) > MAX_VALUE_LEN:
            raise InvalidQueryError(f"Filter values must be at most {MAX_VALUE_LEN} characters.",
                                    code="invalid_filter")
        if op.startswith("matches"):
            try:
                re2.compile(text)
            except re2.error:
                raise InvalidQueryError(f"Invalid regular expression {text!r} (RE2 syntax).",
                                        code="invalid_filter") from None
        clean.append(text)
    return Condition(op, target, tuple(clean), case_sensitive)  # type: ignore[arg-type]


def parse_string(text: str) -> Filter | None:
    """Mallard Metrics' query-string form: ``dim==value;dim!=value`` (all must hold)."""
    items = [part.strip() for part in text.split(";") if part.strip()]
    if not items:
        return None
    if len(items) > MAX_CONDITIONS:
        raise InvalidQueryError(f"At most {MAX_CONDITIONS} filter conditions are allowed.",
                                code="invalid_filter")
    out: list[Filter] = []
    for item in items:
        if "!=" in item:
            dim, _, value = item.partition("!=")
            op = "is_not"
        elif "==" in item:
            dim, _, value = item.partition("==")
            op = "is"
        elif "~=" in item:
            dim, _, value = item.partition("~=")
            op = "contains"
        else:
            raise InvalidQueryError(f"Invalid filter {item!r}: use dimension==value, "
                                    "dimension!=value or dimension~=text.", code="invalid_filter")
        out.append(condition(op, dim.strip(), [value.strip()]))
    return out[0] if len(out) == 1 else Logic("and", tuple(out))


# -- compiling ----------------------------------------------------------------------------------
def compile_tree(node: Filter, leaf: Callable[[Condition], Sql],
                 behaviour: Callable[[Behaviour], Sql] | None = None) -> Sql:
    """SQL for a tree; ``leaf`` turns a condition into a boolean SQL expression, ``behaviour`` a
    ``has_done``/``has_not_done`` node (None: they are refused)."""
    if isinstance(node, Condition):
        return leaf(node)
    if isinstance(node, Behaviour):
        if behaviour is None:
            raise InvalidQueryError(f"{node.op} filters are only available in queries (Queries.query, "
                                    "POST /api/v2/query).", code="invalid_filter")
        return behaviour(node)
    if isinstance(node, Not):
        return "(NOT coalesce(" + compile_tree(node.child, leaf, behaviour) + ", false))"
    joined = Sql.join([compile_tree(c, leaf, behaviour) for c in node.children], f" {node.op.upper()} ")
    return joined.wrap()


def _wants_null(cond: Condition) -> bool:
    """Whether ``cond`` names the missing value ("(unknown)"…) among its values; a dimension shown in
    other words names its missing values itself ("(not set)", "(none)", "")."""
    return (cond.dimension.words is None and cond.op in ("is", "is_not")
            and any(v in NULL_VALUES for v in cond.values))


def keeps_missing(node: Filter) -> bool:
    """Whether the filter tree ``node`` (conditions, and/or/not; no has_done) keeps an event whose
    value of every dimension it names is missing (NULL), as :func:`compile_condition` compiles it."""
    if isinstance(node, Condition):
        return _wants_null(node) != node.op.endswith("_not")
    if isinstance(node, Not):
        return not keeps_missing(node.child)
    if isinstance(node, Logic):
        kept = [keeps_missing(c) for c in node.children]
        return all(kept) if node.op == "and" else any(kept)
    raise TypeError(f"has_done / has_not_done have no value to test: {node!r}")


def compile_condition(cond: Condition, expr: Sql) -> Sql:
    """Boolean SQL (never NULL) for ``cond`` applied to ``expr``."""
    negate = cond.op.endswith("_not")
    if cond.dimension.goals is not None:  # event:goal bound to the goals the values select
        return _negated(Sql.join([p for _, p in cond.dimension.goals], " OR "), negate)
    wants_null = _wants_null(cond)
    values = [v for v in cond.values if not (wants_null and v in NULL_VALUES)]
    # Case-insensitive comparisons fold both sides with DuckDB's lower(): Python's str.lower() differs
    # for some characters ('İ', final 'Σ'), so a value folded in Python may never match its own column.
    target = expr if cond.case_sensitive else "lower(" + expr + ")"
    mark = "?" if cond.case_sensitive else "lower(?)"
    parts: list[Sql] = []
    if cond.op in ("is", "is_not") and values:
        parts.append(target + Sql(" IN (" + ", ".join([mark] * len(values)) + ")", tuple(values)))
    elif cond.op in ("contains", "contains_not"):
        for v in values:
            parts.append("contains(" + target + Sql(f", {mark})", (v,)))
    elif cond.op in ("matches", "matches_not"):
        for v in values:
            flags = "" if cond.case_sensitive else ", 'i'"
            parts.append("regexp_matches(" + expr + Sql(f", ?{flags})", (v,)))
    if wants_null:
        parts.append(expr + " IS NULL")
    return _negated(Sql.join(parts, " OR "), negate)


def _negated(positive: Sql, negate: bool) -> Sql:
    body = "coalesce(" + (positive.wrap() if positive.text else Sql("false")) + ", false)"
    return ("(NOT " + body + ")") if negate else body


def event_rows(node: Filter | None, what: str) -> Sql:
    """Boolean SQL over single event rows for ``node`` (``TRUE`` for none): conditions on the entry or
    exit page, properties of visits rather than of events, are refused, naming ``what`` refuses them."""
    if node is None:
        return Sql("TRUE")
    for cond in conditions(node):
        dim = cond.dimension
        if dim.goals is None and dim.column is None and dim.prop_key is None:
            raise InvalidQueryError(f"{what} cannot filter on {cond.dimension.name}: it is a property of "
                                    "visits, not of single events.", code="invalid_filter")
    return compile_tree(node, lambda c: compile_condition(c, c.dimension.event_expr()))
