"""Options of ``mallard serve`` that change HTTP behaviour, on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.http.conftest import start, stop
from tests.http.test_contract import event, post

pytestmark = pytest.mark.slow  # a real mallard serve


def test_serve_site_option_sets_the_allow_list(tmp_path: Path) -> None:
    """``mallard serve --site a --site b`` accepts events for those sites only (403 for others); the
    list reaches the worker through ``MALLARD_SITE_IDS=a,b``, the comma-separated form."""
    live = start("serve", tmp_path / "data", args=("--site", "a.example", "--site", "b.example"))
    try:
        with live.client() as c:
            assert post(c, event("a.example")).status_code == 202
            assert post(c, event("b.example")).status_code == 202
            r = post(c, event("c.example"))
            assert r.status_code == 403 and "not allowed" in r.json()["error"]
            assert {"a.example", "b.example"} <= set(c.get("/api/sites").json()["sites"])
    finally:
        stop(live)
    assert "Traceback" not in live.logs()


def test_serve_json_log_format(tmp_path: Path) -> None:
    """``log_format = "json"``: every line ``mallard serve`` writes (its banner, uvicorn's and mallard's
    records, worker processes' too) is one JSON object with time, level, logger and message."""
    import json

    live = start("serve", tmp_path / "data", env={"MALLARD_LOG_FORMAT": "json"},
                 args=("--log-level", "info", "--workers", "2"))
    try:
        with live.client() as c:
            assert post(c, event("a.example")).status_code == 202
    finally:
        stop(live)
    lines = [line for line in live.logs().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all(set(r) >= {"time", "level", "logger", "message"} and r["time"].endswith("Z") for r in records)
    assert records[0]["logger"] == "mallard.serve" and "dashboard:" in records[0]["message"]
    assert any(r["logger"].startswith("uvicorn") and "startup complete" in r["message"] for r in records)
