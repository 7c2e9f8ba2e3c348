"""The `mallard goals` / `mallard segments` commands (``mallard/_goal_commands.py``) on a real data
directory, run as a subprocess as operators do; the Python API reads what they wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import mallard

SITE = "shop.example"


def mallard_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mallard", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_goals_and_segments_commands(tmp_path: Path) -> None:
    d = ("--data-dir", str(tmp_path))
    out = mallard_cli("goals", "add", SITE, "--event", "Purchase", "--currency", "EUR", *d)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["display_name"] == "Purchase"
    assert mallard_cli("goals", "add", SITE, "--page", "/thanks/*", "--name", "Thanks", *d).returncode == 0
    listed = json.loads(mallard_cli("goals", "list", SITE, *d).stdout)
    assert [(g["id"], g["display_name"]) for g in listed] == [("1", "Purchase"), ("2", "Thanks")]
    refused = mallard_cli("goals", "add", SITE, "--page", "thanks", *d)
    assert refused.returncode == 2 and refused.stderr.startswith("mallard: page_path must start")
    assert "Traceback" not in refused.stderr
    assert mallard_cli("goals", "currency", SITE, "EUR", *d).returncode == 0
    assert json.loads(mallard_cli("goals", "currency", SITE, *d).stdout)["currency"] == "EUR"
    assert mallard_cli("goals", "remove", SITE, "1", *d).stdout.strip() == "removed"
    missing = mallard_cli("goals", "remove", SITE, "1", *d)
    assert missing.returncode == 2 and "no goal 1" in missing.stderr
    out = mallard_cli("segments", "add", SITE, "Germany", '[["is", "visit:country", ["DE"]]]', *d)
    assert out.returncode == 0, out.stderr
    bad = mallard_cli("segments", "add", SITE, "Bad", '[["is", "visit:nope", ["DE"]]]', *d)
    assert bad.returncode == 2 and "Unknown dimension 'visit:nope'" in bad.stderr
    assert [s["name"] for s in json.loads(mallard_cli("segments", "list", SITE, *d).stdout)] == ["Germany"]
    # the Python API reads what the command wrote
    with mallard.Mallard(data_dir=tmp_path) as m:
        assert [g.display_name for g in m.goals.list(SITE)] == ["Thanks"]
        assert m.goals.currency(SITE) == "EUR"
