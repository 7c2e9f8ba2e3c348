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
