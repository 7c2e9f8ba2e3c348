"""Sql fragments: text plus bound parameters. The only place where SQL text is concatenated.

Identifiers come from the registries; every value travels in ``params`` and is bound as ``?``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sql:
    text: str
    params: tuple[object, ...] = ()

    def __add__(self, other: Sql | str) -> Sql:
        if isinstance(other, str):
            return Sql(self.text + other, self.params)
        return Sql(self.text + other.text, self.params + other.params)

    def __radd__(self, other: str) -> Sql:
        return Sql(other + self.text, self.params)

    @staticmethod
    def join(parts: Iterable[Sql | str], sep: str = ", ") -> Sql:
        texts: list[str] = []
        params: list[object] = []
        for part in parts:
            if isinstance(part, str):
                texts.append(part)
            else:
                texts.append(part.text)
                params.extend(part.params)
        return Sql(sep.join(texts), tuple(params))

    @staticmethod
    def value(v: object) -> Sql:
        return Sql("?", (v,))

    def wrap(self) -> Sql:
        return "(" + self + ")"


def with_ctes(ctes: Sequence[tuple[str, Sql]], body: Sql, *, inline: Collection[str] = (),
              materialize: Collection[str] = ()) -> Sql:
    """``WITH name AS (…), … body`` (names are identifiers chosen by the builder).

    CTEs named in ``inline`` are ``NOT MATERIALIZED``: cheap scans that DuckDB should push filters and
    projections into rather than buffer. CTEs named in ``materialize`` are ``MATERIALIZED``: narrow
    results read more than once, cheaper to buffer than what they are computed from.
    """
    if not ctes:
        return body

    def keyword(name: str) -> str:
        return "NOT MATERIALIZED " if name in inline else "MATERIALIZED " if name in materialize else ""

    return "WITH " + Sql.join([f"{name} AS {keyword(name)}(" + sql + ")" for name, sql in ctes],
                              ",\n") + "\n" + body

