"""Import rules and the size budget of STYLE.md 3.2, checked on the source (AST), not at run time.

Imports under ``if TYPE_CHECKING:`` are ignored: they never execute. Imports inside functions count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mallard"
MAX_LINES = 800

#: Core modules that must not reach DuckDB, directly or through other mallard modules.
DUCKDB_FREE = ("tracker", "buffer", "payload", "privacy", "events", "settings", "enrich")
FRAMEWORKS = frozenset({"starlette", "flask", "werkzeug", "anyio"})
ENVIRON_NAMES = frozenset({"environ", "environb", "getenv"})


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "mallard.queries.builder"
    path: Path
    tree: ast.Module

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def _modules() -> list[Module]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append(Module(".".join(parts), path, ast.parse(path.read_text(encoding="utf-8"), str(path))))
    return out


MODULES = _modules()
BY_NAME = {m.name: m for m in MODULES}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node``, skipping the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for orelse in child.orelse:
                yield orelse
                yield from _nodes(orelse)
            continue
        yield child
        yield from _nodes(child)


def imports(module: Module) -> set[str]:
    """Absolute dotted names imported by ``module`` (``from x import y`` gives ``x`` and ``x.y``)."""
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]
    found: set[str] = set()
    for node in _nodes(module.tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _internal(name: str) -> str | None:
    """The mallard module an imported name refers to (a module, or the module owning a name)."""
    while name:
        if name in BY_NAME:
            return name
        name = name.rpartition(".")[0]
    return None


def reachable(start: str) -> set[str]:
    """mallard modules imported by ``start``, transitively (explicit imports only)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in imports(BY_NAME[current]):
            target = _internal(name)
            if target is not None and target not in seen and target != "mallard":
                todo.append(target)
    return seen


def _in(module: Module, *packages: str) -> bool:
    return any(module.name == p or module.name.startswith(p + ".") for p in packages)


def _duckdb_free_modules() -> list[str]:
    return [m.name for m in MODULES
            if any(_in(m, f"mallard.{name}") for name in DUCKDB_FREE)]


# -- rules -------------------------------------------------------------------------------------------
def test_core_modules_exist() -> None:
    """The rule lists below name real modules (a rename must update this file)."""
    for name in DUCKDB_FREE:
        assert f"mallard.{name}" in BY_NAME, name


@pytest.mark.parametrize("name", _duckdb_free_modules())
def test_core_module_does_not_reach_duckdb(name: str) -> None:
    """Tracker, buffer, payload, privacy, events, settings and enrich neither import duckdb nor any
    mallard module that does."""
    offenders = sorted(f"{m} imports duckdb" for m in reachable(name)
                       if any(_top(i) == "duckdb" for i in imports(BY_NAME[m])))
    assert not offenders, offenders


def test_only_store_and_queries_import_duckdb() -> None:
    offenders = sorted(m.rel for m in MODULES
                       if not _in(m, "mallard.store", "mallard.queries")
                       and any(_top(i) == "duckdb" for i in imports(m)))
    assert not offenders, f"duckdb imported outside mallard/store and mallard/queries: {offenders}"


def test_no_web_framework_outside_adapters() -> None:
    offenders = sorted(f"{m.rel}: {sorted({_top(i) for i in imports(m)} & FRAMEWORKS)}" for m in MODULES
                       if not _in(m, "mallard.adapters") and {_top(i) for i in imports(m)} & FRAMEWORKS)
    assert not offenders, f"web framework imported outside mallard/adapters: {offenders}"


def test_package_init_does_not_import_adapters() -> None:
    assert not any(_in_name(i, "mallard.adapters") for i in imports(BY_NAME["mallard"]))


def _in_name(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _environ_reads(module: Module) -> list[int]:
    """Lines where ``module`` touches os.environ / os.environb / os.getenv (under any alias)."""
    os_names = {"os"}
    for node in _nodes(module.tree):
        if isinstance(node, ast.Import):
            os_names.update(a.asname or a.name for a in node.names if a.name == "os")
    lines = []
    for node in _nodes(module.tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os" and not node.level:
            if any(a.name in ENVIRON_NAMES for a in node.names):
                lines.append(node.lineno)
        elif (isinstance(node, ast.Attribute) and node.attr in ENVIRON_NAMES
              and isinstance(node.value, ast.Name) and node.value.id in os_names):
            lines.append(node.lineno)
    return lines


def test_only_settings_reads_the_environment() -> None:
    offenders = {m.rel: lines for m in MODULES if m.name != "mallard.settings"
                 and (lines := _environ_reads(m))}
    assert not offenders, f"os.environ/os.getenv used outside mallard/settings.py: {offenders}"


def test_the_environment_scan_finds_settings() -> None:
    """Guards the scan itself: settings.py does read the environment."""
    assert _environ_reads(BY_NAME["mallard.settings"])


def test_modules_stay_within_the_size_budget() -> None:
    """No module exceeds 800 lines (STYLE.md 3.2: past that, split it by concept)."""
    sizes = {m.rel: len(m.path.read_text(encoding="utf-8").splitlines()) for m in MODULES}
    offenders = {rel: n for rel, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not offenders, f"modules over {MAX_LINES} lines: {offenders}"


# -- the scanners themselves -------------------------------------------------------------------------
def _fake(source: str, name: str = "mallard.fake") -> Module:
    return Module(name, PACKAGE / "fake.py", ast.parse(source))


@pytest.mark.parametrize("source", [
    "import os\nos.environ['X']",
    "import os as _os\n_os.getenv('X')",
    "from os import environ",
    "def f():\n    import os\n    return os.environb",
], ids=["environ", "aliased-getenv", "from-import", "in-function"])
def test_environment_scan_catches(source: str) -> None:
    assert _environ_reads(_fake(source))


def test_import_scan_skips_type_checking_and_resolves_relative_imports() -> None:
    found = imports(_fake("from typing import TYPE_CHECKING\nfrom .store import Store\n"
                          "if TYPE_CHECKING:\n    import duckdb\nelse:\n    import flask\n"
                          "def f():\n    from ..x import y\n", name="mallard.queries.fake"))
    assert "duckdb" not in found
    assert {"flask", "mallard.queries.store", "mallard.x", "mallard.x.y"} <= found
