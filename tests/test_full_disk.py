"""A full disk: events are refused with a reason (HTTP 503 + Retry-After), no process dies, reads keep
working, and nothing acknowledged is lost once space returns. On a real (tmpfs) filesystem."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mallard
from tests.fullfs import fill, small_filesystem
from tests.http.conftest import Live, eventually, start, stop
from tests.test_durability import Child, assert_exactly_once

ROOT = Path(__file__).resolve().parents[1]
UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0 Safari/537.36")

pytestmark = pytest.mark.slow


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    with small_filesystem(tmp_path / "fs" / "data", 24 * 1024) as mount:
        yield mount


# Runs in a child process: before the fix, a copy into a spool page the full filesystem cannot back
# killed it with SIGBUS.
_TRACK_UNTIL_FULL = textwrap.dedent("""
    import json, os, sys
    import mallard
    from tests.fullfs import fill

    data = sys.argv[1]
    m = mallard.Mallard(data_dir=data, flush_event_count=10**9, flush_interval_secs=3600,
                        compact_after_files=0)
    ua = sys.argv[2]

    def track(i):
        return m.track("pageview", site="full.example", url=f"https://full.example/{'x' * 300}/{i}",
                       ip="198.51.100.7", user_agent=ua)

    acked = [0] if track(0).accepted else []  # today's salt is written before the disk fills
    ballast = fill(os.path.join(data, "ballast"))
    refused, reasons = 0, set()
    for i in range(1, 100_000):
        outcome = track(i)
        if outcome.accepted:
            acked.append(i)
        else:
            refused += 1
            reasons.add(outcome.reason)
            if refused == 50:
                break
    problems_when_full = m.problems()
    os.unlink(ballast)
    for i in range(100_000, 100_010):  # space is back: accepted again
        if track(i).accepted:
            acked.append(i)
    stored_now = m.flush()
    print(json.dumps({"acked": acked, "refused": refused, "reasons": sorted(reasons),
                      "problems_when_full": problems_when_full, "problems_after": m.problems(),
                      "flushed": stored_now}))
    m.close()
""")


def test_a_full_disk_refuses_events_and_the_process_lives(small_fs: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _TRACK_UNTIL_FULL, str(small_fs), UA], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-2000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    acked = report["acked"]
    print(f"full disk, in-process: {len(acked)} events acknowledged, {report['refused']} refused "
          f"({report['reasons']}), {report['flushed']} stored once space returned")
    assert len(acked) > 100  # the segment allocated before the disk filled holds these
    assert report["refused"] == 50 and report["reasons"] == ["storage_unavailable"]
    assert any("No space left on device" in p for p in report["problems_when_full"])
    assert report["problems_after"] == []
    assert acked[-10:] == list(range(100_000, 100_010))
    assert report["flushed"] == len(acked)
    with mallard.open(small_fs) as q:
        rows = q.sql("SELECT pathname FROM events").to_pylist()
    stored = sorted(int(r["pathname"].rsplit("/", 1)[1]) for r in rows)
    assert stored == acked  # every acknowledged event exactly once, nothing refused


def _post(client: httpx.Client, i: int) -> httpx.Response:
    return client.post("/api/event", json={"d": "full.example", "n": "pageview",
                                           "u": f"https://full.example/{'y' * 300}/{i}"},
                       headers={"User-Agent": UA})


def test_a_server_whose_disk_fills_answers_503_and_loses_nothing(small_fs: Path) -> None:
    live: Live = start("serve", small_fs, workers=2)
    acked: list[int] = []
    try:
        with live.client() as client:
            for i in range(20):
                assert _post(client, i).status_code == 202
                acked.append(i)
            ballast = fill(small_fs / "ballast")
            refusals: list[httpx.Response] = []
            i = 20
            while len(refusals) < 20 and i < 50_000:
                r = _post(client, i)
                if r.status_code == 202:
                    acked.append(i)
                else:
                    refusals.append(r)
                i += 1
            print(f"full disk, HTTP: {len(acked)} acknowledged before the first of {len(refusals)} "
                  f"503s")
            assert {r.status_code for r in refusals} == {503}
            assert all(r.headers["Retry-After"] and "Storage is unavailable" in r.json()["error"]
                       for r in refusals)
            assert client.get("/health").status_code == 200
            ready = client.get("/health/ready")
            assert ready.status_code == 503 and "No space left on device" in ready.json()["reasons"][0]
            # reads need no disk
            stats = client.get("/api/stats/main", params={"site_id": "full.example", "period": "day"})
            assert stats.status_code == 200
            assert live.proc.poll() is None
            ballast.unlink()
            eventually(lambda: _post(client, 60_000).status_code == 202, timeout=30)
            acked.append(60_000)
            eventually(lambda: client.get("/health/ready").status_code == 200, timeout=30)
    finally:
        stop(live)  # SIGTERM: the final flush writes what waited for space
    log = live.logs()
    assert "Traceback" not in log, log
    with mallard.open(small_fs) as q:
        rows = q.sql("SELECT pathname, count(*) AS n FROM events GROUP BY 1").to_pylist()
    stored = {r["pathname"]: r["n"] for r in rows}
    assert_exactly_once(stored, [f"/{'y' * 300}/{i}" for i in acked], "/")


def test_a_server_starting_on_a_full_disk_serves_reads_and_recovers_later(small_fs: Path) -> None:
    with Child(small_fs, "--count", "300", "--site", "durable.example") as child:
        child.wait_for(lambda c: "done" in c.lines)
        child.kill()
        acked = child.acks
    ballast = fill(small_fs / "ballast")
    live = start("serve", small_fs, workers=2)  # before the fix: lifespan startup failed, exit
    try:
        with live.client() as client:
            params = {"site_id": "durable.example", "start_date": "2024-03-01",
                      "end_date": "2024-03-01"}
            assert client.get("/api/stats/main", params=params).status_code == 200
            assert client.get("/").status_code == 200  # the dashboard
            assert client.get("/health").status_code == 200
            assert client.get("/health/ready").status_code == 503
            detailed = client.get("/health/detailed").json()
            assert detailed["status"] in ("unavailable", "degraded")
            ballast.unlink()

            def recovered() -> bool:
                r = client.get("/api/stats/main", params=params)
                return r.status_code == 200 and r.json()["total_pageviews"] == len(acked)

            eventually(recovered, timeout=60)
            # every worker (each answers /health/ready for itself) is ready again once it has retried
            eventually(lambda: client.get("/health/ready").status_code == 200, timeout=60)
    finally:
        stop(live)
    assert "Traceback" not in live.logs(), live.logs()
    with mallard.open(small_fs) as q:
        rows = q.sql("SELECT pathname, count(*) AS n FROM events GROUP BY 1").to_pylist()
    assert_exactly_once({r["pathname"]: r["n"] for r in rows}, acked, "/e/")
