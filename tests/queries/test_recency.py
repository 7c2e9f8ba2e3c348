"""``Queries.freshness`` and the repr of a Queries object: the newest event read, the lake's last write,
and events writers accepted that are not flushed yet (their spools), beside a running writer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import mallard
from mallard._queries import Queries
from mallard._store.spool import encode, waiting

from .data import OTHER_SITE, SITE, event

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


def test_an_empty_data_directory(tmp_path: Path, open_queries: Callable[..., Queries]) -> None:
    (tmp_path / "d").mkdir()
    q = open_queries(tmp_path / "d")
    assert q.freshness().to_dict() == {"newest_event": None, "last_flush": None, "buffered_events": 0,
                                       "unflushed_events": 0, "unflushed_writers": 0}
    assert repr(q) == f"<mallard.Queries of {tmp_path / 'd'}, read-only: no events>"


def test_the_stored_lake(queries: Queries) -> None:
    """The hand-made lake: its newest event per site, and the files' write time."""
    fresh = queries.freshness(SITE)
    assert fresh.newest_event == datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    assert fresh.meta == {"site_id": SITE}
    assert queries.freshness(OTHER_SITE).newest_event == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert queries.freshness().newest_event == fresh.newest_event
    assert fresh.last_flush is not None and abs(time.time() - fresh.last_flush.timestamp()) < 3600
    assert "newest event 2024-05-02 10:00:00 UTC" in repr(queries)
    html = fresh._repr_html_()
    assert "<th>newest_event</th>" in html and "2024-05-02 10:00:00+00:00" in html


def test_open_beside_a_writer_in_this_process(tmp_path: Path) -> None:
    """Events a writer accepted are counted as unflushed (and not answered) until it flushes; its own
    queries include them as buffered."""
    data = tmp_path / "d"
    now = datetime.now(UTC).replace(microsecond=0)
    with mallard.Mallard(data_dir=data, flush_interval_secs=3600) as m:
        m.track("pageview", site=SITE, url="/", ip="203.0.113.9", user_agent=UA, timestamp=now)
        m.flush()
        later = now + timedelta(seconds=5)
        for path in ("/a", "/b"):
            m.track("pageview", site=SITE, url=path, ip="203.0.113.9", user_agent=UA, timestamp=later)
        analyst = mallard.open(data)
        seen = analyst.freshness(SITE)
        assert seen.newest_event == now and seen.buffered_events == 0
        assert (seen.unflushed_events, seen.unflushed_writers) == (2, 1)
        assert "2 event(s) of other writers not flushed yet" in repr(analyst)
        own = m.queries.freshness()
        assert own.newest_event == later and own.buffered_events == 2
        assert "2 buffered event(s) included" in repr(m.queries)
        assert "read-only" not in repr(m.queries)
        assert analyst.freshness(OTHER_SITE).unflushed_events == 0
        m.flush()
        seen = analyst.freshness(SITE)
        assert seen.newest_event == later and seen.unflushed_events == 0
        analyst.close()


def test_waiting_counts_complete_lines_per_writer_and_site(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    a = event("v", "2024-05-01 10:00:00")
    b = event("v", "2024-05-01 10:00:00", site=OTHER_SITE)
    # a segment of a killed writer: zeros after its events, and a torn last line
    (spool / "h-1-aa.1").write_bytes(encode(a) + encode(b) + encode(a)[:20] + b"\0" * 64)
    (spool / "h-1-aa.2").write_bytes(encode(a))
    (spool / "h-2-bb.1").write_bytes(encode(b))
    (spool / ".h-3-cc.1.new").write_bytes(encode(a))  # not a segment yet
    (spool / ".h-2-bb.commit").write_bytes(b"{}")
    assert waiting(spool) == {"h-1-aa": 3, "h-2-bb": 1}
    assert waiting(spool, SITE) == {"h-1-aa": 2, "h-2-bb": 0}
    assert waiting(tmp_path / "missing") == {}


@pytest.mark.slow
def test_open_beside_a_writer_process(tmp_path: Path) -> None:
    """A writer in another process: open() sees what it flushed, and counts what it has not."""
    data = tmp_path / "d"
    script = textwrap.dedent(f"""
        import sys, mallard
        m = mallard.Mallard(data_dir={str(data)!r}, flush_interval_secs=3600)
        ua = {UA!r}
        m.track("pageview", site={SITE!r}, url="/", ip="203.0.113.9", user_agent=ua)
        m.flush()
        for _ in range(3):
            m.track("pageview", site={SITE!r}, url="/b", ip="203.0.113.9", user_agent=ua)
        print("ready", flush=True)
        sys.stdin.readline()
        m.flush()
        print("flushed", flush=True)
        sys.stdin.readline()
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(mallard.__file__).parents[1])}
    with subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True, env=env) as writer:
        assert writer.stdin is not None and writer.stdout is not None
        try:
            assert writer.stdout.readline().strip() == "ready"
            q = mallard.open(data)
            assert q.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 1}]
            fresh = q.freshness()
            assert (fresh.unflushed_events, fresh.unflushed_writers) == (3, 1)
            writer.stdin.write("\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "flushed"
            assert q.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 4}]
            assert q.freshness().unflushed_events == 0
            q.close()
        finally:
            writer.stdin.close()
            writer.wait(timeout=60)
