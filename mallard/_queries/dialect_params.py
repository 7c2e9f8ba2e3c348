"""Bound values of the ClickHouse dialect: a Python value as a typed ClickHouse query parameter.

The query model binds every value as ``?`` (sql.py). Translated for ClickHouse (dialect.py) each ``?``
becomes ``{pN:Type}``: the type follows from the value, and chdb receives the value as text, which
ClickHouse parses in its escaped text format (a scalar: backslash escapes; an array: a list of quoted
elements). Naive datetimes are UTC instants, as in the lake.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Final

from .._errors import StorageError

__all__ = ["WILDCARDS", "Bound", "bind", "file_pattern"]

_ESCAPES: Final = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b",
                   "\f": "\\f"}
_TABLE: Final = str.maketrans(_ESCAPES)
_QUOTED: Final = str.maketrans({**_ESCAPES, "'": "\\'"})


class Bound:
    """A value as a ClickHouse query parameter: its type and its text."""

    __slots__ = ("text", "type")

    def __init__(self, type_: str, text: str) -> None:
        self.type = type_
        self.text = text


def _scalar(value: object) -> tuple[str, str]:
    """(ClickHouse type, unescaped text) of one value."""
    if isinstance(value, bool):
        return "Bool", "true" if value else "false"
    if isinstance(value, int):
        return "Int64", str(value)
    if isinstance(value, float):
        return "Float64", repr(value)
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        return f"Decimal(38, {scale})", format(value, "f")
    if isinstance(value, str):
        return "String", value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise TypeError(f"aware datetimes are not bound (naive UTC only): {value!r}")
        return "DateTime64(6, 'UTC')", value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return "Date32", value.isoformat()
    raise TypeError(f"no ClickHouse parameter type for {type(value).__name__}")


def bind(value: object) -> Bound:
    """``value`` (None, a scalar, or a list of scalars of one type) as a typed parameter.

    Raises:
        TypeError: a value of no known type (a statement of the query model never binds one).
    """
    if value is None:
        return Bound("Nullable(String)", "\\N")
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = [_scalar(v) for v in value]
        kinds = {k for k, _ in items}
        if len(kinds) > 1:
            raise TypeError(f"a list of mixed types is not bound: {sorted(kinds)}")
        kind = kinds.pop() if kinds else "Nothing"
        quoted = [("'" + text.translate(_QUOTED) + "'") if kind in ("String", "Date32") or
                  kind.startswith("DateTime64") else text for _, text in items]
        return Bound(f"Array({kind})", "[" + ",".join(quoted) + "]")
    kind, text = _scalar(value)
    return Bound(kind, text.translate(_TABLE))


#: Characters ClickHouse's ``file()`` reads as a wildcard in a path (it has no escape for them).
WILDCARDS: Final = "*?{}[],"
_WILDCARD: Final = re.compile("[" + re.escape(WILDCARDS) + "]")


def file_pattern(paths: Sequence[str]) -> str:
    """One path pattern of ClickHouse's ``file()`` naming exactly ``paths``, ``dir/{a,b,c}``: one table
    function reads them all (a union of one read per file made planning a statement that reads the
    lake several times cost seconds).

    Raises:
        StorageError: a path holds a character of :data:`WILDCARDS`.
    """
    bad = next((p for p in paths if _WILDCARD.search(p)), None)
    if bad is not None:
        raise StorageError(f"The ClickHouse engine cannot read {bad!r}: ClickHouse reads any of "
                           f"{WILDCARDS} in a path as a wildcard.")
    if len(paths) == 1:
        return paths[0]
    common = os.path.commonpath(paths)
    return common + "/{" + ",".join(os.path.relpath(p, common) for p in paths) + "}"
