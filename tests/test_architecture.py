"""Import rules, the size budget of STYLE.md 3.2 and the tests' layout, checked on the source (AST), not at
run time.

Imports inside functions count. Imports under ``if TYPE_CHECKING:`` never execute, so the rules about
dependencies (DuckDB, web frameworks) ignore them; the rules about layers (which way imports point,
cycles) count them too, as a type named from a higher layer ties the lower one to it all the same.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mallard"
MAX_LINES = 400

#: The edges: the framework-neutral HTTP layer, and the adapters that mount it in a host. The core
#: (every other module) imports neither; the HTTP layer does not import the adapters.
HTTP = "mallard._http"
ADAPTERS = "mallard.adapters"
#: The command line runs the server (``mallard serve``: uvicorn and the ASGI adapter), so it sits above
#: the adapters; nothing but ``python -m mallard`` imports it.
ENTRY_POINTS = ("mallard._cli", "mallard.__main__")
#: Standard modules that read or list files; the HTTP layer reaches files only through the core
#: (the Store for the lake and state/, mallard._packaged for the static files).
FILE_IO_MODULES = frozenset({"pathlib", "glob", "shutil", "fcntl", "sqlite3", "tempfile",
                             "importlib.resources", "importlib.abc"})
FILE_IO_OS_NAMES = frozenset({"open", "listdir", "scandir", "walk", "stat", "path", "remove", "unlink",
                              "rename", "replace", "makedirs", "mkdir"})

#: The modules users import (docs/, README.md): the package and its ``__all__``, ``python -m mallard``, the
#: adapters (``mallard.adapters`` also holds the HTTP layer's ``Api``, ``Request``, ``Response``) and
#: ``mallard.context`` (``request_client``). Every other module is marked private by its name: it is
#: underscore-named, or inside an underscore-named package (httpx's ``_models``, ``_client``).
PUBLIC_MODULES = frozenset({"mallard", "mallard.__main__", "mallard.context", "mallard.adapters",
                            "mallard.adapters.asgi", "mallard.adapters.flask", "mallard.adapters.middleware",
                            "mallard.adapters.wsgi"})
#: Tests mirror the package: the tests of ``mallard/x/y.py`` are ``tests/x/test_y.py``, and more of them
#: ``tests/x/test_y_<aspect>.py``; a package's own ``__init__.py`` is ``tests/x/test_x.py`` (a leading
#: underscore of a module or package is not repeated: ``mallard/_x/y.py`` is ``tests/x/test_y.py``).
TESTS = ROOT / "tests"
#: Test modules that mirror no module: each checks a property of the whole, through real processes,
#: servers or browsers, or of the files around the code.
CROSS_CUTTING = {
    "tests/test_architecture.py": "import rules, size budget, this layout (on the source)",
    "tests/test_docs.py": "the docs describe the code; generated blocks are fresh",
    "tests/test_examples.py": "examples/: the FastAPI, Flask and Django apps as real servers",
    "tests/test_snippets.py": "every README and docs snippet runs as written",
    "tests/test_public_api.py": "mallard.__all__: sorted, complete, cheap to import",
    "tests/test_durability.py": "nothing acknowledged lost or stored twice, processes SIGKILLed",
    "tests/test_backups.py": "operations.md's backup and restore recipe beside a live writer",
    "tests/test_full_disk.py": "a full disk: refused events, no crash, nothing lost",
    "tests/test_multiprocess.py": "several processes ingesting into one data directory",
    "tests/test_date_edges.py": "every query and route at the ends of the calendar",
    "tests/http/test_contract.py": "one HTTP contract through every adapter, real servers",
    "tests/http/test_crash_safety.py": "exactly-once storage under every multi-worker host",
    "tests/http/test_workers.py": "several workers over real HTTP: ingestion, stats, /metrics",
    "tests/http/test_fuzz.py": "schemathesis against a real server, from the OpenAPI document",
    "tests/http/test_browser.py": "the tracking script and the dashboard in Chromium in a host app",
    "tests/http/test_dashboard_*.py": "the dashboard (mallard/static/dashboard/) in Chromium",
    "tests/http/test_conftest.py": "the real-server fixture itself",
    "tests/npm/test_npm_trackers.py": "Plausible's own npm trackers against a real server",
    "tests/static/test_*.py": "the tracking script and the dashboard's files (mallard/static/, not Python)",
    # Its name is written into every golden file (tests/queries/golden/); the builder's and the
    # planner's SQL, pinned.
    "tests/queries/test_golden_sql.py": "the SQL the builder writes for representative plans",
    "tests/test_notebook.py": "docs/notebook.ipynb end to end in a real Jupyter kernel",
}
#: Modules without a test module of their own, and the suites that test them.
TESTED_ELSEWHERE = {
    "mallard/__init__.py": "tests/test_public_api.py",
    "mallard/__main__.py": "tests/test_cli.py (python -m mallard)",
    "mallard/adapters/asgi.py": "tests/http/test_contract.py, tests/http/test_api.py",
    "mallard/adapters/wsgi.py": "tests/http/test_contract.py, tests/http/test_api.py",
    "mallard/adapters/_logs.py": "tests/adapters/test_serve_options.py (log_format = json)",
    "mallard/_app.py": "every suite drives a Mallard; lifecycle: tests/test_durability.py, "
                      "tests/test_full_disk.py, tests/test_multiprocess.py",
    "mallard/_ingestion.py": "tests/test_durability.py, tests/test_full_disk.py (readiness), "
                            "tests/store/test_store_erasure.py (buffered events erased)",
    "mallard/_maintenance.py": "tests/test_durability.py (replay by the maintenance thread), "
                              "tests/test_cli.py (mallard compact), tests/http/test_v2_periods.py",
    "mallard/_intake.py": "tests/test_tracker.py (the validate step)",
    "mallard/_errors.py": "tests/http/test_errors.py (every class in the error table)",
    "mallard/_events.py": "tests/store/test_lake.py (the schema written), tests/test_docs.py",
    "mallard/_packaged.py": "tests/http/test_assets.py, tests/static/test_dashboard_files.py",
    "mallard/_records.py": "tests/test_funnels.py, tests/test_shares.py",
    "mallard/_setting_values.py": "tests/test_settings.py",
    "mallard/_transfer_commands.py": "tests/test_transfer.py, tests/test_plausible.py (export --output, "
                                     "import)",
    "mallard/_auth/clock.py": "tests/auth/ (a frozen clock through every module)",
    "mallard/_auth/errors.py": "tests/auth/, tests/http/test_errors.py",
    "mallard/_http/behaviour.py": "tests/http/test_stats_filters.py, tests/http/test_contract.py",
    "mallard/_http/funnels.py": "tests/http/test_shares.py (saved funnels over HTTP)",
    "mallard/_http/info.py": "tests/http/test_contract.py, tests/http/test_dashboard_settings.py",
    "mallard/_http/messages.py": "tests/http/test_api.py",
    "mallard/_http/routing.py": "tests/http/test_openapi.py, tests/http/test_limits.py, "
                               "tests/http/test_api_fuzz.py (the whole route table)",
    "mallard/_http/schemas.py": "tests/http/test_openapi.py",
    "mallard/_http/security.py": "tests/http/test_api.py (proxies, open mode, HSTS, CORS)",
    "mallard/_queries/access.py": "tests/queries/test_funnels.py, test_retention.py, test_flow.py",
    "mallard/_queries/buckets.py": "tests/queries/test_queries_presets.py (timeseries)",
    "mallard/_queries/builder.py": "tests/queries/test_golden_sql.py, tests/queries/test_filters.py",
    "mallard/_queries/plans.py": "tests/queries/test_planner.py, tests/queries/test_golden_sql.py (plans and "
                                 "their fallbacks, planner.without)",
    "mallard/_queries/engagement.py": "tests/test_engagement.py",
    "mallard/_queries/engine.py": "tests/queries/test_results.py, tests/queries/test_stored_sessions.py",
    "mallard/_queries/export.py": "tests/queries/test_queries_presets.py (export)",
    "mallard/_queries/include.py": "tests/http/test_v2_periods.py",
    "mallard/_queries/properties.py": "tests/http/test_contract.py, tests/http/test_v1.py",
    "mallard/_queries/realtime.py": "tests/http/test_v1.py",
    "mallard/_queries/sql.py": "tests/queries/test_filters.py (values bound), test_golden_sql.py",
    "mallard/_store/derived.py": "tests/queries/test_stored_sessions.py, test_rollups.py, "
                                "tests/test_engagement.py",
    "mallard/_store/spool.py": "tests/store/test_recovery.py, tests/test_buffer.py",
    "mallard/_store/tombstones.py": "tests/store/test_store_erasure.py",
    "mallard/_store/batch.py": "tests/store/test_store_erasure.py, tests/test_durability.py (a local flush)",
    "mallard/_store/objectclient.py": "tests/store/test_sharedstore.py (an unreachable store, said plainly)",
    "mallard/_telemetry/shards.py": "tests/telemetry/test_counters.py, test_snapshots.py",
    "mallard/_telemetry/totals.py": "tests/telemetry/test_snapshots.py, test_counters.py",
}

#: Core modules that must not reach DuckDB, directly or through other mallard modules.
DUCKDB_FREE = ("mallard._tracker", "mallard._buffer", "mallard._payload", "mallard._privacy",
               "mallard._events", "mallard._settings", "mallard._enrich")
FRAMEWORKS = frozenset({"starlette", "flask", "werkzeug", "anyio"})
ENVIRON_NAMES = frozenset({"environ", "environb", "getenv"})


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "mallard._queries.builder"
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


def _nodes(node: ast.AST, *, typing: bool = False) -> Iterator[ast.AST]:
    """Every node below ``node``, skipping the bodies of ``if TYPE_CHECKING:`` unless ``typing``."""
    for child in ast.iter_child_nodes(node):
        if not typing and isinstance(child, ast.If) and _is_type_checking(child.test):
            for orelse in child.orelse:
                yield orelse
                yield from _nodes(orelse)
            continue
        yield child
        yield from _nodes(child, typing=typing)


def _from_base(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module of ``from <base> import ...``."""
    if not node.level:
        return node.module or ""
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]
    base_parts = package.split(".")
    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
    return ".".join(base_parts + ([node.module] if node.module else []))


def imports(module: Module, *, typing: bool = False) -> set[str]:
    """Absolute dotted names imported by ``module`` (``from x import y`` gives ``x`` and ``x.y``);
    with ``typing``, those under ``if TYPE_CHECKING:`` too."""
    found: set[str] = set()
    for node in _nodes(module.tree, typing=typing):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(module, node)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def internal_imports(module: Module) -> set[str]:
    """The mallard modules ``module`` depends on, ``if TYPE_CHECKING:`` included: ``from . import x``
    is module ``x`` when there is one (not the package), ``from .m import name`` is ``m``."""
    found: set[str] = set()
    for node in _nodes(module.tree, typing=True):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(module, node)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in BY_NAME else base for a in node.names]
        else:
            continue
        found.update(target for name in names if (target := _internal(name)) is not None)
    found.discard(module.name)
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


def _in_name(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _in(module: Module, *packages: str) -> bool:
    return any(_in_name(module.name, p) for p in packages)


def _unit(name: str) -> str:
    """The top-level module or package of a mallard module (``mallard._http.api`` → ``mallard._http``);
    the package itself is ``mallard``."""
    return ".".join(name.split(".")[:2])


def unit_graph(modules: list[Module]) -> dict[str, dict[str, set[str]]]:
    """Imports between mallard's top-level modules and packages: ``graph[a][b]`` is the set of modules
    of ``a`` that import something of ``b``."""
    graph: dict[str, dict[str, set[str]]] = {}
    for module in modules:
        source = _unit(module.name)
        for target in internal_imports(module):
            if _unit(target) != source:
                graph.setdefault(source, {}).setdefault(_unit(target), set()).add(module.name)
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _file_io(module: Module) -> list[str]:
    """What ``module`` uses to reach files itself: modules that read or list files, ``open()``, and
    ``os`` functions on paths (``os.register_at_fork`` and the like are fine)."""
    used = [f"imports {name}" for name in sorted(imports(module, typing=False))
            if name in FILE_IO_MODULES or _top(name) in FILE_IO_MODULES]
    for node in _nodes(module.tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            used.append(f"open() at line {node.lineno}")
        elif (isinstance(node, ast.Attribute) and node.attr in FILE_IO_OS_NAMES
              and isinstance(node.value, ast.Name) and node.value.id == "os"):
            used.append(f"os.{node.attr} at line {node.lineno}")
    return used


def _duckdb_free_modules() -> list[str]:
    return [m.name for m in MODULES
            if any(_in(m, name) for name in DUCKDB_FREE)]


# -- rules -------------------------------------------------------------------------------------------
def test_core_modules_exist() -> None:
    """The rule lists below name real modules (a rename must update this file)."""
    for name in DUCKDB_FREE:
        assert name in BY_NAME, name


@pytest.mark.parametrize("name", _duckdb_free_modules())
def test_core_module_does_not_reach_duckdb(name: str) -> None:
    """Tracker, buffer, payload, privacy, events, settings and enrich neither import duckdb nor any
    mallard module that does."""
    offenders = sorted(f"{m} imports duckdb" for m in reachable(name)
                       if any(_top(i) == "duckdb" for i in imports(BY_NAME[m])))
    assert not offenders, offenders


def test_only_store_and_queries_import_duckdb() -> None:
    offenders = sorted(m.rel for m in MODULES
                       if not _in(m, "mallard._store", "mallard._queries")
                       and any(_top(i) == "duckdb" for i in imports(m)))
    assert not offenders, f"duckdb imported outside mallard/_store and mallard/_queries: {offenders}"


def test_no_web_framework_outside_adapters() -> None:
    offenders = sorted(f"{m.rel}: {sorted({_top(i) for i in imports(m)} & FRAMEWORKS)}" for m in MODULES
                       if not _in(m, "mallard.adapters") and {_top(i) for i in imports(m)} & FRAMEWORKS)
    assert not offenders, f"web framework imported outside mallard/adapters: {offenders}"


def test_package_init_does_not_import_adapters() -> None:
    assert not any(_in_name(i, "mallard.adapters") for i in imports(BY_NAME["mallard"]))


def test_edges_and_entry_points_exist() -> None:
    """The layer names below are real modules (a rename must update this file)."""
    for name in (HTTP, ADAPTERS, *ENTRY_POINTS):
        assert name in BY_NAME, name


def test_core_never_imports_the_http_layer_or_the_adapters() -> None:
    """Layers point one way: the adapters build the HTTP ``Api`` from a ``Mallard``; no core module
    imports ``mallard._http`` or ``mallard.adapters``, not inside a function, not for a type."""
    offenders = sorted(f"{m.rel} imports {name}" for m in MODULES
                       if not _in(m, HTTP, ADAPTERS, *ENTRY_POINTS)
                       for name in sorted(imports(m, typing=True))
                       if _in_name(name, HTTP) or _in_name(name, ADAPTERS))
    assert not offenders, offenders


def test_http_layer_never_imports_the_adapters() -> None:
    offenders = sorted(f"{m.rel} imports {name}" for m in MODULES if _in(m, HTTP)
                       for name in sorted(imports(m, typing=True))
                       if _in_name(name, ADAPTERS) or any(_in_name(name, e) for e in ENTRY_POINTS))
    assert not offenders, offenders


def test_only_the_entry_point_imports_the_command_line() -> None:
    offenders = sorted(f"{m.rel} imports {name}" for m in MODULES if m.name != "mallard.__main__"
                       for name in sorted(imports(m, typing=True)) if _in_name(name, "mallard._cli"))
    assert not offenders, offenders


def test_no_import_cycles_between_top_level_modules() -> None:
    """mallard's top-level modules and packages (``mallard._app``, ``mallard._store``,
    ``mallard._http``, ...) import each other without a cycle, counting imports inside functions and
    under ``if TYPE_CHECKING:``: each one can be read, and tested, with only those below it."""
    graph = unit_graph(MODULES)
    found = {" <-> ".join(c): sorted(f"{a} -> {b} ({', '.join(sorted(graph[a][b]))})"
                                     for a in c for b in graph.get(a, {}) if b in c)
             for c in cycles(graph)}
    assert not found, found


def test_http_layer_reaches_files_through_the_core() -> None:
    """``mallard._http`` neither opens nor lists files: static files come from ``mallard._packaged``,
    the lake's fingerprints and everything under the data directory from the Store."""
    offenders = {m.rel: used for m in MODULES if _in(m, HTTP) and (used := _file_io(m))}
    assert not offenders, offenders


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
    offenders = {m.rel: lines for m in MODULES if m.name != "mallard._settings"
                 and (lines := _environ_reads(m))}
    assert not offenders, f"os.environ/os.getenv used outside mallard/_settings.py: {offenders}"


def test_the_environment_scan_finds_settings() -> None:
    """Guards the scan itself: settings.py does read the environment."""
    assert _environ_reads(BY_NAME["mallard._settings"])


def test_modules_stay_within_the_size_budget() -> None:
    """No module exceeds 400 lines: past that, split it by concept."""
    sizes = {m.rel: len(m.path.read_text(encoding="utf-8").splitlines()) for m in MODULES}
    offenders = {rel: n for rel, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not offenders, f"modules over {MAX_LINES} lines: {offenders}"


def _private(name: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in name.split("."))


def test_internal_modules_are_underscore_named() -> None:
    """A module of mallard/ that users do not import has an underscore-named module or package in its
    name, so a new internal module is ``_x.py`` (or goes in an underscore-named package)."""
    exposed = sorted(m.name for m in MODULES if m.name not in PUBLIC_MODULES and not _private(m.name))
    assert not exposed, f"public by name but not in PUBLIC_MODULES (rename to _x.py, or list it): {exposed}"
    missing = sorted(PUBLIC_MODULES - set(BY_NAME))
    assert not missing, f"PUBLIC_MODULES names modules that do not exist: {missing}"


def _plain(part: str) -> str:
    return part if part.startswith("__") else part.lstrip("_")


def _mirror(module: Module) -> tuple[str, str]:
    """(folder under tests/, name after ``test_``) of ``module``'s test module."""
    parts = [_plain(p) for p in module.path.relative_to(PACKAGE).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
        return "/".join(parts), parts[-1] if parts else "mallard"
    return "/".join(parts[:-1]), parts[-1]


def _mirrors(test: Path, mirror: tuple[str, str]) -> bool:
    folder = test.parent.relative_to(TESTS).as_posix()
    name = test.stem.removeprefix("test_")
    return (folder if folder != "." else "") == mirror[0] and (
        name == mirror[1] or name.startswith(mirror[1] + "_"))


def _defines_something(module: Module) -> bool:
    """A function or class at the top level (a package ``__init__`` that only re-exports needs no test)."""
    return any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) for n in module.tree.body)


TEST_MODULES = sorted(p.relative_to(ROOT).as_posix() for p in TESTS.rglob("test_*.py"))
#: Every module that must have tests, with where its test module is.
MIRRORS = {m.rel: _mirror(m) for m in MODULES if m.path.name != "__init__.py" or _defines_something(m)}


def _cross_cutting(test: str) -> bool:
    return any(fnmatch.fnmatchcase(test, pattern) for pattern in CROSS_CUTTING)


def test_every_test_module_mirrors_a_module_or_is_cross_cutting() -> None:
    """``tests/x/test_y[_aspect].py`` tests ``mallard/x/y.py``; anything else is listed in CROSS_CUTTING."""
    stray = [t for t in TEST_MODULES if not _cross_cutting(t)
             and not any(_mirrors(ROOT / t, mirror) for mirror in MIRRORS.values())]
    assert not stray, (f"test modules named after no module of mallard/ (rename to tests/x/test_y.py "
                       f"for mallard/x/y.py, or list in CROSS_CUTTING): {stray}")


def test_every_module_has_its_test_module() -> None:
    """Each module of mallard/ has ``tests/x/test_y.py``, or is in TESTED_ELSEWHERE with its suites."""
    untested = sorted(rel for rel, mirror in MIRRORS.items() if rel not in TESTED_ELSEWHERE
                      and not any(_mirrors(ROOT / t, mirror) for t in TEST_MODULES))
    assert not untested, (f"modules without tests/<folder>/test_<module>.py (or an entry in "
                          f"TESTED_ELSEWHERE): {untested}")


def test_the_test_layout_lists_are_current() -> None:
    """CROSS_CUTTING names existing suites that mirror nothing; TESTED_ELSEWHERE names existing modules
    that have no test module of their own (remove an entry once it has one) and suites that exist."""
    stale = [p for p in CROSS_CUTTING if not any(fnmatch.fnmatchcase(t, p) for t in TEST_MODULES)]
    stale += [t for t in TEST_MODULES if _cross_cutting(t)
              and any(_mirrors(ROOT / t, mirror) for mirror in MIRRORS.values())]
    for rel, suites in TESTED_ELSEWHERE.items():
        if rel not in MIRRORS or any(_mirrors(ROOT / t, MIRRORS[rel]) for t in TEST_MODULES):
            stale.append(rel)
        for named in (w.strip(",") for w in suites.split() if w.startswith("tests/")):
            if not (ROOT / named).exists():
                stale.append(f"{rel}: {named}")
    assert not stale, stale


# -- the scanners themselves -------------------------------------------------------------------------
def _fake(source: str, name: str = "mallard.fake") -> Module:
    return Module(name, PACKAGE / "fake.py", ast.parse(source))


@pytest.mark.parametrize(("scan", "source"), [
    (_environ_reads, "import os\nos.environ['X']"),
    (_environ_reads, "import os as _os\n_os.getenv('X')"),
    (_environ_reads, "from os import environ"),
    (_environ_reads, "def f():\n    import os\n    return os.environb"),
    (_file_io, "from importlib import resources"),
    (_file_io, "from pathlib import Path"),
    (_file_io, "def f(p):\n    with open(p) as f:\n        return f.read()"),
    (_file_io, "import os\nos.listdir('.')"),
], ids=["environ", "aliased-getenv", "from-import", "in-function",
        "io-resources", "io-pathlib", "io-open", "io-os-listdir"])
def test_scan_catches(scan: Callable[[Module], list[Any]], source: str) -> None:
    assert scan(_fake(source))


def test_import_scan_counts_type_checking_when_asked() -> None:
    module = _fake("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .adapters.asgi import A\n")
    assert "mallard.adapters.asgi" not in imports(module)
    assert "mallard.adapters.asgi" in imports(module, typing=True)
    assert internal_imports(module) == {"mallard.adapters.asgi"}


def test_internal_imports_resolve_from_package_imports_to_modules() -> None:
    module = _fake("from . import context, __version__\ndef f():\n    from .adapters import Api, wsgi\n")
    assert internal_imports(module) == {"mallard.context", "mallard", "mallard.adapters",
                                        "mallard.adapters.wsgi"}


def test_cycle_finder() -> None:
    graph = {"a": {"b": {"a.x"}}, "b": {"c": {"b"}}, "c": {"a": {"c"}}, "d": {"a": {"d"}}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": {"a"}}, "b": {}}) == []
    lazy = [_fake("def f():\n    from .adapters import asgi\n", name="mallard.context"),
            _fake("if TYPE_CHECKING:\n    from ..context import M\n", name="mallard.adapters.asgi")]
    assert cycles(unit_graph(lazy)) == [["mallard.adapters", "mallard.context"]]


def test_file_io_scan_allows_fork_hooks() -> None:
    assert not _file_io(_fake("import os\nos.register_at_fork(after_in_child=print)"))


def test_import_scan_skips_type_checking_and_resolves_relative_imports() -> None:
    found = imports(_fake("from typing import TYPE_CHECKING\nfrom .store import Store\n"
                          "if TYPE_CHECKING:\n    import duckdb\nelse:\n    import flask\n"
                          "def f():\n    from ..x import y\n", name="mallard._queries.fake"))
    assert "duckdb" not in found
    assert {"flask", "mallard._queries.store", "mallard.x", "mallard.x.y"} <= found
