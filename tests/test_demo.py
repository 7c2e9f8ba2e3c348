"""`mallard demo` (``mallard/_demo.py``): generated traffic in a throw-away data directory that every
report reads, and served (run as a subprocess, as operators do)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mallard
from tests.test_cli import run

# real processes (`pytest -m 'not slow'` leaves them out)
pytestmark = pytest.mark.slow


def test_demo_fills_a_directory_that_every_report_reads(tmp_path: Path) -> None:
    """`mallard demo --no-serve` writes generated traffic of demo.example with its goals and stored
    sessions; the reports see its visitors, sources, countries, goals and revenue."""
    out = run("demo", "--no-serve", "--data-dir", str(tmp_path / "demo"), "--visitors", "120")
    assert out.returncode == 0, out.stderr
    assert "demo.example" in out.stderr and str(tmp_path / "demo") in out.stderr
    assert list((tmp_path / "demo" / "sessions").rglob("*.parquet"))  # settled days stored
    q = mallard.open(tmp_path / "demo")
    try:
        main = q.main("demo.example", period="30d")
        assert 60 <= main.unique_visitors <= 120 and main.total_pageviews > main.unique_visitors
        sources = {r["value"] for r in q.breakdown("demo.example", "sources", period="30d", limit=50).rows}
        assert {"Google", "(direct)"} <= sources
        countries = q.breakdown("demo.example", "countries", period="30d", limit=50).rows
        assert sum(r["visitors"] for r in countries if r["value"] not in (None, "(unknown)")) > 0
        goals = {r["event:goal"]: r for r in q.query("demo.example", metrics=["visitors", "total_revenue"],
                                                      dimensions=["event:goal"], period="30d").rows}
        assert set(goals) == {"Signup", "Purchase", "Visit /pricing"}
        assert goals["Purchase"]["total_revenue"].currency == "EUR"
    finally:
        q.close()


def test_demo_rejects_a_bad_count(tmp_path: Path) -> None:
    out = run("demo", "--no-serve", "--data-dir", str(tmp_path / "demo"), "--visitors", "0")
    assert out.returncode == 2 and "visitors and days must be at least 1" in out.stderr


@pytest.mark.slow  # a real server process
def test_demo_serves_what_it_generated(tmp_path: Path) -> None:
    """`mallard demo` (no --no-serve) serves the dashboard and the stats of what it generated."""
    import os
    import signal
    import time

    import httpx

    from tests.http.conftest import free_port

    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mallard", "demo", "--port", str(port), "--visitors",
                                 "50", "--data-dir", str(tmp_path / "demo")], stdout=out, stderr=out,
                                start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(base + "/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mallard demo did not get ready in 120 s"
            time.sleep(0.3)
        r = httpx.get(base + "/api/stats/main", params={"site_id": "demo.example", "period": "30d"},
                      timeout=30)
        assert r.status_code == 200 and r.json()["unique_visitors"] > 0, r.text
        assert httpx.get(base + "/", timeout=10).status_code == 200  # the dashboard
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
