"""docs/operations.md's backup and restore recipe, run as written: a live data directory backed up while a
writer ingests and a compactor swaps files, restored into a new directory, answers with every event
acknowledged a flush interval before the backup, none twice, and its state (an API key) comes along."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import mallard
from tests import ledger
from tests.test_durability import Child

# real processes (`pytest -m 'not slow'` leaves them out)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SITE = "durable.example"
FLUSH_SECS = 0.5


def recipe() -> tuple[str, str]:
    """The two shell blocks of operations.md's Backups section: the backup, then the restore."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text[text.index("## Backups"):text.index("## Retention")]
    backup, restore = re.findall(r"```bash\n(.*?)```", section, re.S)
    return backup, restore


def test_a_backup_of_a_live_directory_restores_what_was_acknowledged(tmp_path: Path) -> None:
    backup, restore = recipe()
    data = tmp_path / "var" / "analytics"
    key = json.loads(subprocess.run([sys.executable, "-m", "mallard", "keys", "create", "backup-test",
                                     "--data-dir", str(data)], capture_output=True, text=True, check=True,
                                    cwd=ROOT).stdout)["key"]
    compactor = subprocess.Popen([sys.executable, "-m", "tests.procs.compactor", str(data), str(10**9)],
                                 cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    stop = threading.Event()
    compactions: list[str] = []

    def compact() -> None:  # merges the writer's files over and over, during the backup too
        assert compactor.stdin is not None and compactor.stdout is not None
        compactor.stdout.readline()  # ready
        while not stop.is_set():
            compactor.stdin.write("go\n")
            compactor.stdin.flush()
            compactions.append(compactor.stdout.readline().strip())

    with Child(data, "--prefix", "/b/", "--days", "3", "--flush-interval", str(FLUSH_SECS),
               "--pause-every", "3") as writer:
        thread = threading.Thread(target=compact, daemon=True)
        thread.start()
        try:
            writer.wait_for(lambda c: len(c.acks) >= 400)
            acknowledged = list(writer.acks)
            time.sleep(FLUSH_SECS * 2 + 1)  # the recipe holds what was acknowledged a flush interval ago
            copied = subprocess.run(["bash", "-ec", backup], cwd=tmp_path, capture_output=True, text=True)
            assert copied.returncode == 0, copied.stderr
            writer.wait_for(lambda c: len(c.acks) >= len(acknowledged) + 200)  # still writing
        finally:
            stop.set()
            thread.join(30)
            assert compactor.stdin is not None and compactor.stdout is not None
            compactor.stdin.close()
            compactor.wait(30)
            compactor.stdout.close()
        writer.kill()
    sent = set(writer.acks)
    assert any(c != "done 0" for c in compactions), compactions  # files were swapped meanwhile
    restored = subprocess.run(["bash", "-ec", restore], cwd=tmp_path, capture_output=True, text=True)
    assert restored.returncode == 0, restored.stderr
    new = tmp_path / "var" / "restored"
    assert sorted(p.name for p in new.iterdir()) == ["events", "state"]
    with mallard.open(new) as q:
        stored = ledger.stored_paths(q, SITE)
    assert not ledger.duplicates(stored)
    assert set(acknowledged) <= set(stored) <= sent
    with mallard.Mallard(data_dir=new) as m:
        assert m.auth.check_key(key) == "ReadOnly"
