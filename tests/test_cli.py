"""The `mallard` command on a real data directory (run as a subprocess, as operators do). `mallard
demo`: test_demo.py; `mallard goals` and `mallard segments`: test_goal_commands.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import mallard
from mallard._auth import Auth
from mallard._goals import Goals
from mallard._privacy import load_secret
from mallard._settings import Settings
from mallard._sharedstate import shared_state
from tests.s3server import BUCKET, S3Server

# real servers or processes (`pytest -m 'not slow'` leaves them out)
pytestmark = pytest.mark.slow

UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/120.0.0.0 Safari/537.36")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mallard", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    with mallard.Mallard(data_dir=tmp_path) as m:
        for i in range(3):
            m.track("pageview", site="cli.example", url=f"https://cli.example/p{i}", ip=f"192.0.2.{i}",
                    user_agent=UA, referrer="https://www.google.com/")
        m.track("pageview", site="cli.example", url="https://cli.example/=SUM(A1)", ip="192.0.2.9",
                user_agent=UA)
    return tmp_path


def test_stats_prints_main_figures(data_dir: Path) -> None:
    out = run("stats", "cli.example", "--data-dir", str(data_dir), "--period", "day")
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["unique_visitors"] == 4
    assert stats["total_pageviews"] == 4


def test_export_csv_is_quoted_and_formula_safe(data_dir: Path) -> None:
    out = run("export", "cli.example", "--data-dir", str(data_dir), "--period", "day", "--kind", "raw")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith('"timestamp","event_name","pathname"')
    assert len(lines) == 5
    assert not any(",\"=" in line for line in lines)
    assert not any("192.0.2." in line for line in lines)  # no IP in any export


def test_export_json_daily(data_dir: Path) -> None:
    out = run("export", "cli.example", "--data-dir", str(data_dir), "--period", "day", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    today = datetime.now(UTC).date().isoformat()
    assert rows == [{"date": today, "visitors": 4, "pageviews": 4, "top_page": rows[0]["top_page"],
                     "top_source": "Google"}]


def test_sites_lists_stored_sites(data_dir: Path) -> None:
    out = run("sites", "--data-dir", str(data_dir))
    assert out.stdout.split() == ["cli.example"]


def test_erase_then_stats_is_empty(data_dir: Path) -> None:
    today = datetime.now(UTC).date().isoformat()
    out = run("erase", "cli.example", "--data-dir", str(data_dir), "--start-date", today,
              "--end-date", today)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["parquet_partitions_deleted"] == 1
    stats = json.loads(run("stats", "cli.example", "--data-dir", str(data_dir), "--period", "day").stdout)
    assert stats["unique_visitors"] == 0


def test_compact_reports_partitions(data_dir: Path) -> None:
    out = run("compact", "--data-dir", str(data_dir))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("compacted ")


@pytest.mark.parametrize("args", [
    ("stats", "bad site!", "--period", "day"),
    ("stats", "cli.example", "--period", "fortnight"),
    ("stats", "cli.example", "--start-date", "9999-12-31", "--end-date", "9999-12-31"),
    ("stats", "cli.example", "--start-date", "2024-01-01"),
    ("export", "cli.example", "--start-date", "9999-12-30", "--end-date", "9999-12-31", "--kind", "raw"),
    ("export", "cli.example", "--kind", "everything"),
    ("erase", "cli.example", "--start-date", "2026-02-30", "--end-date", "2026-03-01"),
    ("erase", "cli.example", "--start-date", "2024-01-01"),
    ("serve", "--port", "70000"),
    ("serve", "--port", "http"),
    ("serve", "--site", "bad site!"),
    ("password", "--no-such-option"),
    ("keys", "create"),
    ("keys", "revoke", "0" * 64),
    ("sites", "surplus"),
    ("compact", "--config", "/nonexistent/mallard.toml"),
    ("retention", "--workers", "2"),
], ids=["stats-bad-site", "stats-bad-period", "stats-last-date", "stats-half-range", "export-last-date",
        "export-bad-kind", "erase-bad-date", "erase-no-end", "serve-bad-port", "serve-port-not-a-number",
        "serve-bad-site", "password-bad-option", "keys-create-no-name", "keys-revoke-unknown",
        "sites-surplus", "compact-missing-config", "retention-bad-option"])
def test_bad_input_is_a_clear_error(data_dir: Path, args: tuple[str, ...]) -> None:
    """Every command answers a bad argument with one line `mallard: <message>` and exit status 2."""
    out = run(*args, "--data-dir", str(data_dir))
    assert out.returncode == 2, out
    assert out.stderr.startswith("mallard: "), out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert out.stdout == ""


def test_missing_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    out = run("stats", "x.example", "--data-dir", str(tmp_path / "absent"))
    assert out.returncode == 2
    assert "not a mallard data directory" in out.stderr


def test_password_and_keys_commands(tmp_path: Path) -> None:
    """`mallard password --password-stdin` sets the admin password; `keys create/list/revoke` manage keys
    that the HTTP layer then accepts (the same files in state/)."""
    data = str(tmp_path / "data")
    password = [sys.executable, "-m", "mallard", "password", "--data-dir", data, "--password-stdin"]
    weak = subprocess.run(password, input="short\n", capture_output=True, text=True, timeout=120)
    assert weak.returncode == 2 and "12" in weak.stderr
    ok = subprocess.run(password, input="correct horse battery staple\n", capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    created = run("keys", "create", "ci", "--scope", "Admin", "--data-dir", data)
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    listed = json.loads(run("keys", "list", "--data-dir", data).stdout)
    assert [(k["name"], k["scope"], k["revoked"]) for k in listed] == [("ci", "Admin", False)]
    with mallard.Mallard(data_dir=data) as m:
        assert m.auth.verify("correct horse battery staple")
        assert m.auth.check_key(key["key"]) == "Admin"
    assert run("keys", "revoke", key["key_hash"], "--data-dir", data).returncode == 0
    assert run("keys", "revoke", "0" * 64, "--data-dir", data).returncode == 2
    with mallard.Mallard(data_dir=data) as m:
        assert m.auth.check_key(key["key"]) is None


@pytest.mark.slow
def test_password_keys_and_goals_go_to_the_bucket_with_an_s3_lake_url(tmp_path: Path,
                                                                     s3_server: S3Server) -> None:
    """With an s3:// lake_url the commands change the shared state in the bucket, which every host
    reads; nothing of it is written to the local data directory."""
    lake = f"s3://{BUCKET}/cli-{tmp_path.name}"
    env = {**os.environ, "MALLARD_LAKE_URL": lake,
           **{f"MALLARD_{k.upper()}": v for k, v in s3_server.options().items()}}
    data = str(tmp_path / "data")

    def command(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "mallard", *args, "--data-dir", data], input=stdin,
                              capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        return done

    command("password", "--password-stdin", stdin="correct horse battery staple\n")
    key = json.loads(command("keys", "create", "ci", "--scope", "ReadOnly").stdout)
    command("goals", "add", "cli.example", "--event", "Signup")
    settings = Settings(lake_url=lake, **s3_server.options())
    state = shared_state(settings, tmp_path / "elsewhere")
    with Auth(state, settings, secret=load_secret(state, None)) as auth:
        assert auth.verify("correct horse battery staple")
        assert auth.check_key(key["key"]) == "ReadOnly"
    assert [g.event_name for g in Goals(state).list("cli.example")] == ["Signup"]
    assert not (tmp_path / "data" / "state" / "admin.json").exists()
    assert not (tmp_path / "elsewhere").exists()


def test_compact_stores_the_sessions_of_settled_days(tmp_path: Path) -> None:
    """``mallard compact`` stores the sessions and rollups of days two days old or more; answers stay
    the same."""
    with mallard.Mallard(data_dir=tmp_path) as m:
        for day, minute in ((10, 0), (10, 20), (11, 5), (12, 50)):
            m.track("pageview", site="cli.example", url=f"https://cli.example/d{day}", ip="192.0.2.7",
                    user_agent=UA, timestamp=datetime(2024, 3, day, 9, minute))
    args = ("stats", "cli.example", "--data-dir", str(tmp_path), "--start-date", "2024-03-10",
            "--end-date", "2024-03-12")
    before = json.loads(run(*args).stdout)
    out = run("compact", "--data-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "stored the sessions and rollups of 3 day(s)" in out.stdout
    for relation in ("sessions", "rollups"):
        assert sorted(p.name for p in (tmp_path / relation / "site_id=cli.example").iterdir()) == [
            "date=2024-03-10", "date=2024-03-11", "date=2024-03-12"]
    after = json.loads(run(*args).stdout)
    assert after == before and after["total_sessions"] == 3
    again = run("compact", "--data-dir", str(tmp_path))
    assert "stored the sessions and rollups of 0 day(s)" in again.stdout  # fresh: nothing to rebuild


def test_compact_draws_progress_bars_when_asked(tmp_path: Path) -> None:
    """``mallard compact --progress`` draws a bar per phase on stderr (compaction in partitions, then the
    sessions backfill in days), even when stderr is not a terminal; without it, there it draws none."""
    data = tmp_path / "data"
    for minute in (0, 30):  # two files in each of three partitions
        with mallard.Mallard(data_dir=data) as m:
            for day in (10, 11, 12):
                m.track("pageview", site="cli.example", url=f"https://cli.example/d{day}", ip="192.0.2.7",
                        user_agent=UA, timestamp=datetime(2024, 3, day, 9, minute))
    config = tmp_path / "mallard.toml"
    config.write_text("compact_after_files = 2\n")
    outs = {}
    for option in ("--quiet", None, "--progress"):
        copy = tmp_path / f"copy{option}"
        shutil.copytree(data, copy)
        outs[option] = run("compact", "--data-dir", str(copy), "--config", str(config),
                           *([option] if option else []))
        assert outs[option].returncode == 0, outs[option].stderr
        assert "compacted 3 partition(s)" in outs[option].stdout
        assert "stored the sessions and rollups of 3 day(s)" in outs[option].stdout
    assert outs["--quiet"].stderr == outs[None].stderr == ""  # stderr is a pipe: no bar unless asked
    lines = [line.split("\r")[-1] for line in outs["--progress"].stderr.split("\n")]
    assert any(line.startswith("compact: 100%") and "| 3/3 " in line and "partitions/s]" in line
               for line in lines)
    assert any(line.startswith("sessions: 100%") and "| 3/3 " in line and "days/s]" in line
               for line in lines)
