"""StateDir (mallard/_state.py): the one way to write and lock the files of ``state/``."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from mallard._errors import StorageError
from mallard._state import StateDir


def test_write_is_atomic_private_and_leaves_no_temporary(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    state.write("goals.json", b"one")
    state.write("goals.json", b"two")
    assert state.path("goals.json").read_bytes() == b"two"
    assert stat.S_IMODE(state.path("goals.json").stat().st_mode) == 0o600
    assert sorted(p.name for p in state.root.iterdir()) == ["goals.json"]


def test_write_once_keeps_the_first_content(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    assert state.write_once("salts/7", b"first") == b"first"
    assert state.write_once("salts/7", b"second") == b"first"
    assert stat.S_IMODE(state.path("salts").stat().st_mode) == 0o700


def _try_lock(root: str, name: str) -> bool:
    with StateDir(Path(root)).lock(name, wait=False) as mine:
        return mine


def test_a_lock_excludes_other_processes_and_threads(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    ctx = multiprocessing.get_context("spawn")
    with state.lock("sessions.lock") as mine:
        assert mine
        with ctx.Pool(1) as pool:
            assert pool.apply(_try_lock, (str(state.root), "sessions.lock")) is False
            assert pool.apply(_try_lock, (str(state.root), "other.lock")) is True
        with state.lock("sessions.lock", wait=False) as again:  # another open file: excluded too
            assert again is False
    with state.lock("sessions.lock", wait=False) as free:
        assert free
    with state.lock("shared.lock", shared=True) as a, state.lock("shared.lock", shared=True,
                                                                 wait=False) as b:
        assert a and b


def test_sqlite_and_errors(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    conn = state.sqlite("tokens.sqlite3")
    try:
        conn.execute("CREATE TABLE t (x)")
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in state.root.glob("tokens.sqlite3*")}
        assert modes and set(modes.values()) == {0o600}, modes  # the -wal and -shm files too
    finally:
        conn.close()
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    with pytest.raises(StorageError, match="Cannot"):
        StateDir(blocked).write("x", b"y")
    with pytest.raises(StorageError, match="Cannot"), StateDir(blocked).lock("x.lock"):
        pass


def test_lock_without_create_takes_an_existing_file_read_only(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """create=False locks a file that exists when nothing may be opened for writing (a read-only
    directory; faked, since root ignores modes), creates nothing, and says FileNotFoundError for a
    missing one."""
    state = StateDir(tmp_path / "state")
    with state.lock("metrics/archive.lock"):
        pass
    real_open = os.open

    def read_only_open(path: Any, flags: int, *args: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only_open)
    with pytest.raises(StorageError), state.lock("metrics/archive.lock"):
        pass
    with state.lock("metrics/archive.lock", shared=True, create=False) as held:
        assert held
        with state.lock("metrics/archive.lock", wait=False, create=False) as other:
            assert not other  # a shared lock is held: an exclusive one is refused
    with pytest.raises(FileNotFoundError), state.lock("metrics/gone.lock", create=False):
        pass
    assert not state.path("metrics/gone.lock").exists()
