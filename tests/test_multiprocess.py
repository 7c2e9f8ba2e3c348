"""Several processes ingest into one data directory (gunicorn -w 4): no lock errors, nothing lost or
doubled, and each process sees its own events at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import mallard
from tests.ledger import stored_paths

pytestmark = pytest.mark.slow  # several processes

ROOT = Path(__file__).resolve().parents[1]
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


def test_four_processes_ingest_concurrently(tmp_path: Path) -> None:
    data = tmp_path / "data"
    workers = [subprocess.Popen([sys.executable, "-m", "tests.procs.worker", str(data), str(w), "3"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for w in range(4)]
    outputs = []
    try:
        for proc in workers:
            try:
                out, err = proc.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGUSR1)  # faulthandler: every thread's stack to stderr
                time.sleep(1)
                proc.kill()
                out, err = proc.communicate(timeout=10)
                raise AssertionError(f"worker hung:\n{err}") from None
            outputs.append((proc.returncode, out.splitlines(), err))
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    for code, lines, err in outputs:
        assert code == 0, (lines[-3:], err)
        assert "lock" not in err.lower() and "Traceback" not in err, err
        # its own unflushed events are counted (some of them at least were still buffered)
        assert lines[0].startswith("own 5 pending=") and lines[0] != "own 5 pending=0", lines[0]
        assert lines[-1] == "closed True"
        assert not [line for line in lines if line.startswith("mismatch")]
    acked = [line[4:] for _, lines, _ in outputs for line in lines if line.startswith("ack ")]
    assert len(acked) > 400 and len(set(acked)) == len(acked)
    for w in range(4):
        assert any(p.startswith(f"/w{w}/") for p in acked)

    assert list((data / "spool").iterdir()) == []  # every worker closed cleanly: no segment, no record
    with mallard.open(data) as q:
        stored = stored_paths(q, "multi.example")
        assert sorted(stored) == sorted(acked)
        assert set(stored.values()) == {1}
        assert q.sites() == ["multi.example", "own0.example", "own1.example", "own2.example",
                             "own3.example"]
        total = q.query("multi.example", metrics=["pageviews"], start_date="2024-03-01",
                        end_date="2024-03-02").rows[0]["pageviews"]
        assert total == len(acked)


def test_a_forked_child_ingests_on_its_own(tmp_path: Path) -> None:
    """After ``fork`` the child starts its own spool and buffer; the parent keeps and stores its own."""
    data = tmp_path / "data"
    ts = datetime(2024, 3, 1, 12, tzinfo=UTC)
    m = mallard.Mallard(data_dir=data, flush_interval_secs=3600, flush_event_count=10**9)
    try:
        for i in range(10):
            assert m.track("pageview", site="fork.example", url=f"https://fork.example/parent/{i}",
                           ip="192.0.2.1", user_agent=UA, timestamp=ts + timedelta(seconds=i))
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                ok = all(m.track("pageview", site="fork.example", url=f"https://fork.example/child/{i}",
                                 ip="192.0.2.2", user_agent=UA, timestamp=ts + timedelta(seconds=i))
                         for i in range(7))
                child_sees = m.queries.sql("SELECT count(*) AS n FROM events").to_pylist()[0]["n"]
                code = 0 if ok and child_sees == 7 and m.close() else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        parent_sees = m.queries.sql(
            "SELECT count(*) AS n FROM events WHERE starts_with(pathname, '/parent/')").to_pylist()[0]["n"]
        assert parent_sees == 10
    finally:
        assert m.close()
    with mallard.open(data) as q:
        rows = q.sql("SELECT pathname FROM events").to_pylist()
        paths = sorted(r["pathname"] for r in rows)
        assert paths == sorted([f"/parent/{i}" for i in range(10)] + [f"/child/{i}" for i in range(7)])
