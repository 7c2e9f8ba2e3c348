"""The public surface is `mallard.__all__`: sorted, complete, and cheap to import (httpx, PostHog)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import mallard

ROOT = Path(__file__).resolve().parent.parent

#: Optional or framework dependencies that `import mallard` must not pull in.
FORBIDDEN_ON_IMPORT = ("starlette", "flask", "werkzeug", "anyio", "pandas", "polars")


def _public_attributes() -> set[str]:
    """Public names bound in the package that are neither submodules nor `from __future__` features."""
    return {
        name for name, value in vars(mallard).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and type(value).__module__ != "__future__"  # `from __future__ import annotations`
    }


def test_all_is_sorted() -> None:
    """`__all__` is sorted with key=str.casefold, so additions have one obvious place."""
    assert mallard.__all__ == sorted(mallard.__all__, key=str.casefold)


def test_all_has_no_duplicates() -> None:
    assert len(mallard.__all__) == len(set(mallard.__all__))


def test_every_listed_name_exists() -> None:
    missing = [name for name in mallard.__all__ if not hasattr(mallard, name)]
    assert not missing


def test_every_public_attribute_is_listed() -> None:
    """A public name bound in `mallard/__init__.py` is either in `__all__` or renamed with a `_`."""
    unlisted = sorted(_public_attributes() - set(mallard.__all__))
    assert not unlisted, f"public but not in mallard.__all__: {unlisted}"


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from mallard import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(mallard.__all__)


def test_version_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert mallard.__version__ == project["version"]


def test_import_is_warning_free_and_light() -> None:
    """`python -W error -c "import mallard"` works and loads no web framework or DataFrame library."""
    code = (
        "import json, sys\n"
        "import mallard\n"
        f"print(json.dumps(sorted(m for m in {FORBIDDEN_ON_IMPORT!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"`import mallard` imported {loaded}"


def _mallard_classes() -> dict[str, list[type]]:
    """Every class defined in a mallard module, by name."""
    import importlib
    import inspect
    import pkgutil

    found: dict[str, list[type]] = {}
    for info in pkgutil.walk_packages(mallard.__path__, "mallard."):
        if ".adapters" in info.name or info.name.endswith("__main__"):
            continue  # framework edges: their optional dependencies need not be installed
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == info.name:
                found.setdefault(name, []).append(value)
    return found


def _signature_types(fn: object, classes: dict[str, list[type]]) -> set[type]:
    """mallard classes named in ``fn``'s annotations (strings: every module has ``from __future__
    import annotations``), resolved in the function's module, else by a unique class name."""
    import re

    names: set[str] = set()
    for text in getattr(fn, "__annotations__", {}).values():
        names |= set(re.findall(r"\b[A-Z]\w*", str(text)))
    scope = getattr(fn, "__globals__", {})
    out = set()
    for name in names:
        value = scope.get(name)
        if isinstance(value, type) and value.__module__.startswith("mallard"):
            out.add(value)
        elif value is None and len(classes.get(name, [])) == 1:
            out.add(classes[name][0])
    return out


#: Building blocks exported for those who assemble their own pipeline; their constructors and methods
#: take mallard's internals (a Lake, a Spool, a Reader…), which stay internal.
BUILDING_BLOCKS = frozenset({"Access", "Auth", "EventBuffer", "ProcessCounters", "Store", "Tracker"})


def test_every_type_of_a_public_signature_is_public() -> None:
    """A type a caller meets in a public signature (an argument, a result, a property) of mallard's
    exported names, building blocks aside, can be imported from ``mallard`` by name:
    ``mallard.ClientContext``, ``mallard.ErasureResult``…"""
    import inspect

    classes = _mallard_classes()
    exported = {id(getattr(mallard, n)) for n in mallard.__all__}
    missing: dict[str, set[str]] = {}
    for name in sorted(set(mallard.__all__) - BUILDING_BLOCKS):
        obj = getattr(mallard, name)
        # methods and properties: what a caller calls and gets (mallard builds its value objects)
        members = ([(f"{name}.{attr}", m) for attr, m in vars(obj).items() if not attr.startswith("_")]
                   if inspect.isclass(obj) else [(name, obj)])
        for where, member in members:
            fn = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            for t in _signature_types(fn, classes):
                if id(t) not in exported and not t.__name__.startswith("_"):
                    missing.setdefault(f"{t.__module__}.{t.__name__}", set()).add(where)
    assert not missing, f"types of public signatures missing from mallard.__all__: {missing}"
