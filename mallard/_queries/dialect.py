"""The query model's statements in ClickHouse SQL: DuckDB SQL translated, for the ClickHouse engine.

Every module of the query model writes DuckDB SQL (sql.py) and runs it through a reader; the ClickHouse
engine (clickhouse.py) translates each statement here and runs it in chdb. One translator instead of a
dialect switch in every module: the SQL of each analysis keeps one definition, and what differs
between the two engines is written once (docs/architecture.md, "Two engines", tells why and what it
measured). The statement is parsed with sqlglot (DuckDB dialect), rewritten, and written out in
ClickHouse's dialect:

* values: each ``?`` becomes a typed query parameter ``{pN:Type}`` (dialect_params.py), never text;
* structure (relations, unions, names, windows, lookups, local times…): dialect_rewrites.py, on
  DuckDB's tree, top-down;
* functions, aggregates and casts: dialect_calls.py, children first; ``agg(x) FILTER (WHERE c)`` is
  the ``-If`` combinator here;
* NULL semantics and names by settings (:data:`SETTINGS`): outer joins give NULL
  (``join_use_nulls``), aggregates over no rows are NULL (``aggregate_functions_null_for_empty``), an
  alias never hides an input column (``prefer_column_name_to_alias``), times are UTC;
* a CTE read more than once is computed once, into a temporary table for the statement.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import sqlglot
from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

from .clickhouse_lake import LakeFiles
from .dialect_calls import UnsupportedSql, call, ch_type, fn
from .dialect_params import Bound, bind
from .dialect_rewrites import Context, Relation, restructure

__all__ = ["SETTINGS", "Relation", "Translated", "UnsupportedSql", "to_clickhouse"]

#: The settings every translated statement runs with (see the module docstring).
SETTINGS: Final = {"join_use_nulls": "1", "aggregate_functions_null_for_empty": "1",
                   "session_timezone": "'UTC'", "use_hive_partitioning": "0",
                   "enable_named_columns_in_function_tuple": "1", "prefer_column_name_to_alias": "1"}
_SETTINGS_SQL: Final = " SETTINGS " + ", ".join(f"{k} = {v}" for k, v in SETTINGS.items())
_COUNTS: Final = frozenset({"count", "groupArray", "groupUniqArray"})
_TEMPORARY: Final = itertools.count()


@dataclass(frozen=True, slots=True)
class Translated:
    """A statement in ClickHouse SQL and its parameters (name → typed text, for chdb); ``setup``: the
    statements to run before it (the temporary tables of its shared CTEs), ``teardown`` after it."""

    sql: str
    params: dict[str, Bound]
    setup: tuple[str, ...] = ()
    teardown: tuple[str, ...] = ()


def _named(text: str, count: int) -> str:
    """``text`` with its ``?`` placeholders named ``$p0``, ``$p1``… in order."""
    out: list[str] = []
    last = 0
    n = 0
    for token in sqlglot.tokenize(text, read="duckdb"):
        if token.token_type == TokenType.PLACEHOLDER and token.text == "?":
            out += [text[last:token.start], f"$p{n}"]
            last = token.end + 1
            n += 1
    if n != count:
        raise ValueError(f"the statement has {n} placeholders for {count} parameters")
    return "".join(out) + text[last:]


def to_clickhouse(text: str, params: Sequence[object], relations: Callable[[str], Relation | None],
                  files: LakeFiles | None = None) -> Translated:
    """``text`` (DuckDB SQL with ``?`` bound to ``params``) in ClickHouse SQL; ``relations(name)``: the
    ClickHouse relation standing for a table ``name`` (None: a name of the statement itself); ``files``:
    where a ``read_parquet`` of the statement reads (by default, files on disk).

    Raises:
        UnsupportedSql: a construct the dialect does not translate.
    """
    ctx = Context(list(params), relations, files or LakeFiles())
    tree = sqlglot.parse_one(_named(text, len(params)), read="duckdb")
    tree = restructure(tree, ctx)
    tree = _bottom_up(tree, ctx)
    setup, teardown = _shared(tree, ctx)
    return Translated(ctx.splice(tree.sql(dialect="clickhouse")) + _SETTINGS_SQL, ctx.bound,
                      tuple(ctx.splice(s) for s in setup), teardown)


def _shared(tree: exp.Expr, ctx: Context) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The statement's CTEs read more than once, computed once into temporary tables (as DuckDB
    materialises them): ClickHouse writes each reference out and analyses it again, which made a
    funnel's statement, whose steps read the previous ones, take seconds to plan."""
    with_ = tree.args.get("with_")
    if with_ is None:
        return (), ()
    reads = Counter(t.name for t in tree.find_all(exp.Table) if not t.args.get("db"))
    setup: list[str] = []
    teardown: list[str] = []
    written: list[str] = []  # the CTEs before, as text (each written once: copying trees costs more)
    for cte in with_.expressions:
        cte.set("materialized", None)
        if reads[cte.alias] >= 2 and cte.alias not in ctx.inline:
            table = f"__mallard_cte_{next(_TEMPORARY)}_{cte.alias}"
            before = f"WITH {', '.join(written)} " if written else ""
            setup.append(f"CREATE TEMPORARY TABLE {table} ENGINE = Memory AS {before}SELECT * FROM "
                         f"({cte.this.sql(dialect='clickhouse')}){_SETTINGS_SQL}")
            teardown.append(f"DROP TEMPORARY TABLE IF EXISTS {table}")
            cte.set("this", exp.select("*").from_(table))
        written.append(cte.sql(dialect="clickhouse"))
    return tuple(setup), tuple(teardown)


# -- nodes (bottom-up) ----------------------------------------------------------------------------
def _bottom_up(node: exp.Expr, ctx: Context) -> exp.Expr:
    if node.meta.get("clickhouse"):  # written in ClickHouse SQL already (but for a WITH kept)
        with_ = node.args.get("with_")
        if with_ is not None:
            node.set("with_", _bottom_up(with_, ctx))
        return node
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expr):
            node.set(key, _bottom_up(value, ctx))
        elif isinstance(value, list):
            node.set(key, [_bottom_up(v, ctx) if isinstance(v, exp.Expr) else v for v in value])
    if isinstance(node, exp.Placeholder):
        return _placeholder(node, ctx)
    if isinstance(node, exp.Filter):
        return _filtered(node)
    return call(node)


def _placeholder(node: exp.Placeholder, ctx: Context) -> exp.Expr:
    if node.args.get("kind") is not None:  # bound by a rewrite already
        return node
    value = ctx.value(node)
    if value is None:
        return exp.null()
    bound = ctx.bound[node.name] = bind(value)
    return exp.Placeholder(this=node.name, kind=ch_type(bound.type))


def _filtered(node: exp.Filter) -> exp.Expr:
    """``agg(x) FILTER (WHERE c)``: the ``-If`` combinator, NULL when no row passes (as DuckDB), but
    for counts and lists."""
    agg = node.this
    cond = node.expression.this
    if isinstance(agg, exp.Count):
        inner = agg.this
        if isinstance(inner, exp.Star):
            return fn("countIf", cond)
        if isinstance(inner, exp.Distinct):
            return fn("uniqExactIf", *inner.expressions, cond)
        return fn("countIf", exp.and_(exp.Not(this=exp.Is(this=inner, expression=exp.null())), cond))
    if isinstance(agg, (exp.Sum, exp.Avg, exp.Max, exp.Min)):
        name = {exp.Sum: "sum", exp.Avg: "avg", exp.Max: "max", exp.Min: "min"}[type(agg)]
        return fn(f"{name}IfOrNull", agg.this, cond)
    if isinstance(agg, exp.Anonymous):
        if agg.name == "tupleElement":  # arg_min_null: NULL when no row passes
            inner = agg.expressions[0]
            assert isinstance(inner, exp.Anonymous)
            picked = fn("tupleElement", fn(f"{inner.name}If", *inner.expressions, cond), agg.expressions[1])
            return exp.If(this=exp.EQ(this=fn("countIf", cond.copy()), expression=exp.Literal.number(0)),
                          true=exp.null(), false=picked)
        name = agg.name + ("If" if agg.name in _COUNTS else "IfOrNull")
        return fn(name, *agg.expressions, cond)
    raise UnsupportedSql(f"FILTER on {agg.sql('clickhouse')}")
