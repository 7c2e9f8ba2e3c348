"""Every README and docs snippet runs as written (issue 14).

The Python blocks of a page run in order, in one namespace (as a reader pastes them into one session), in
a fresh temporary directory; pages listed in ``LAKE_PAGES`` find a small lake at ``var/analytics``
first, as their text says. The shell blocks run line by line with bash in the same kind of directory:

* ``mallard ...`` runs the real command (``python -m mallard``); ``mallard serve`` and ``mallard demo``
  start a real server on 127.0.0.1, on a free port given as ``MALLARD_PORT``, kept until the page ends;
* ``curl ...`` runs against that server (one is started with ``mallard serve --data-dir var/analytics``
  when the page started none): ``http://127.0.0.1:8000`` and ``https://your.app/_m`` are replaced by its
  address, and curl fails on an HTTP error (``--fail-with-body``);
* lines that install or run this suite are checked, not run: ``pip install`` names extras that exist,
  ``bash scripts/test`` is what CI runs, ``python -m pytest -m`` names markers that exist;
* ``$ADMIN_PASSWORD`` and ``$API_KEY`` are the runner's: a password, and a key of the server's data dir.

Blocks that cannot run as they are carry ``<!-- snippet: skip <reason> -->`` on the line before; a block
``<!-- snippet: file <path> -->`` must be that file of the repository, byte for byte (the file itself
runs in tests/test_examples.py). The generated blocks of scripts/gen_docs.py (signatures) are not
snippets.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

import mallard
from mallard._app import _live
from tests.http.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").rglob("README.md")])
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
PASSWORD = "correct horse battery staple 42"
#: Pages whose snippets read an existing lake at var/analytics, as their text says.
LAKE_PAGES = {"storage.md", "queries.md", "goals.md", "python-api.md", "cli.md", "operations.md"}
#: The most skip marks allowed: keep them rare (each names its reason in the page).
MAX_SKIPS = 6
MARK = re.compile(r"<!-- snippet: (skip|file) (.+?) -->")


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    mark: tuple[str, str] | None = None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, outside generated regions, with the mark before each."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    generated = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.fullmatch(r"<!-- [a-z]+:start -->", line):
            generated = True
        elif re.fullmatch(r"<!-- [a-z]+:end -->", line):
            generated = False
        fence = re.fullmatch(r"```(\w*)", line)
        if fence:
            end = lines.index("```", i + 1)
            if not generated:
                mark = MARK.fullmatch(lines[i - 1]) if i else None
                found.append(Block(page, i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n",
                                   (mark.group(1), mark.group(2)) if mark else None))
            i = end
        i += 1
    return found


def _ids(pages: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in pages]


def _pages_with(*langs: str) -> list[Path]:
    return [p for p in PAGES if any(b.lang in langs and b.mark is None for b in blocks(p))]


def fill_lake(data_dir: Path) -> None:
    """A few pageviews and a signup of example.com over the last days."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    with mallard.Mallard(mallard.Settings(data_dir=data_dir)) as m:
        for i, path in enumerate(["/", "/pricing", "/", "/docs", "/blog/hello"]):
            assert m.track("pageview", site="example.com", url=f"https://example.com{path}",
                           ip=f"203.0.113.{i}", user_agent=UA, timestamp=start + timedelta(hours=i))
        assert m.track("signup", site="example.com", url="https://example.com/join", ip="203.0.113.1",
                       user_agent=UA, timestamp=start + timedelta(hours=5), user_id=42,
                       props={"plan": "pro"}, revenue=19, currency="EUR")
        m.flush()
        assert m.build_sessions() > 0  # the stored sessions that storage.md reads


# -- marks -----------------------------------------------------------------------------------------
def test_marks_are_rare_and_give_a_reason() -> None:
    skips = [b for p in PAGES for b in blocks(p) if b.mark and b.mark[0] == "skip"]
    assert all(len(b.mark[1].split()) >= 3 for b in skips if b.mark), "say why a snippet cannot run"
    assert len(skips) <= MAX_SKIPS, [b.where for b in skips]


def test_file_snippets_are_the_files() -> None:
    """A block marked ``snippet: file <path>`` holds that file exactly (quick starts ↔ examples/)."""
    files = [b for p in PAGES for b in blocks(p) if b.mark and b.mark[0] == "file"]
    assert len(files) >= 5
    for block in files:
        assert block.mark is not None
        assert block.code == (ROOT / block.mark[1]).read_text(encoding="utf-8"), block.where


def test_every_snippet_is_python_shell_or_data() -> None:
    """No runnable-looking block escapes the runner under another language name."""
    allowed = {"python", "bash", "json", "text", "toml", "html", "js", ""}
    odd = [f"{b.where} ({b.lang})" for p in PAGES for b in blocks(p) if b.lang not in allowed]
    assert not odd, odd


# -- Python ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", _pages_with("python"), ids=_ids(_pages_with("python")))
def test_python_snippets_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("MALLARD_")]:
        monkeypatch.delenv(name)
    if page.name in LAKE_PAGES:
        fill_lake(tmp_path / "var" / "analytics")
    namespace: dict[str, object] = {"__name__": "__snippet__"}
    before = set(_live)
    try:
        for block in blocks(page):
            if block.lang == "python" and block.mark is None:
                try:
                    exec(compile(block.code, block.where, "exec"), namespace)
                except Exception as exc:
                    raise AssertionError(f"{block.where}: {type(exc).__name__}: {exc}") from exc
    finally:  # every instance the page made (a rebound name too), while the directory is tmp_path
        for instance in set(_live) - before:
            instance.close()
        for value in namespace.values():
            if isinstance(value, mallard.Queries):
                value.close()


# -- shell -----------------------------------------------------------------------------------------
@dataclass
class Shell:
    """One page's shell session: a directory, a PATH with ``mallard`` and a failing curl, the servers."""

    cwd: Path
    bin: Path
    servers: list[tuple[subprocess.Popen[bytes], str, Path]] = field(default_factory=list)
    api_key: str = ""

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLARD_")}
        env.update(PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(ROOT),
                   ADMIN_PASSWORD=PASSWORD, API_KEY=self.api_key, MALLARD_FLUSH_INTERVAL="0.2")
        return env

    def base(self) -> str:
        if not self.servers:
            self.serve("mallard serve --data-dir var/analytics")
        return self.servers[-1][1]

    def serve(self, line: str) -> None:
        port = free_port()
        log = self.cwd / f"server-{len(self.servers)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(["bash", "-c", line], cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                                    env={**self.env(), "MALLARD_PORT": str(port)}, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        self.servers.append((proc, base, log))
        for _ in range(1200):  # `mallard demo` generates its traffic first
            if proc.poll() is not None:
                raise AssertionError(f"{line!r} exited {proc.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.1)
        else:
            raise AssertionError(f"{line!r} did not answer /health:\n{log.read_text()}")
        data_dir = re.search(r"--data-dir (\S+)", line)
        created = self.run(f"mallard keys create snippets --data-dir "
                           f"{data_dir.group(1) if data_dir else 'mallard-data'}")
        self.api_key = re.search(r'"key": "([^"]+)"', created).group(1)  # type: ignore[union-attr]

    def run(self, line: str) -> str:
        proc = subprocess.run(["bash", "-c", line], cwd=self.cwd, env=self.env(), capture_output=True,
                              text=True,
                              timeout=120, input=f"{PASSWORD}\n{PASSWORD}\n", start_new_session=True)
        assert proc.returncode == 0, f"{line!r} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def close(self) -> None:
        for proc, _, log in self.servers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
            proc.wait(30)
            assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    curl = shutil.which("curl")
    assert curl, "curl is missing (scripts/test installs it)"
    for name, body in (("mallard", f'exec {sys.executable} -m mallard "$@"'),
                       ("curl", f'exec {curl} --fail-with-body -sS "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    session = Shell(work, bin_dir)
    try:
        yield session
    finally:
        session.close()


def commands(code: str) -> list[str]:
    """The command lines of a shell block: continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    out = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            out.append(line.split(" #")[0].strip() if " #" in line else line.strip())
    return out


def check_install(line: str) -> None:
    """``pip install -e '.[a,b]'`` / ``'mallard-metrics[a]'``: the extras exist."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for group in re.findall(r"\[([a-z,]+)\]", line):
        missing = set(group.split(",")) - set(extras)
        assert not missing, f"{line!r}: no such extra {missing}"


def check_suite(line: str) -> None:
    """``bash scripts/test`` is what CI runs; ``pytest -m EXPR`` names registered markers."""
    if line.startswith("bash scripts/test"):
        assert "bash scripts/test" in (ROOT / ".ci" / "run").read_text()
        return
    words = shlex.split(line)
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    names = {m.split(":")[0] for m in markers}
    if "-m" in words:
        expression = words[len(words) - 1 - words[::-1].index("-m") + 1]  # the last -m (not python's)
        used = set(re.findall(r"\w+", expression)) - {"not", "and", "or"}
        assert used <= names, f"{line!r}: unknown markers {used - names}"


def run_line(session: Shell, line: str) -> None:
    for part in (p.strip() for p in line.split(" && ")):
        if part.startswith("pip install"):
            check_install(part)
        elif part.startswith(("bash scripts/test", "python -m pytest")):
            check_suite(part)
        elif re.match(r"mallard (serve|demo)\b", part) and "--no-serve" not in part:
            session.serve(part)
        elif "curl " in part:
            base = session.base()
            session.run(part.replace("http://127.0.0.1:8000", base).replace("https://your.app/_m", base))
        else:
            session.run(part)


#: examples/*/README.md hold one command each, a server that tests/test_examples.py starts and exercises.
SHELL_PAGES = [p for p in _pages_with("bash") if not p.is_relative_to(ROOT / "examples")]


@pytest.mark.slow
@pytest.mark.parametrize("page", SHELL_PAGES, ids=_ids(SHELL_PAGES))
def test_shell_snippets_run(page: Path, shell: Shell) -> None:
    if page.name in LAKE_PAGES:
        fill_lake(shell.cwd / "var" / "analytics")
    for block in blocks(page):
        if block.lang == "bash" and block.mark is None:
            for line in commands(block.code):
                try:
                    run_line(shell, line)
                except AssertionError as exc:
                    raise AssertionError(f"{block.where}: {exc}") from exc
