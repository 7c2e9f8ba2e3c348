"""A corrupt lake file, over HTTP through ``mallard serve``: stats still answer, the server stays ready,
and the file shows in /health/detailed and /metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

import mallard
from mallard import Store
from mallard._http import Api, Request

from ..lake_damage import SITE, age, build_lake, garble, truncate
from .conftest import start, stop

pytestmark = pytest.mark.slow  # a real mallard serve


@pytest.mark.parametrize("damage", [truncate, garble], ids=["truncated", "garbled"])
def test_stats_answer_from_the_other_files_and_the_file_is_reported(tmp_path: Path, damage: object) -> None:
    data = tmp_path / "data"
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=2), today - timedelta(days=1), today]
    store = Store(data)
    bad = build_lake(store, days)[days[1]]
    store.close()
    params = {"site_id": SITE, "start_date": days[0].isoformat(), "end_date": today.isoformat()}

    def main_figures() -> dict[str, object]:
        with mallard.open(data) as q:
            return q.main(SITE, start_date=days[0], end_date=today).to_dict()

    original = bad.read_bytes()
    full = main_figures()
    bad.unlink()
    expected = main_figures()
    assert expected != full
    bad.write_bytes(original)
    damage(bad)  # type: ignore[operator]
    age(bad)

    server = start("serve", data)
    try:
        with server.client() as c:
            ready = c.get("/health/ready")
            assert (ready.status_code, ready.text) == (200, "ready")
            r = c.get("/api/stats/main", params=params)
            assert r.status_code == 200, r.text
            assert r.json() == expected
            relative = bad.relative_to(data / "events").as_posix()
            assert not bad.exists() and (data / "quarantine" / relative).exists()
            assert c.get("/health/ready").status_code == 200
            detail = c.get("/health/detailed").json()
            assert detail["quarantined_file_count"] == 1
            [listed] = detail["quarantined_files"]
            assert listed["file"] == relative and listed["reason"] and listed["quarantined_at"]
            assert "mallard_quarantined_files_total 1.0" in c.get("/metrics").text
            # The operator puts a good copy back under the same name: the answer includes it again
            # (nothing computed without the file is served from the query cache).
            bad.write_bytes(original)
            r = c.get("/api/stats/main", params=params)
            assert r.status_code == 200 and r.json() == full
    finally:
        stop(server)
    assert "Traceback" not in server.logs()


def test_not_ready_answers_503_with_the_reasons(tmp_path: Path) -> None:
    """Readiness is a list of checks of this process; a failed one is named in the 503 body."""
    m = mallard.Mallard(data_dir=tmp_path)
    (tmp_path / "spool").rmdir()
    (tmp_path / "spool").write_text("not a directory")  # start() cannot open its spool
    r = Api.for_mallard(m).handle(Request("GET", "/health/ready"))
    assert r.status == 503
    assert orjson.loads(r.body) == {
        "error": "not ready", "code": "not_ready",
        "reasons": [f"ingestion cannot start: Cannot use the spool directory {tmp_path / 'spool'}: "
                    "File exists."]}
    m.close()
