"""Helpers of the telemetry tests: reading a render back, and worker processes driven over a pipe."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mallard._telemetry import ProcessCounters

ROOT = Path(__file__).resolve().parent.parent.parent
INGESTED = "mallard_events_ingested_total"
TIMEOUT = 15.0


def scrape(metrics: ProcessCounters) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a render, keyed by (sample name, sorted labels)."""
    body, _ = metrics.render()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(body.decode()) for s in f.samples}


def total(metrics: ProcessCounters, name: str = INGESTED, **labels: str) -> float:
    return scrape(metrics)[(name, tuple(sorted(labels.items())))]


class Worker:
    """A ``tests.procs.metrics_worker`` process, every reply awaited with a timeout."""

    def __init__(self, state_dir: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.procs.metrics_worker", str(state_dir)],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.id = ""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.strip())
        self._lines.put("<eof>")

    def ready(self) -> Worker:
        word, self.id = self.reply().split()
        assert word == "ready"
        return self

    def reply(self) -> str:
        try:
            return self._lines.get(timeout=TIMEOUT)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError("metrics worker did not answer in time") from None

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def __call__(self, command: str) -> str:
        self.send(command)
        return self.reply()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            assert self("exit") == "bye"
        self.proc.wait(timeout=TIMEOUT)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def summary(line: str) -> dict[str, float]:
    words = line.split()
    return {k: float(v) for k, v in zip(words[::2], words[1::2], strict=True)}


@contextlib.contextmanager
def read_only(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ``root`` unwritable: chmod, plus refusing writes under it, since root ignores modes."""
    def refuse(path: Any) -> None:
        if Path(os.fsdecode(path)).is_relative_to(root):
            raise PermissionError(13, "Permission denied", os.fsdecode(path))

    real_open, real_mkdir, real_replace, real_unlink = os.open, os.mkdir, os.replace, os.unlink
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def fake_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & writes:
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def guarded(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            refuse(path)
            return real(path, *args, **kwargs)
        return call

    modes = {p: p.stat().st_mode for p in [root, *root.rglob("*")]}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    monkeypatch.setattr(os, "open", fake_open)
    for name, real in (("mkdir", real_mkdir), ("replace", real_replace), ("unlink", real_unlink)):
        monkeypatch.setattr(os, name, guarded(real))
    try:
        yield
    finally:
        monkeypatch.undo()
        for path, mode in modes.items():
            path.chmod(mode)
