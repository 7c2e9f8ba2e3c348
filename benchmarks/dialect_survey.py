"""How far plain sqlglot gets with the query model's SQL, against mallard's ClickHouse dialect.

The question of docs/architecture.md ("Two engines"): translate the DuckDB SQL that the query modules
write, or thread a dialect through them. This runs every query shape of the differential tests
(tests/queries/clickhouse_traffic.py) on generated traffic with ``engine="clickhouse"`` and, for each
distinct statement the engine runs, also runs sqlglot's own DuckDB → ClickHouse transpilation of it
(the same relations and bound values substituted, nothing else), then prints how many statements
sqlglot's version ran at all and how many gave the dialect's answer (the dialect's answers equal
DuckDB's: the differential tests check it).

Usage::

    python benchmarks/dialect_survey.py
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlglot

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the differential tests' traffic

from mallard._queries import Queries
from mallard._queries.clickhouse import ClickHouseReader, _as_duckdb
from mallard._queries.dialect import _SETTINGS_SQL, Translated, _named
from mallard._queries.dialect_params import bind
from mallard._queries.dialect_rewrites import Context, _relation
from mallard._settings import Settings
from mallard._store import Store
from tests.queries.clickhouse_traffic import shapes, traffic
from tests.queries.dialect_check import same
from tests.queries.test_clickhouse_differential import write

outcomes: Counter[str] = Counter()
seen: set[str] = set()
first_error: dict[str, str] = {}


def plain(reader: ClickHouseReader, sql: str, params: list[object], fixed: bool) -> Translated:
    """sqlglot's transpilation, with only the engine's relations and the bound values put in; ``fixed``:
    also the three rewrites without which no statement runs (no ``NOT MATERIALIZED``, ``suffix`` as
    ``endsWith``) and the dialect's settings (NULLs of outer joins and empty aggregates, UTC)."""
    ctx = Context(list(params), reader._relation)
    tree = sqlglot.parse_one(_named(sql, len(params)), read="duckdb")
    if fixed:
        for cte in tree.find_all(sqlglot.exp.CTE):
            cte.set("materialized", None)
        for call in list(tree.find_all(sqlglot.exp.Anonymous)):
            if call.name.lower() == "suffix":
                call.set("this", "endsWith")
    for table in list(tree.find_all(sqlglot.exp.Table)):
        _relation(table, ctx)
    for node in list(tree.find_all(sqlglot.exp.Placeholder)):
        if node.args.get("kind") is None:
            bound = ctx.bound[node.name] = bind(ctx.value(node))
            node.set("kind", sqlglot.exp.DataType.build(bound.type, dialect="clickhouse"))
    return Translated(tree.sql(dialect="clickhouse") + (_SETTINGS_SQL if fixed else ""), ctx.bound)


original = ClickHouseReader.execute


def surveyed(self: ClickHouseReader, sql: str, params: Any = ()) -> Any:
    answer = original(self, sql, params)
    if sql in seen:
        return answer
    seen.add(sql)
    for fixed in (False, True):
        variant = "+ 3 fixes" if fixed else "alone"
        try:
            got = _as_duckdb(self._engine.run(plain(self, sql, list(params), fixed), self._tables))
        except Exception as exc:  # its failure is the measurement
            outcomes[f"{variant}, failed"] += 1
            if fixed:  # by kind: the message without positions and scopes
                kind = re.sub(r"position \d+ \(.*|In scope.*|: In .*", "", str(exc).splitlines()[0])[:100]
                first_error.setdefault(kind, sql[:60])
            continue
        outcome = "same answer" if same(got.to_pylist(), answer.to_pylist()) else "another answer"
        outcomes[f"{variant}, {outcome}"] += 1
    return answer


def main() -> None:
    ClickHouseReader.execute = surveyed  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        data = write(Path(tmp) / "lake", traffic(random.Random(13)), seed=1)
        q = Queries(Store(data, read_only=True), Settings(data_dir=data, engine="clickhouse"),
                    clock=lambda: datetime(2024, 5, 3, 18).astimezone())
        q.goals.add("s.test", event_name="signup", display_name="Signup")
        for shape in shapes().values():
            try:
                shape(q)
            except Exception as exc:  # a shape the dialect itself fails: reported
                outcomes["dialect failed"] += 1
                print("dialect failed:", exc)
    total = len(seen)
    print(f"distinct statements: {total}")
    for variant in ("alone", "+ 3 fixes"):
        for outcome in ("same answer", "another answer", "failed"):
            n = outcomes[f"{variant}, {outcome}"]
            print(f"  sqlglot {variant}, {outcome}: {n} ({100 * n / total:.0f}%)")
    print("  the dialect: every statement, DuckDB's answer (tests/queries/test_clickhouse_differential.py)")
    print(f"errors of sqlglot + 3 fixes ({len(first_error)} kinds), the first 20:")
    for error in sorted(first_error)[:20]:
        print("  ", error)


if __name__ == "__main__":
    main()
