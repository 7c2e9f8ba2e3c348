"""Real HTTP servers on 127.0.0.1 for the contract suite: ``mallard serve`` (uvicorn), a Starlette app under
uvicorn, a Flask app under gunicorn and a bare WSGI app under gunicorn, the last three mounting mallard
under ``/_m``. Each server gets its own data directory and port and is killed after its tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("serve", "starlette", "flask", "wsgi")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    """A running server: ``base`` is where mallard is mounted, ``host`` the host app's root."""

    kind: str
    host: str
    base: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, **kwargs)  # type: ignore[arg-type]

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def command(kind: str, port: int, data_dir: Path, workers: int = 1, args: Sequence[str] = ()) -> list[str]:
    if kind == "serve":
        return [sys.executable, "-m", "mallard", "serve", "--data-dir", str(data_dir), "--port", str(port),
                "--workers", str(workers), "--log-level", "warning", *args]
    if kind == "starlette":
        return [sys.executable, "-m", "uvicorn", "tests.http.hosts:starlette_app", "--factory",
                "--port", str(port), "--host", "127.0.0.1", "--no-proxy-headers", "--log-level", "warning",
                "--workers", str(workers)]
    app = {"flask": "tests.http.hosts:flask_app", "wsgi": "tests.http.hosts:wsgi_app"}[kind]
    return [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
            "--log-level", "warning", "--graceful-timeout", "10", app]


#: What uvicorn, gunicorn and Django's runserver log when the port went to another process between
#: free_port() and their bind (tests run in parallel, each worker picking ports): start() then picks another.
PORT_TAKEN = ("address already in use", "connection in use", "port is already in use")


def start(kind: str, data_dir: Path, *, workers: int = 1, env: dict[str, str] | None = None,
          args: Sequence[str] = (), label: str = "") -> Live:
    """Start a server of ``kind`` on ``data_dir``; ``args`` go to ``mallard serve``'s command line; its
    output goes to ``<data_dir>-<kind><label>.log``. A port taken meanwhile is replaced (three tries)."""
    tries = 3
    for _ in range(tries):
        live = launch(kind, data_dir, free_port(), workers=workers, env=env, args=args, label=label)
        if live is not None:
            return live
    raise AssertionError(f"{kind} server found its port taken {tries} times")


def launch(kind: str, data_dir: Path, port: int, *, workers: int, env: dict[str, str] | None,
           args: Sequence[str], label: str) -> Live | None:
    """Start a server of ``kind`` on ``port`` and wait for its /health; None if the port was taken."""
    return spawn(kind, command(kind, port, data_dir, workers, args), port, data_dir, env=env, label=label,
                 prefix="" if kind == "serve" else "/_m")


def spawn(kind: str, cmd: Sequence[str], port: int, data_dir: Path, *, env: dict[str, str] | None = None,
          label: str = "", prefix: str = "/_m", cwd: Path = ROOT) -> Live | None:
    """Run ``cmd`` (a server listening on ``port``, mallard mounted at ``prefix``) on ``data_dir`` and wait
    for mallard's /health; None if the port was taken."""
    log = data_dir.parent / f"{data_dir.name}-{kind}{label}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLARD_")}
    environment.update({"MALLARD_DATA_DIR": str(data_dir), "MALLARD_FLUSH_INTERVAL": "0.2",
                        "PYTHONPATH": str(ROOT)}, **(env or {}))
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=environment,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    host = f"http://127.0.0.1:{port}"
    live = Live(kind, host, host + prefix, data_dir, proc, log)
    deadline = time.monotonic() + 40
    while True:
        if any(text in live.logs().lower() for text in PORT_TAKEN):
            stop(live)
            return None
        if proc.poll() is not None:
            raise AssertionError(f"{kind} server exited ({proc.returncode}):\n{live.logs()}")
        try:  # the answer must come from this server, not from another that took the port first
            if httpx.get(live.base + "/health", timeout=2).status_code == 200 and listens(live, port):
                return live
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop(live)
            raise AssertionError(f"{kind} server did not answer /health within 40 s:\n{live.logs()}")
        time.sleep(0.1)


def listens(live: Live, port: int) -> bool:
    """Whether a process of the server's group holds the listening socket of ``port`` on 127.0.0.1."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":  # 127.0.0.1:port, LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    for pid in group(live.proc.pid):
        with contextlib.suppress(OSError):  # exited meanwhile
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                return True
    return False


def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    """Wait (polling, bounded) until ``check()`` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def served(data_dir: Path, env: dict[str, str] | None = None, kind: str = "serve") -> Iterator[Live]:
    """A server of ``kind`` (``mallard serve`` by default) on ``data_dir`` for a fixture to yield from;
    stopped afterwards, and its log must hold no traceback."""
    live = start(kind, data_dir, env=env)
    try:
        yield live
    finally:
        stop(live)
        assert "Traceback" not in live.logs(), live.logs()


def stop(live: Live) -> None:
    if live.proc.poll() is None:
        os.killpg(live.proc.pid, signal.SIGTERM)
        try:
            live.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(live.proc.pid, signal.SIGKILL)
            live.proc.wait(10)


def group(pgid: int) -> dict[int, int]:
    """The live processes of a process group (zombies excluded): pid -> parent pid."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        state, ppid, pgrp = stat[stat.rindex(")") + 2:].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            found[int(entry.name)] = int(ppid)
    return found


def workers(live: Live) -> list[int]:
    """The server's worker processes: the master's children, without multiprocessing's helpers."""
    master = live.proc.pid

    def helper(pid: int) -> bool:
        try:
            return b"multiprocessing.resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return True
    return sorted(pid for pid, ppid in group(master).items() if ppid == master and not helper(pid))


def kill_all(live: Live, timeout: float = 30) -> None:
    """SIGKILL every process of the server (the master, its workers, orphaned workers) and wait until
    none is left: only then are their spool locks released."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(live.proc.pid, signal.SIGKILL)
    if live.proc.poll() is None:
        live.proc.wait(timeout)
    eventually(lambda: not group(live.proc.pid), timeout)


def serving(kind: str, tmp_path_factory: pytest.TempPathFactory, label: str,
            env: dict[str, str] | None = None,
            fill: Callable[[Path], object] | None = None) -> Iterator[Live]:
    """A server of ``kind`` for the duration of a fixture, on a data directory that ``fill`` (when
    given) writes first; its log must show no traceback."""
    data_dir = tmp_path_factory.mktemp(f"{label}-{kind}") / "data"
    if fill is not None:
        fill(data_dir)
    yield from served(data_dir, env, kind)


@pytest.fixture(scope="module", params=KINDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from serving(request.param, tmp_path_factory, "http")
