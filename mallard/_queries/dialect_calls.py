"""Functions, aggregates, casts and operators of the query model's DuckDB SQL, in ClickHouse.

One rule per construct the query modules write (dialect.py applies them to every node, children
first). Each gives ClickHouse's expression with DuckDB's semantics; the non-obvious ones:

* aggregates over no rows are NULL (the ``aggregate_functions_null_for_empty`` setting), ``FILTER
  (WHERE c)`` is the ``-If`` combinator, ``median`` is interpolated (``quantileExactInclusive``, R-7 as
  DuckDB's), ``list`` skips no row the model gives it a NULL in;
* ``arg_min(a, key)`` skips rows whose ``a`` is NULL (ClickHouse's ``argMin`` too) and ``arg_min_null``
  does not (a one-element tuple is never NULL); a struct key orders a NULL field after every value,
  as DuckDB's struct comparison does, so it becomes ``(isNull(f), f)`` pairs;
* strings are UTF-8: ``length``, ``lower`` count and fold characters, not bytes; ``contains`` is a
  substring search; ``regexp_matches`` and ``regexp_full_match`` are RE2 searches as in DuckDB;
* ``lag``/``lead`` are ``lagInFrame``/``leadInFrame`` over a frame holding the neighbour, NULL when
  there is none;
* ``json_extract_string`` is NULL for a missing key or a JSON null, the unescaped text of a string and
  the JSON text of any other value;
* ``md5_number_lower`` is bytes 9-16 of the MD5 digest, little-endian (stored visitor keys match bit
  for bit); ``hash`` is any 64-bit hash (the model only groups and joins on it, within one statement).

A function the query model never writes raises :class:`UnsupportedSql`: a new DuckDB construct fails
the ClickHouse engine's differential tests instead of running with other semantics.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final

from sqlglot import exp

__all__ = ["UnsupportedSql", "call", "ch_type", "fn", "ordering_tuple"]


class UnsupportedSql(ValueError):
    """The DuckDB statement uses a construct the ClickHouse dialect does not translate."""


def ch_type(text: str) -> exp.DataType:
    """The ClickHouse type ``text`` (parsed once)."""
    return _types(text).copy()


@functools.lru_cache(maxsize=256)
def _types(text: str) -> exp.DataType:
    return exp.DataType.build(text, dialect="clickhouse")


def fn(name: str, *args: exp.Expr) -> exp.Anonymous:
    """``name(args…)``, a ClickHouse function call (its arguments may still be DuckDB's)."""
    node = exp.Anonymous(this=name, expressions=list(args))
    node.meta["translated"] = True
    return node


def _str(text: str) -> exp.Literal:
    return exp.Literal.string(text)


def ordering_tuple(key: exp.Expr) -> exp.Expr:
    """A DuckDB struct used as an ordering key, as a ClickHouse tuple ordering alike: each field a pair
    ``(isNull(f), f)``, so that NULL sorts after every value."""
    if not isinstance(key, exp.Struct):
        return key
    parts: list[exp.Expr] = []
    for field in key.expressions:
        value = field.expression if isinstance(field, exp.PropertyEQ) else field
        parts += [fn("isNull", value.copy()), value]
    return fn("tuple", *parts)


def _struct(node: exp.Struct) -> exp.Expr:
    """A struct literal: a tuple, named when its fields are (``enable_named_columns_in_function_tuple``)."""
    items: list[exp.Expr] = []
    for field in node.expressions:
        if isinstance(field, exp.PropertyEQ):
            items.append(exp.alias_(field.expression, field.this.name))
        else:
            items.append(field)
    return fn("tuple", *items)


_BUCKETS: Final = {"HOUR": "toStartOfHour", "DAY": "toStartOfDay", "WEEK": "toMonday",
                   "MONTH": "toStartOfMonth"}


def _trunc(node: exp.Expr) -> exp.Expr:
    unit = node.args["unit"].name.upper()
    if unit not in _BUCKETS:
        raise UnsupportedSql(f"date_trunc unit {unit}")
    return fn(_BUCKETS[unit], node.this)


def _json_value(doc: exp.Expr, key: exp.Expr) -> exp.Expr:
    kind = fn("JSONType", doc, key)
    return exp.Case(ifs=[exp.If(this=exp.EQ(this=kind, expression=_str("Null")), true=exp.null()),
                         exp.If(this=exp.EQ(this=kind.copy(), expression=_str("String")),
                                true=fn("JSONExtractString", doc.copy(), key.copy()))],
                    default=fn("JSONExtractRaw", doc.copy(), key.copy()))


def _regexp(node: exp.RegexpLike) -> exp.Expr:
    flag = node.args.get("flag")
    pattern = node.expression
    if flag is not None:
        if flag.name != "i":
            raise UnsupportedSql(f"regexp flag {flag.name!r}")
        pattern = fn("concat", _str("(?i)"), pattern)
    return fn("match", node.this, pattern)


def _hex_key(node: exp.TryCast) -> exp.Expr:
    """``TRY_CAST('0x' || left(v, 16) AS UBIGINT)`` (sessions.visitor_key): the 16 hex digits as a
    number, NULL when they are not 16 hex digits."""
    text = node.this
    if not (isinstance(text, exp.DPipe) and isinstance(text.this, exp.Literal) and text.this.name == "0x"):
        raise UnsupportedSql(f"TRY_CAST of {node.this.sql('duckdb')}")
    digits = text.expression
    valid = fn("match", digits, _str("^[0-9a-fA-F]{16}$"))
    number = fn("reinterpretAsUInt64", fn("reverse", fn("unhex", digits.copy())))
    return exp.If(this=valid, true=number, false=exp.null())


def _quantile(node: exp.Median) -> exp.Expr:
    # R-7 interpolation, DuckDB's median of numbers
    return exp.ParameterizedAgg(this="quantileExactInclusive", expressions=[exp.Literal.number("0.5")],
                                params=[node.this])


def _distinct_or(node: exp.Expr, plain: str, distinct: str) -> exp.Expr:
    inner = node.this
    if isinstance(inner, exp.Distinct):
        return fn(distinct, *inner.expressions)
    return fn(plain, inner)


def _array_sort(node: exp.ArraySort) -> exp.Expr:
    asc = node.expression
    if asc is not None and not (isinstance(asc, exp.Boolean) and asc.this):
        raise UnsupportedSql("list_sort descending")
    return fn("arraySort", node.this)


def _slice(node: exp.Bracket) -> exp.Expr:
    (index,) = node.expressions
    if isinstance(index, exp.Slice):
        start, end = index.this, index.expression
        length = exp.Add(this=exp.Sub(this=end, expression=start.copy()), expression=exp.Literal.number(1))
        return fn("arraySlice", node.this, start, exp.paren(length))
    return node


def _split(node: exp.Expr) -> exp.Expr:
    """``string_split(x, sep)`` of a non-NULL text; the NULL of a NULL text is restored where the array
    becomes text again (:func:`_array_to_string`: ClickHouse arrays are never NULL)."""
    split = fn("splitByString", node.expression, fn("assumeNotNull", node.this))
    split.meta["null_of"] = node.this.copy()
    return split


def _array_to_string(node: exp.ArrayToString) -> exp.Expr:
    out = fn("arrayStringConcat", node.this, node.expression)
    text = next((n.meta["null_of"] for n in node.this.walk() if "null_of" in n.meta), None)
    if text is None:
        return out
    return exp.If(this=exp.Is(this=text, expression=exp.null()), true=exp.null(), false=out)


def _trim(node: exp.Trim) -> exp.Expr:
    if node.args.get("position") != "TRAILING" or node.expression is None:
        raise UnsupportedSql(f"trim {node.sql('duckdb')}")
    return fn("trimRight", node.this, node.expression)


def _unnest(node: exp.Explode) -> exp.Expr:
    """``unnest(x)``: a row per element; none for a NULL list (ClickHouse arrays are never NULL: a
    ``CASE`` without ``ELSE`` gives the empty one)."""
    if isinstance(node.this, exp.Case) and node.this.args.get("default") is None:
        node.this.set("default", exp.Array(expressions=[]))
    return fn("arrayJoin", node.this)


def _anonymous(node: exp.Anonymous) -> exp.Expr:
    name = node.name.lower()
    args = node.expressions
    simple = {"epoch_us": "toUnixTimestamp64Micro", "to_microseconds": "toIntervalMicrosecond",
              "round_even": "roundBankers", "json_valid": "isValidJSON",
              "suffix": "endsWith", "list_element": "arrayElement", "hash": "cityHash64"}
    if name in simple:
        return fn(simple[name], *args)
    if name == "md5_number_lower":
        return fn("reinterpretAsUInt64", fn("substring", fn("MD5", *args), exp.Literal.number(9),
                                            exp.Literal.number(8)))
    if name in ("arg_min_null", "arg_max_null"):
        value, key = args
        agg = fn("argMin" if name == "arg_min_null" else "argMax", fn("tuple", value), key)
        return fn("tupleElement", agg, exp.Literal.number(1))
    if name == "string_split":
        return _split(exp.Split(this=args[0], expression=args[1]))
    if name == "timezone":
        raise UnsupportedSql("timezone() other than timezone(?, timezone('UTC', column))")
    raise UnsupportedSql(f"function {node.name}")


def _arg_min(node: exp.Expr) -> exp.Expr:
    """``arg_min(a, key)`` (``key`` made an ordering tuple before: dialect.py)."""
    return fn("argMin" if isinstance(node, exp.ArgMin) else "argMax", node.this, node.expression)


_TYPES: Final = {exp.DataType.Type.DATE: "Date32", exp.DataType.Type.INT: "Int32",
                 exp.DataType.Type.BIGINT: "Int64", exp.DataType.Type.UBIGINT: "UInt64",
                 exp.DataType.Type.DOUBLE: "Float64", exp.DataType.Type.BOOLEAN: "Bool",
                 exp.DataType.Type.TIMESTAMP: "DateTime64(6, 'UTC')",
                 exp.DataType.Type.TIMESTAMPNTZ: "DateTime64(6, 'UTC')",
                 exp.DataType.Type.TEXT: "String", exp.DataType.Type.VARCHAR: "String"}


def _type(to: exp.DataType) -> str:
    """The ClickHouse type of DuckDB's ``to`` (DECIMAL(p, s) as it is)."""
    if to.this == exp.DataType.Type.DECIMAL:
        precision, scale = (p.name for p in to.expressions)
        return f"Decimal({precision}, {scale})"
    found = _TYPES.get(to.this)
    if found is None:
        raise UnsupportedSql(f"cast to {to.sql('duckdb')}")
    return found


def _cast(node: exp.Cast) -> exp.Expr:
    """A cast to DuckDB's type; NULL stays NULL (ClickHouse's conversions take NULL to NULL)."""
    to = node.to
    value = node.this
    if to.this == exp.DataType.Type.ARRAY:
        # ClickHouse arrays are never NULL: a NULL list is the empty one (the model never tells them
        # apart: only the total rows of rollups carry keys)
        array = ch_type(f"Array({_type(to.expressions[0])})")
        if isinstance(value, exp.Null):
            return exp.cast(exp.Array(expressions=[]), array)
        if isinstance(value, exp.Case) and value.args.get("default") is None:
            value.set("default", exp.Array(expressions=[]))
        return exp.cast(value, array)
    return exp.cast(value, ch_type(f"Nullable({_type(to)})"))


# node class → its ClickHouse form (children already translated)
_RULES: Final[dict[type[exp.Expr], Callable[[exp.Expr], exp.Expr]]] = {
    exp.Anonymous: lambda n: _anonymous(n),  # type: ignore[arg-type]
    exp.ArgMin: _arg_min,
    exp.ArgMax: _arg_min,
    exp.Struct: lambda n: _struct(n),  # type: ignore[arg-type]
    exp.TimestampTrunc: _trunc,
    exp.DateTrunc: _trunc,
    exp.JSONExtractScalar: lambda n: _json_value(n.this, n.expression),
    exp.RegexpLike: lambda n: _regexp(n),  # type: ignore[arg-type]
    exp.RegexpFullMatch: lambda n: fn("match", n.this, fn("concat", _str("^(?:"), n.expression, _str(")$"))),
    exp.RegexpReplace: lambda n: fn("replaceRegexpOne", n.this, n.expression, n.args["replacement"]),
    exp.Contains: lambda n: exp.GT(this=fn("position", n.this, n.expression),
                                   expression=exp.Literal.number(0)),
    exp.StartsWith: lambda n: fn("startsWith", n.this, n.expression),
    exp.Lower: lambda n: fn("lowerUTF8", n.this),
    exp.Upper: lambda n: fn("upperUTF8", n.this),
    exp.Length: lambda n: fn("lengthUTF8", n.this),
    exp.ArraySize: lambda n: fn("length", n.this),
    exp.Left: lambda n: fn("substringUTF8", n.this, exp.Literal.number(1), n.expression),
    exp.TryCast: lambda n: _hex_key(n),  # type: ignore[arg-type]
    exp.Cast: lambda n: _cast(n),  # type: ignore[arg-type]
    exp.IntDiv: lambda n: fn("intDiv", n.this, n.expression),
    exp.Median: lambda n: _quantile(n),  # type: ignore[arg-type]
    exp.LogicalOr: lambda n: fn("max", n.this),
    exp.ArrayAgg: lambda n: _distinct_or(n, "groupArray", "groupUniqArray"),
    exp.ArraySort: lambda n: _array_sort(n),  # type: ignore[arg-type]
    exp.ArrayContains: lambda n: fn("has", n.this, n.expression),
    exp.ArrayToString: lambda n: _array_to_string(n),  # type: ignore[arg-type]
    exp.Split: _split,
    exp.Bracket: lambda n: _slice(n),  # type: ignore[arg-type]
    exp.Trim: lambda n: _trim(n),  # type: ignore[arg-type]
    exp.TimeToStr: lambda n: fn("formatDateTime", n.this, n.args["format"]),
    exp.DateDiff: lambda n: fn("dateDiff", _str(n.args["unit"].name.lower()), n.expression, n.this),
    exp.Explode: lambda n: _unnest(n),  # type: ignore[arg-type]
    exp.JSONKeys: lambda n: fn("JSONExtractKeys", fn("ifNull", n.this, _str(""))),
}


#: Functions (and function-like operators) that ClickHouse writes and evaluates as DuckDB does.
_SAME: Final = frozenset({exp.And, exp.Or, exp.Xor, exp.Coalesce, exp.Nullif, exp.Case, exp.If, exp.Count,
                          exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Abs, exp.RowNumber, exp.Concat,
                          exp.Exists, exp.Array})


def call(node: exp.Expr) -> exp.Expr:
    """``node`` in ClickHouse (itself when it means the same there).

    Raises:
        UnsupportedSql: a function with no rule here that ClickHouse may evaluate otherwise.
    """
    if node.meta.get("translated"):
        return node
    rule = _RULES.get(type(node))
    if rule is not None:
        return rule(node)
    if isinstance(node, exp.Func) and type(node) not in _SAME:
        raise UnsupportedSql(f"function {node.sql('duckdb')[:80]}")
    return node
