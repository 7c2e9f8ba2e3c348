"""JsonStateFile (mallard/_statefile.py): ``update(change)``, the operation it shares with
:class:`mallard._store.objectstate.ObjectDocument` (tests/store/test_objectstate.py); its reads and locked
writes are exercised through goals, funnels and shares (tests/test_goals.py, tests/test_funnels.py)."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import orjson
import pytest

from mallard._statefile import JsonStateFile, SharedDocument

Counter = dict[str, int]


def _counter(root: Path) -> SharedDocument[Counter]:
    return JsonStateFile(root / "counter.json", root / "counter.lock", parse=orjson.loads, dump=orjson.dumps,
                         empty=lambda: {"n": 0})


def _plus_one(doc: Counter) -> Counter:
    return {"n": doc["n"] + 1}


def test_update_stores_the_change_and_an_unchanged_document_is_not_written(tmp_path: Path) -> None:
    doc = _counter(tmp_path)
    assert doc.update(lambda d: d) == {"n": 0}
    assert not (tmp_path / "counter.json").exists()
    assert doc.update(_plus_one) == {"n": 1}
    assert orjson.loads((tmp_path / "counter.json").read_bytes()) == {"n": 1}

    def refuse(d: Counter) -> Counter:
        raise ValueError("no such key")

    with pytest.raises(ValueError, match="no such key"):
        doc.update(refuse)
    assert _counter(tmp_path).read() == {"n": 1}


def _increment(root: str, times: int, start: Any) -> None:
    doc = _counter(Path(root))
    start.wait(60)
    for _ in range(times):
        doc.update(_plus_one)


def test_processes_incrementing_a_counter_lose_no_update(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_increment, args=(str(tmp_path), 25, start)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert _counter(tmp_path).read() == {"n": 100}
