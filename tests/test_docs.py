"""The docs describe the code: generated blocks are fresh, and every setting, metric, dimension, breakdown
slug, filter operator, period and public name is documented (Datasette's test_docs.py).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

import mallard
from mallard._queries import filters, periods, registry

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GEN_DOCS = ROOT / "scripts" / "gen_docs.py"


def _load_gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", GEN_DOCS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _without_code_blocks(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _headings(text: str) -> list[str]:
    return [m.group(2).strip() for m in re.finditer(r"^(#{1,6}) (.+)$", _without_code_blocks(text), re.M)]


def _slug(heading: str) -> str:
    """The anchor Python-Markdown (mkdocs) gives a heading."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


# -- generated blocks ------------------------------------------------------------------------------
def test_generated_blocks_are_fresh() -> None:
    """`gen_docs.py --check` passes: run `python scripts/gen_docs.py` after changing the code."""
    proc = subprocess.run([sys.executable, str(GEN_DOCS), "--check"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_check_reports_a_stale_block(tmp_path: Path) -> None:
    """--check exits 1 and names the page when a generated block was edited by hand."""
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    page = docs / "queries.md"
    page.write_text(page.read_text(encoding="utf-8").replace("| `visitors` |", "| `vistors` |", 1),
                    encoding="utf-8")
    proc = subprocess.run([sys.executable, str(GEN_DOCS), "--check", "--docs-dir", str(docs)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    assert "queries.md" in proc.stderr


def test_regenerating_restores_a_stale_block(tmp_path: Path) -> None:
    """Without --check the script rewrites the block, after which --check passes."""
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    page = docs / "storage.md"
    text = page.read_text(encoding="utf-8")
    start, end = "<!-- schema:start -->", "<!-- schema:end -->"
    page.write_text(text.split(start)[0] + start + "\nstale\n" + end + text.split(end)[1], encoding="utf-8")
    for args in ([], ["--check"]):
        proc = subprocess.run([sys.executable, str(GEN_DOCS), *args, "--docs-dir", str(docs)],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stderr
    assert page.read_text(encoding="utf-8") == text


def test_check_fails_when_markers_are_missing(tmp_path: Path) -> None:
    """A page that lost its markers is reported, not silently skipped."""
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    page = docs / "settings.md"
    page.write_text(page.read_text(encoding="utf-8").replace("<!-- settings:end -->", ""), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(GEN_DOCS), "--check", "--docs-dir", str(docs)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    assert "settings" in proc.stderr


# -- everything is documented ----------------------------------------------------------------------
def test_every_setting_has_a_heading() -> None:
    """settings.md has one `### <name>` heading per Settings field, and no heading for a removed one."""
    headings = {h for h in _headings(_page("settings.md"))}
    fields = set(mallard.Settings.field_names())
    missing = sorted(fields - headings)
    assert not missing, f"settings without a heading in docs/settings.md: {missing}"
    stale = sorted(h for h in headings if re.fullmatch(r"[a-z_]+", h) and h not in fields)
    assert not stale, f"headings in docs/settings.md for settings that no longer exist: {stale}"


@pytest.mark.parametrize("name", list(registry.METRICS))
def test_metric_is_documented(name: str) -> None:
    assert f"`{name}`" in _page("queries.md")


@pytest.mark.parametrize("name", [*registry.DIMENSIONS, *registry.TIME_DIMENSIONS, "event:props:<key>"])
def test_dimension_is_documented(name: str) -> None:
    assert f"`{name}`" in _page("queries.md")


@pytest.mark.parametrize("slug", list(registry.BREAKDOWNS))
def test_breakdown_slug_is_documented(slug: str) -> None:
    assert f"`{slug}`" in _page("queries.md")


@pytest.mark.parametrize("op", [*filters.OPERATORS, "and", "or", "not"])
def test_filter_operator_is_documented(op: str) -> None:
    assert f"`{op}`" in _page("queries.md") or f'"{op}"' in _page("queries.md")


@pytest.mark.parametrize("period", list(periods.PERIODS))
def test_period_is_documented(period: str) -> None:
    assert f"`{period}`" in _page("queries.md")


@pytest.mark.parametrize("name", list(mallard.__all__))
def test_public_name_is_in_python_api(name: str) -> None:
    """Every name of mallard.__all__ has a heading in python-api.md."""
    assert name in _headings(_page("python-api.md"))


def test_every_lake_column_is_in_the_storage_schema() -> None:
    page = _page("storage.md")
    missing = [c.name for c in mallard._events.COLUMNS if f"| `{c.name}` |" not in page]
    assert not missing


def test_reserved_settings_are_not_read_yet() -> None:
    """Settings documented as "Not used yet" are indeed read nowhere in mallard/ (except settings.py).

    When this fails, a setting got wired up: remove it from RESERVED in scripts/gen_docs.py and rerun
    the script, so settings.md stops calling it unused.
    """
    reserved = set(_load_gen_docs().RESERVED)
    assert reserved <= mallard.Settings.field_names(), "RESERVED names a setting that does not exist"
    used: dict[str, list[str]] = {}
    for path in sorted((ROOT / "mallard").rglob("*.py")):
        if path == ROOT / "mallard" / "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = None
            if isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = node.value
            if name in reserved:
                used.setdefault(name, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not used, f"settings marked 'Not used yet' are read: {used}"


def test_numbers_quoted_in_prose_are_current() -> None:
    """Defaults and limits the hand-written pages quote still hold (update the prose when they change)."""
    from mallard import _events as events
    from mallard import _intake as intake
    from mallard import _payload as payload
    from mallard._queries import model

    defaults = mallard.Settings()
    assert defaults.flush_interval_secs == 5  # quickstart.md, storage.md
    assert defaults.flush_event_count == 1000  # quickstart.md
    assert defaults.compact_after_files == 24  # storage.md
    assert defaults.compact_target_bytes == 64 * 1024 * 1024  # storage.md
    assert defaults.session_window_minutes == 30  # concepts.md, privacy.md
    assert defaults.geoip_precision == "city"  # privacy.md
    assert defaults.timezone == "UTC"  # concepts.md, queries.md
    assert (filters.MAX_VALUES, filters.MAX_VALUE_LEN, filters.MAX_CONDITIONS, filters.MAX_DEPTH) == (
        100, 2048, 50, 8)  # queries.md
    assert model.MAX_LIMIT == 10_000  # queries.md
    assert (intake.MAX_NAME, intake.MAX_PAGE_URL, intake.MAX_URL, intake.MAX_PROPS,
            intake.MAX_USER_ID) == (120, 2000, 2048, 4096, 512)  # concepts.md
    assert (payload.MAX_PROP_KEYS, payload.MAX_PROP_KEY_BYTES, payload.MAX_PROP_VALUE_BYTES) == (
        30, 300, 2000)  # concepts.md
    assert events.MAX_SITE_ID == 247  # concepts.md


# -- examples work ---------------------------------------------------------------------------------
def test_toml_example_loads(tmp_path: Path) -> None:
    """The TOML example of settings.md is valid, including its [privacy] table."""
    blocks = re.findall(r"^```toml\n(.*?)^```", _page("settings.md"), flags=re.S | re.M)
    assert len(blocks) == 1
    path = tmp_path / "mallard.toml"
    path.write_text(blocks[0], encoding="utf-8")
    settings = mallard.Settings.load(path, environ={})
    assert settings.site_ids == ("example.com", "blog.example.com")
    assert settings.strip_referrer_query is True
    assert settings.geoip_precision == "country"


@pytest.fixture
def lake_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding a small lake at var/analytics, as the storage.md examples expect."""
    data_dir = tmp_path / "var" / "analytics"
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    with mallard.Mallard(mallard.Settings(data_dir=data_dir)) as m:
        for i, path in enumerate(["/", "/pricing", "/", "/docs"]):
            outcome = m.track("pageview", site="example.com", url=f"https://example.com{path}",
                              ip=f"203.0.113.{i}", user_agent=ua, timestamp=start + timedelta(hours=i))
            assert outcome.accepted, outcome
        m.track("signup", site="example.com", url="https://example.com/join", ip="203.0.113.1",
                user_agent=ua, timestamp=start + timedelta(hours=5))
    monkeypatch.chdir(tmp_path)
    return data_dir


def _runnable_blocks(page: str) -> list[str]:
    return re.findall(r"^<!-- runnable -->\n```python\n(.*?)^```", _page(page), flags=re.S | re.M)


def test_storage_page_has_runnable_examples() -> None:
    assert len(_runnable_blocks("storage.md")) >= 3


@pytest.mark.parametrize("index", range(3), ids=["duckdb", "pandas", "polars"])
def test_storage_examples_run(lake_dir: Path, index: int) -> None:
    """The code that reads the lake with DuckDB, pandas and polars works as printed."""
    code = _runnable_blocks("storage.md")[index]
    for module in re.findall(r"^import (\w+)", code, flags=re.M):
        pytest.importorskip(module)
    namespace: dict[str, object] = {}
    exec(compile(code, f"docs/storage.md example {index}", "exec"), namespace)
    result = namespace.get("rows", namespace.get("daily", namespace.get("top")))
    assert result is not None and len(result) > 0


# -- links -----------------------------------------------------------------------------------------
def test_links_between_pages_resolve() -> None:
    """Every relative link from one docs page to another (and its #anchor), or to a file, exists."""
    broken = []
    pages = {p.name: p.read_text(encoding="utf-8") for p in DOCS.glob("*.md")}
    anchors = {name: {_slug(h) for h in _headings(text)} for name, text in pages.items()}
    for name, text in pages.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", _without_code_blocks(text)):
            if "://" in target or target.startswith("../"):
                continue
            page, _, anchor = target.partition("#")
            page = page or name
            if not page.endswith(".md"):  # an image or other file next to the pages
                if not (DOCS / page).is_file():
                    broken.append(f"{name}: {target} (no such file)")
                continue
            if page not in pages:
                broken.append(f"{name}: {target} (no such page)")
            elif anchor and anchor not in anchors[page]:
                broken.append(f"{name}: {target} (no such heading)")
    assert not broken, broken


# -- routes, commands, pages -----------------------------------------------------------------------
def _route_rows() -> set[tuple[str, str]]:
    """(method, path) of every row of http-api.md's route table (a row may name several paths)."""
    rows = set()
    for match in re.finditer(r"^\| `([A-Z]+)` \| (.+?) \|", _page("http-api.md"), re.M):
        rows.update((match.group(1), path) for path in re.findall(r"`(/[^`]*)`", match.group(2)))
    return rows


def test_every_route_is_in_the_route_table() -> None:
    """Each route of the HTTP layer has its method and path in a row of http-api.md's table."""
    from mallard._http.api import ROUTES

    missing = [f"{r.method} {r.pattern}" for r in ROUTES if (r.method, r.pattern) not in _route_rows()]
    assert not missing, f"routes missing from docs/http-api.md's table: {missing}"


def test_every_documented_route_exists() -> None:
    """The table lists no route that the HTTP layer does not answer."""
    from mallard._http.api import ROUTES

    routes = {(r.method, r.pattern) for r in ROUTES}
    stale = sorted(row for row in _route_rows() if row not in routes)
    assert not stale, f"rows of docs/http-api.md for routes that do not exist: {stale}"


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every command of the CLI, "mallard keys create" style, with its parser (COLUMNS=80 for usage)."""
    from mallard._cli import build_parser

    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        found[name] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    walk(child, f"{name} {sub}")
    walk(build_parser(), "mallard")
    return found


def test_every_cli_command_is_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command has a `mallard <command>` heading in cli.md (sub-actions: a heading, or a line of a
    code block starting with their name), and each top-level one a row of the commands table."""
    monkeypatch.setenv("COLUMNS", "80")
    text = _page("cli.md")
    headings = {h.strip("`") for h in _headings(text)}
    code_lines = {line.strip() for block in re.findall(r"^```\w*\n(.*?)^```", text, flags=re.S | re.M)
                  for line in block.splitlines()}
    missing = []
    for name in _commands():
        depth = name.count(" ")
        if depth == 1:
            documented = name in headings and f"| `{name.split()[1]}` |" in text
        else:
            documented = name in headings or any(line == name or line.startswith(name + " ")
                                                 for line in code_lines)
        if not documented:
            missing.append(name)
    assert not missing, f"commands not documented in docs/cli.md: {missing}"


def test_cli_usage_blocks_are_current(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `usage: ...` block of cli.md is what the parser prints (at 80 columns)."""
    monkeypatch.setenv("COLUMNS", "80")
    usages = {parser.format_usage(): name for name, parser in _commands().items()}
    blocks = re.findall(r"^```text\n(usage: .*?)^```", _page("cli.md"), flags=re.S | re.M)
    assert blocks
    stale = [block.splitlines()[0] for block in blocks if block not in usages]
    assert not stale, f"usage blocks of docs/cli.md that differ from `--help` (COLUMNS=80): {stale}"


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    assert isinstance(nav, list)
    return [page for item in nav for page in _nav_pages(item)]


def test_every_page_is_in_the_site_navigation() -> None:
    """mkdocs.yml's nav lists every page of docs/ once, and no page that does not exist."""
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(config["nav"])
    assert len(nav) == len(set(nav)), "a page is listed twice"
    pages = {p.name for p in DOCS.glob("*.md")}
    listed = {page for page in nav if page.endswith(".md")}
    assert listed == pages, (sorted(pages - listed), sorted(listed - pages))
    others = [page for page in nav if not page.endswith(".md")]  # a notebook (mkdocs-jupyter)
    assert all((DOCS / page).is_file() for page in others), others


@pytest.mark.slow
def test_docs_site_builds_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict` passes: no broken link or anchor, every page in the nav, includes found."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml",
                           "-d", str(tmp_path / "site")], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (tmp_path / "site" / "quickstart-django" / "index.html").is_file()
    changelog = (tmp_path / "site" / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Keep a Changelog" in changelog  # the include worked


# -- promises --------------------------------------------------------------------------------------
#: Words that promise work to come. Each use in a page must be listed in PROMISES with a check that the
#: promised thing still does not exist; when it does, the check fails and the page must be updated.
PROMISE = re.compile(r"later work|not (?:built|implemented|available|supported|wired up) yet|coming soon|"
                     r"comes? later|in a later (?:release|version|change)|will be (?:added|built|supported)|"
                     r"no API for it yet|for now|not yet (?:built|supported|possible)|\bTODO\b|roadmap",
                     re.IGNORECASE)


def _router_lacks(*paths: str) -> bool:
    from mallard._http.api import ROUTES

    return not {r.pattern for r in ROUTES} & set(paths)


#: (page, a fragment of the line) -> whether what the line says is missing is still missing.
PROMISES: dict[tuple[str, str], Callable[[], bool]] = {
    # Mallard Metrics v0.2's goals, revenue and property-values routes.
    ("http-api.md", "Not built yet"): lambda: _router_lacks("/api/stats/goals", "/api/stats/revenue",
                                                            "/api/stats/property-values"),
    # Erasing one user by the user_id pseudonym: no such method or route.
    ("privacy.md", "there is no API for it yet"):
        lambda: not hasattr(mallard.Mallard, "erase_user") and _router_lacks("/api/gdpr/erase-user"),
}


def _promise_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md")), *sorted((ROOT / "examples").rglob("README.md"))]


def test_pages_promise_only_what_is_missing() -> None:
    """A page that says something comes later is listed in PROMISES, whose check says it is still
    missing; once it exists, the check fails and the page must say it is built."""
    unlisted, kept = [], []
    for path in _promise_pages():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not PROMISE.search(line):
                continue
            keys = [key for key in PROMISES if key[0] == path.name and key[1] in line]
            if not keys:
                unlisted.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
            kept += [key for key in keys if not PROMISES[key]()]
    assert not unlisted, "promises of later work (built now? else add to PROMISES with a check): " + \
        "\n".join(unlisted)
    assert not kept, f"pages promise as missing what now exists: {kept}"


def test_promise_checks_match_a_line() -> None:
    """Every PROMISES entry still matches a line of its page (a stale entry would hide nothing)."""
    texts = {p.name: p.read_text(encoding="utf-8") for p in _promise_pages()}
    stale = [key for key in PROMISES if key[1] not in texts.get(key[0], "")]
    assert not stale, stale


def test_a_promise_of_later_work_is_caught(tmp_path: Path) -> None:
    """The promise pattern catches the phrasings issue 14 found ("come in later work")."""
    for text in ("The adapters come in later work.", "The dashboard is not built yet.",
                 "Coming soon: funnels.", "A server will be added in a later release."):
        assert PROMISE.search(text), text
    assert not PROMISE.search("a later pageview counts for the source that started its session")
