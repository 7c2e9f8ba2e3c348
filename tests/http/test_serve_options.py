"""Options of ``mallard serve`` that change HTTP behaviour, on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import start, stop
from .test_contract import event, post

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
