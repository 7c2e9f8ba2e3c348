"""Acknowledged versus stored events: the exactly-once check shared by the crash-safety tests.

Every test that kills processes records the pathnames of the events it got an acknowledgement for, then
reads the lake and calls :func:`assert_exactly_once`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any


def stored_paths(queries: Any, site: str) -> dict[str, int]:
    """How many times each pathname of ``site`` is stored (``queries``: ``m.queries`` or ``mallard.open``)."""
    rows = queries.sql("SELECT pathname, count(*) AS n FROM events WHERE site_id = ? GROUP BY 1",
                       [site]).to_pylist()
    return {r["pathname"]: r["n"] for r in rows}


def duplicates(stored: dict[str, int]) -> dict[str, int]:
    return {p: n for p, n in stored.items() if n != 1}


def assert_exactly_once(stored: dict[str, int], acked: Sequence[str], prefix: str,
                        sent: Collection[str] | None = None) -> None:
    """Every acknowledged pathname is stored once; nothing is stored twice; nothing stored was never
    sent (``sent``: every pathname attempted, acknowledged or not; by default anything under ``prefix``)."""
    assert acked, "nothing was acknowledged"
    assert len(set(acked)) == len(acked)
    missing = [p for p in acked if p not in stored]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:3]}"
    twice = duplicates(stored)
    assert not twice, f"{len(twice)} events stored more than once, e.g. {list(twice.items())[:3]}"
    assert all(p.startswith(prefix) for p in stored)
    if sent is not None:
        invented = set(stored) - set(sent)
        assert not invented, f"{len(invented)} stored events were never sent, e.g. {sorted(invented)[:3]}"
