"""Rewrites of a DuckDB statement's structure for ClickHouse, before its functions are (dialect.py).

Each rewrite keeps DuckDB's meaning where ClickHouse's SQL differs in structure:

* relations: a name the engine provides becomes its ClickHouse relation (spliced into the written
  text); ``read_parquet(?)`` over stored derived files is one ``file()`` (or ``s3()``) read of them,
  with the hive partition columns as text (as DuckDB gives them with ``hive_types_autocast=false``);
* unions: ``UNION ALL BY NAME`` is positional in the first branch's column order;
* names: a qualified column keeps the column's name; ORDER BY prefers output names (elsewhere input
  columns win, ``prefer_column_name_to_alias``); a subquery in FROM gets an alias;
* windows: named windows are written out; ``lag``/``lead`` are ``lagInFrame``/``leadInFrame`` over
  a frame holding the neighbour, NULL when there is none;
* ``unnest`` beside ``generate_subscripts`` is one ``arrayJoin`` over the subscripts, zipped;
* a lookup in a ``VALUES`` table of bound values is ``transform()`` over two arrays;
* a local time (``timezone(tz, timezone('UTC', t))``) is the UTC time shifted by the zone's offset at
  that instant: wall-clock buckets, as DuckDB's naive local times;
* an ordering struct (``arg_min``'s key) sorts a NULL field last, as DuckDB's structs do;
* a JSON path ``$."key"`` is the key ClickHouse's JSON functions take;
* sessions.py's chain of visitor ids (32 self-joins) is one ``arrayFold`` of hash lookups (``transform``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import sqlglot
from sqlglot import exp

from .clickhouse_lake import LakeFiles
from .dialect_calls import UnsupportedSql, ch_type, fn, ordering_tuple
from .dialect_params import Bound, bind

__all__ = ["Context", "Relation", "restructure"]

_HIVE: Final = ("site_id", "date")


@dataclass(frozen=True, slots=True)
class Relation:
    """A relation the engine provides under a name: ClickHouse SQL (a SELECT) and its parameters."""

    sql: str
    params: Mapping[str, Bound] = field(default_factory=dict)


@dataclass(slots=True)
class Context:
    """One statement's translation: its values (``$pN`` is ``values[N]``), the engine's relations and
    where its files are read, the parameters bound so far and the CTEs DuckDB is told to inline (``NOT
    MATERIALIZED``)."""

    values: list[object]
    relations: Callable[[str], Relation | None]
    files: LakeFiles = field(default_factory=LakeFiles)
    bound: dict[str, Bound] = field(default_factory=dict)
    inline: set[str] = field(default_factory=set)
    #: marker table name → the ClickHouse SQL of the relation it stands for
    spliced: dict[str, str] = field(default_factory=dict)

    def value(self, node: exp.Placeholder) -> object:
        return self.values[int(node.name[1:])]

    def splice(self, sql: str) -> str:
        """``sql`` (written by sqlglot) with each marker table replaced by its relation's SQL: the
        markers are identifiers of the translation's own, and no value is ever written as text."""
        for marker, relation in self.spliced.items():
            sql = sql.replace(marker, relation)
        return sql

    def parameter(self, value: object, type_: str | None = None) -> exp.Placeholder:
        """A new parameter bound to ``value`` (typed as ``type_``, else by the value)."""
        name = f"b{len(self.bound)}"
        bound = self.bound[name] = bind(value)
        return exp.Placeholder(this=name, kind=ch_type(type_ or bound.type))


def restructure(tree: exp.Expr, ctx: Context) -> exp.Expr:
    """The rewrites of the module docstring, on DuckDB's tree (top-down); the new root."""
    for select in list(tree.find_all(exp.Select)):
        _link_chain(select)
        _inline_windows(select)
        _subscripts(select)
        _column_names(select)
        _order_by_alias(select)
    for i, sub in enumerate(list(tree.find_all(exp.Subquery))):
        if not sub.alias and isinstance(sub.parent, (exp.From, exp.Join)):
            sub.set("alias", exp.TableAlias(this=exp.to_identifier(f"_s{i}")))
        _values_lookup(sub, ctx)
    for cte in tree.find_all(exp.CTE):
        if cte.args.get("materialized") is False:
            ctx.inline.add(cte.alias)
            cte.set("materialized", None)
    for call in list(tree.find_all(exp.Anonymous, exp.ArgMin, exp.ArgMax)):
        name = call.name.lower() if isinstance(call, exp.Anonymous) else ""
        if isinstance(call, exp.Anonymous) and name == "timezone" and not (
                isinstance(call.parent, exp.Anonymous) and call.parent.name.lower() == "timezone"):
            _local_time(call)
        elif isinstance(call, (exp.ArgMin, exp.ArgMax)):
            call.set("expression", ordering_tuple(call.expression))
        elif name in ("arg_min_null", "arg_max_null"):
            call.set("expressions", [call.expressions[0], ordering_tuple(call.expressions[1])])
    for json in list(tree.find_all(exp.JSONExtractScalar)):
        json.set("expression", _json_key(json.expression, ctx))
    for window in list(tree.find_all(exp.Window)):
        _frame(window)
    for table in list(tree.find_all(exp.Table)):
        _relation(table, ctx)
    for union in reversed(list(tree.find_all(exp.Union))):
        _union(union)
    return tree


def _link_chain(select: exp.Select) -> None:
    """sessions.py's actor chain, ``SELECT l0.vid, coalesce(lN.prev, …, l0.prev) AS root FROM lk l0
    LEFT JOIN lk l1 ON l1.vid = l0.prev …`` (N + 1 hops along the links vid → prev, the last link
    found): one ``arrayFold`` of N + 1 hops, each a ``transform()`` over the links as two constant
    arrays (a hash lookup). The 32 joins took 3 s to plan and run on a few hundred events; a lookup in
    a ``Map`` is a linear search (9 s for 3,000 links)."""
    source = select.args.get("from_")
    joins = select.args.get("joins") or []
    if not joins or source is None or not isinstance(source.this, exp.Table) or source.this.alias != "l0":
        return
    links = source.this.name
    for i, join in enumerate(joins, start=1):
        table, on = join.this, join.args.get("on")
        if not (isinstance(table, exp.Table) and table.name == links and table.alias == f"l{i}"
                and on is not None and on.sql() == f"l{i}.vid = l{i - 1}.prev"):
            return
    hops = len(joins) + 1
    # TRICKY: two scalar subqueries, each the links sorted (one id has one link): aligned whatever order
    # each aggregation meets the rows in (unsorted, they were not: ids got other visitors' roots)
    pairs = "arraySort(groupArray((assumeNotNull(vid), assumeNotNull(prev))))"
    ids, prev = (f"(SELECT arrayMap(x -> x.{i}, {pairs}) FROM {links})" for i in (1, 2))
    folded = sqlglot.parse_one(
        f"SELECT vid, arrayFold((acc, i) -> transform(acc, {ids}, {prev}, acc), range({hops}), "
        f"assumeNotNull(vid)) AS root FROM {links}", read="clickhouse")
    folded.meta["clickhouse"] = True
    folded.set("with_", select.args.get("with_"))  # the links' CTE (DuckDB's SQL: translated)
    select.replace(folded)


def _inline_windows(select: exp.Select) -> None:
    named = {w.this.name: w for w in select.args.get("windows") or []}
    if not named:
        return
    select.set("windows", None)
    for window in list(select.find_all(exp.Window)):
        spec = named.get(window.alias)
        if spec is None or window.find_ancestor(exp.Select) is not select:
            continue
        window.set("alias", None)
        for key in ("partition_by", "order", "spec"):
            value = spec.args.get(key)
            window.set(key, value.copy() if isinstance(value, exp.Expr) else
                       [v.copy() for v in value] if value else None)


def _column_names(select: exp.Select) -> None:
    """A qualified column selected (``l0.vid``) is named after the column, as in DuckDB (ClickHouse
    keeps the qualifier in the name when the join has the column twice), unless two are."""
    names = [p.alias_or_name for p in select.expressions]
    for i, p in enumerate(select.expressions):
        if isinstance(p, exp.Column) and p.table and not isinstance(p.this, exp.Star) \
                and names.count(p.name) == 1:
            select.expressions[i] = exp.alias_(p, p.name)


def _order_by_alias(select: exp.Select) -> None:
    """ORDER BY a name the SELECT gives a column: that column (by position), as DuckDB's ORDER BY
    prefers output names; elsewhere names are the input's columns (``prefer_column_name_to_alias``)."""
    order = select.args.get("order")
    if order is None or any(isinstance(p, exp.Star) for p in select.expressions):
        return
    names = [p.alias_or_name for p in select.expressions]
    for item in order.expressions:
        column = item.this
        if isinstance(column, exp.Column) and not column.table and column.name in names:
            item.set("this", exp.Literal.number(names.index(column.name) + 1))


def _frame(window: exp.Window) -> None:
    """``lag``/``lead``: ClickHouse's in-frame functions over a frame holding the neighbour, NULL when
    there is none."""
    inner = window.this
    if not isinstance(inner, (exp.Lag, exp.Lead)):
        return
    if inner.args.get("offset") is not None or inner.args.get("default") is not None:
        raise UnsupportedSql("lag/lead with an offset or a default")
    lag = isinstance(inner, exp.Lag)
    window.set("this", fn("lagInFrame" if lag else "leadInFrame", fn("toNullable", inner.this)))
    window.set("spec", exp.WindowSpec(kind="ROWS", start="UNBOUNDED" if lag else "CURRENT ROW",
                                      start_side="PRECEDING" if lag else None,
                                      end="CURRENT ROW" if lag else "UNBOUNDED",
                                      end_side=None if lag else "FOLLOWING"))


def _subscripts(select: exp.Select) -> None:
    """``unnest(a) AS v, generate_subscripts(a, 1) AS n`` (one row per element, zipped): one
    ``arrayJoin`` over the subscripts and the element at each."""
    subs = [p for p in select.expressions if isinstance(p, exp.Alias) and isinstance(p.this, exp.Anonymous)
            and p.this.name.lower() == "generate_subscripts"]
    if not subs:
        return
    (sub,) = subs
    array = sub.this.expressions[0]
    sub.set("this", fn("arrayJoin", fn("arrayEnumerate", array.copy())))
    for p in select.expressions:
        if isinstance(p, exp.Alias) and isinstance(p.this, exp.Explode) and p.this.this == array:
            p.set("this", fn("arrayElement", array.copy(), exp.column(sub.alias)))


def _values_lookup(sub: exp.Subquery, ctx: Context) -> None:
    """``(SELECT w.shown FROM (VALUES (k, v), …) AS w(stored, shown) WHERE w.stored = x)`` (the lookup
    table of vocabulary.py, bound values) → ``transform(x, [k, …], [v, …], NULL)``: one array of each,
    where a CASE of thousands of branches took seconds to analyse."""
    select = sub.this
    source = select.args.get("from_") if isinstance(select, exp.Select) else None
    values = source.this if source is not None else None
    if not isinstance(values, exp.Values):
        return
    where = select.args.get("where")
    if not (isinstance(where, exp.Where) and isinstance(where.this, exp.EQ)) or not all(
            isinstance(v, exp.Placeholder) for row in values.expressions for v in row.expressions):
        raise UnsupportedSql("a VALUES table other than a lookup of bound values")
    pairs = [[ctx.value(v) for v in row.expressions] for row in values.expressions]
    arrays = [ctx.parameter([str(pair[i]) for pair in pairs], "Array(String)") for i in (0, 1)]
    missing = exp.cast(exp.null(), ch_type("Nullable(String)"))
    sub.replace(fn("transform", where.this.expression, *arrays, missing))


def _local_time(node: exp.Anonymous) -> None:
    """``timezone(tz, timezone('UTC', t))``: the wall-clock time at ``t`` (naive UTC) in ``tz``."""
    zone, inner = node.expressions
    if not (isinstance(inner, exp.Anonymous) and inner.name.lower() == "timezone"
            and inner.expressions[0].name == "UTC"):
        raise UnsupportedSql("timezone() other than timezone(?, timezone('UTC', t))")
    t = inner.expressions[1]
    offset = fn("timeZoneOffset", fn("toTimeZone", t.copy(), zone))
    node.replace(fn("addSeconds", t, offset))


_PATH: Final = re.compile(r'\$\."([^"]*)"')


def _json_key(path: exp.Expr, ctx: Context) -> exp.Expr:
    """The key of a JSON path ``$."key"`` (bound, or ``'$."' || key || '"'``)."""
    if isinstance(path, exp.Placeholder):
        found = _PATH.fullmatch(str(ctx.value(path)))
        if found is None:
            raise UnsupportedSql(f"JSON path {ctx.value(path)!r}")
        ctx.values[int(path.name[1:])] = found.group(1)
        return path
    inner = path.this if isinstance(path, exp.DPipe) else None
    if (isinstance(inner, exp.DPipe) and isinstance(path.expression, exp.Literal)
            and path.expression.name == '"' and isinstance(inner.this, exp.Literal)
            and inner.this.name == '$."'):
        key: exp.Expr = inner.expression
        return key
    raise UnsupportedSql(f"JSON path {path.sql('duckdb')}")


def _relation(table: exp.Table, ctx: Context) -> None:
    """A relation the engine provides, or ``read_parquet`` of stored files: a marker table here, its
    ClickHouse SQL spliced into the written statement (:meth:`Context.splice`; parsing it again cost
    more than the rest of a translation)."""
    source = table.this
    if isinstance(source, exp.ReadParquet):
        sql, name = _parquet(source, ctx), "parquet"
    elif isinstance(source, exp.Identifier) and not table.args.get("db"):
        given = ctx.relations(source.name)
        if given is None:
            return
        ctx.bound.update(given.params)
        sql, name = given.sql, source.name
    else:
        raise UnsupportedSql(f"table {table.sql('duckdb')}")
    marker = f"__mallard_relation_{len(ctx.spliced)}_"  # no marker begins another
    ctx.spliced[marker] = f"({sql})"
    alias = table.args.get("alias")
    table.replace(exp.Table(this=exp.to_identifier(marker),
                            alias=alias.copy() if alias else exp.TableAlias(this=exp.to_identifier(name))))


def _parquet(call_: exp.ReadParquet, ctx: Context) -> str:
    """``read_parquet(?, …)`` over stored files: one read of them all; with ``hive_partitioning=true``,
    each row's ``site_id`` and ``date`` as its path names them (text, decoded)."""
    first, *options = call_.expressions
    if not isinstance(first, exp.Placeholder):
        raise UnsupportedSql("read_parquet of a literal")
    files = ctx.value(first)
    if not isinstance(files, list) or not files:
        raise UnsupportedSql("read_parquet of no file list")
    hive = any(isinstance(o, exp.EQ) and o.this.name == "hive_partitioning"
               and o.expression.sql() == "TRUE" for o in options)
    extra = "".join(f", decodeURLComponent(extract(_path, '/{c}=([^/]*)/')) AS {c}" for c in _HIVE) \
        if hive else ""

    def bound(text: str) -> str:
        return f"{{{ctx.parameter(text).name}:String}}"

    return ctx.files.read([str(f) for f in files], None, bound, f"*{extra}")


def _names(select: exp.Expr) -> list[str]:
    """The output column names of a SELECT whose columns are all named."""
    if isinstance(select, exp.Union):
        return _names(select.this)
    if isinstance(select, exp.Subquery):
        return _names(select.this)
    names = [p.alias_or_name for p in select.expressions] if isinstance(select, exp.Select) else []
    if not names or any(not n or n == "*" for n in names):
        raise UnsupportedSql("UNION ALL BY NAME whose first branch's columns are not all named")
    return names


def _union(union: exp.Union) -> None:
    """By name: the later branches select the first one's columns, in its order. (A union's own ORDER
    BY and LIMIT apply to the whole union: sqlglot's ClickHouse writes it as a subquery.)"""
    if union.args.get("by_name"):
        names = _names(union.this)
        right = union.expression
        union.set("expression", exp.select(*names).from_(exp.Subquery(this=right, alias=exp.TableAlias(
            this=exp.to_identifier("by_name")))))
        union.set("by_name", None)
