"""Rewrite the generated blocks of the Markdown docs from the code, so the docs cannot drift.

Each block sits between ``<!-- <name>:start -->`` and ``<!-- <name>:end -->`` in one page:

=============  ==================  =====================================================================
block          page                generated from
=============  ==================  =====================================================================
settings       settings.md         ``mallard.Settings.describe()`` (plus field types and section comments)
metrics        queries.md          ``mallard._queries.registry.METRICS``
dimensions     queries.md          ``mallard._queries.registry.DIMENSIONS`` and ``TIME_DIMENSIONS``
breakdowns     queries.md          ``mallard._queries.registry.BREAKDOWNS`` (and ``ALIASES``)
schema         storage.md          ``mallard._events.COLUMNS`` and the lake's Arrow schema
api            python-api.md       ``mallard.__all__`` (signatures and first docstring lines)
openapi        http-reference.md   the OpenAPI document of the HTTP API (``mallard._http.openapi``)
=============  ==================  =====================================================================

Usage::

    python scripts/gen_docs.py            # rewrite stale blocks in place
    python scripts/gen_docs.py --check    # exit 1 (and name them) if any block is stale

Text outside the markers is hand-written and never touched.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import typing
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
if str(ROOT) not in sys.path:  # run from a checkout without installing it
    sys.path.insert(0, str(ROOT))

import mallard  # noqa: E402
from mallard import _events as events  # noqa: E402
from mallard._http.api import ROUTES  # noqa: E402
from mallard._http.openapi import document  # noqa: E402
from mallard._queries import registry  # noqa: E402
from mallard._store import lake  # noqa: E402

#: Settings that nothing reads yet, and the part of mallard that will read them. tests/test_docs.py fails
#: when one of them starts being read in mallard/, so this list (and settings.md) cannot go stale.
RESERVED: dict[str, str] = {}

#: The first columns of the lake are Mallard Metrics' schema; later ones were appended by mallard.
REFERENCE_COLUMNS = 25

#: Public names whose full field list lives on another page.
SEE_ALSO: dict[str, str] = {
    "Settings": "[settings.md](settings.md)",
    "Event": "[storage.md](storage.md#parquet-schema)",
}
MAX_INLINE_PARAMS = 10


# -- helpers ---------------------------------------------------------------------------------------
def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: object) -> str:
    text = str(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _first_line(obj: object) -> str:
    """The first paragraph of ``obj``'s docstring, in Markdown ("" when it has none)."""
    doc = inspect.getdoc(obj) or ""
    name = getattr(obj, "__name__", "")
    if inspect.isclass(obj) and doc.startswith(f"{name}("):  # a dataclass without a docstring
        return ""
    paragraph = doc.strip().split("\n\n", 1)[0]
    text = " ".join(line.strip() for line in paragraph.splitlines())
    text = re.sub(r":(?:class|meth|func|attr|mod|data|exc):`~?([^`]+)`", r"`\1`", text)  # Sphinx roles
    return re.sub(r"``([^`]+)``", r"`\1`", text)  # reST literals


def _default(value: object) -> str:
    """A platform-independent, address-free rendering of a default value."""
    if value is dataclasses.MISSING:
        return ""
    if isinstance(value, Path):
        return f"Path({str(value.as_posix())!r})"
    if callable(value) and hasattr(value, "__name__"):
        return str(value.__name__)
    text = repr(value)
    text = re.sub(r"(Posix|Windows)Path\(", "Path(", text)
    return re.sub(r" at 0x[0-9a-f]+", "", text)


# -- settings --------------------------------------------------------------------------------------
def _setting_sections() -> dict[str, str]:
    """Field name -> section title, from the ``# -- title ----`` comments of the Settings class."""
    source = inspect.getsource(mallard.Settings)
    section = "General"
    out: dict[str, str] = {}
    for line in source.splitlines():
        heading = re.match(r"\s*# -- (.+?) -{3,}\s*$", line)
        if heading:
            title = heading.group(1)
            section = title[0].upper() + title[1:]
            continue
        field = re.match(r"    (\w+): [^=]+=", line)
        if field:
            out[field.group(1)] = section
    return out


def _setting_type(hint: object, annotation: str) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(_code(a) for a in typing.get_args(hint))
    return _code(annotation)


def render_settings() -> str:
    sections = _setting_sections()
    hints = typing.get_type_hints(mallard.Settings)
    annotations = mallard.Settings.__annotations__
    defaults = {f.name: f.default for f in dataclasses.fields(mallard.Settings)}
    lines: list[str] = []
    current = None
    for name, envs, _default_repr, help_text in mallard.Settings.describe():
        section = sections.get(name, "General")
        if section != current:
            lines += [f"## {section}", ""]
            current = section
        lines += [f"### {name}", "", help_text, ""]
        lines.append("- Environment: " + ", ".join(_code(e.strip()) for e in envs.split(",")))
        lines.append(f"- Type: {_setting_type(hints[name], str(annotations[name]))}")
        lines.append(f"- Default: {_code(_default(defaults[name]))}")
        if name in RESERVED:
            lines.append(f"- **Not used yet**: read by {RESERVED[name]}, which is not built yet.")
        lines.append("")
    return "\n".join(lines).rstrip("\n")


# -- registries ------------------------------------------------------------------------------------
def render_metrics() -> str:
    lines = ["| Metric | Computed over | Empty bucket | Definition |", "|---|---|---|---|"]
    for m in registry.METRICS.values():
        lines.append(f"| {_code(m.name)} | {m.relation} | {_code(_default(m.empty))} | {_cell(m.doc)} |")
    return "\n".join(lines)


def _slugs_by_dimension() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for slug, dim in registry.BREAKDOWNS.items():
        out.setdefault(dim, []).append(slug)
    return out


def render_dimensions() -> str:
    slugs = _slugs_by_dimension()
    lines = ["| Dimension | Level | Lake column | Breakdown slug | Description |", "|---|---|---|---|---|"]
    for d in registry.DIMENSIONS.values():
        column = _code(d.column) if d.column else f"— (session's {_code(d.session_column)})"
        slug = ", ".join(_code(s) for s in slugs.get(d.name, [])) or "—"
        lines.append(f"| {_code(d.name)} | {d.level} | {column} | {slug} | {_cell(d.doc)} |")
    lines.append("| `event:props:<key>` | event | `props` (JSON) | — | Value of custom property `<key>` |")
    lines += ["", "Time dimensions: " + ", ".join(_code(t) for t in registry.TIME_DIMENSIONS) + "."]
    return "\n".join(lines)


def render_breakdowns() -> str:
    aliases: dict[str, list[str]] = {}
    for alias, slug in getattr(registry, "ALIASES", {}).items():
        aliases.setdefault(slug, []).append(alias)
    lines = ["| Slug | Singular alias | Dimension |", "|---|---|---|"]
    for slug, dim in registry.BREAKDOWNS.items():
        alias = ", ".join(_code(a) for a in aliases.get(slug, [])) or "—"
        lines.append(f"| {_code(slug)} | {alias} | {_code(dim)} |")
    return "\n".join(lines)


# -- storage ---------------------------------------------------------------------------------------
def render_schema() -> str:
    arrow = {f.name: f.type for f in lake.SCHEMA}
    lines = [f"Schema version {events.SCHEMA_VERSION}.", "",
             "| # | Column | DuckDB type | Parquet (Arrow) type | Nullable | Origin | Description |",
             "|---|---|---|---|---|---|---|"]
    for i, c in enumerate(events.COLUMNS, start=1):
        origin = "Mallard Metrics" if i <= REFERENCE_COLUMNS else "mallard"
        lines.append(f"| {i} | {_code(c.name)} | {_code(c.sql_type)} | {_code(arrow[c.name])} | "
                     f"{'yes' if c.nullable else 'no'} | {origin} | {_cell(c.doc)} |")
    return "\n".join(lines)


# -- public API ------------------------------------------------------------------------------------
def _signature(obj: Callable[..., object], *, drop_first: bool = False) -> str:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    params = list(sig.parameters.values())
    if drop_first and params:
        params = params[1:]
    parts: list[str] = []
    seen_kw_only = False
    for i, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not seen_kw_only:
            parts.append("*")
        if p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD, p.VAR_POSITIONAL):
            seen_kw_only = True
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        text = prefix + p.name
        if p.annotation is not p.empty:
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            text += f" = {_default(p.default)}" if p.annotation is not p.empty else f"={_default(p.default)}"
        parts.append(text)
        if p.kind is p.POSITIONAL_ONLY and (i + 1 == len(params)
                                            or params[i + 1].kind is not p.POSITIONAL_ONLY):
            parts.append("/")
    out = f"({', '.join(parts)})"
    if sig.return_annotation is not sig.empty and sig.return_annotation not in ("None", None):
        out += f" -> {_annotation(sig.return_annotation)}"
    return out


def _annotation(annotation: object) -> str:
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type):
        return annotation.__name__
    return re.sub(r"\btyping\.", "", str(annotation))


def _members(cls: type) -> Iterable[tuple[str, str, str]]:
    """(name, signature or kind, one-line doc) of the public methods and properties of ``cls``."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("mallard"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(value, property):
                yield name, "", _first_line(value)
            elif isinstance(value, classmethod | staticmethod):
                func = value.__func__
                kind = "classmethod" if isinstance(value, classmethod) else "staticmethod"
                yield name, f"{_signature(func, drop_first=kind == 'classmethod')} ({kind})", \
                    _first_line(func)
            elif inspect.isfunction(value):
                target = getattr(value, "__wrapped__", value)
                yield name, _signature(target, drop_first=True), _first_line(value)


def render_api() -> str:
    lines: list[str] = []
    for name in mallard.__all__:
        obj = getattr(mallard, name)
        lines += [f"### {name}", ""]
        if inspect.isclass(obj):
            try:
                count = len(inspect.signature(obj).parameters)
            except (TypeError, ValueError):
                count = 0
            if count > MAX_INLINE_PARAMS:
                head = f"class {name}(...)  # {count} fields"
            else:
                head = f"class {name}{_signature(obj)}"
            bases = [b.__name__ for b in obj.__bases__ if b is not object and not b.__name__.startswith("_")]
            lines += ["```python", head, "```", ""]
            if bases:
                lines += [f"Subclass of {', '.join(_code(b) for b in bases)}.", ""]
        else:
            lines += ["```python", f"def {name}{_signature(obj)}", "```", ""]
        summary = _first_line(obj)
        if summary:
            lines += [summary, ""]
        if name in SEE_ALSO:
            lines += [f"Fields: see {SEE_ALSO[name]}.", ""]
        if inspect.isclass(obj):
            members = list(_members(obj))
            for member, sig, doc in members:
                text = f"- {_code(member + sig) if sig else _code(member) + ' (property)'}"
                lines.append(f"{text}: {doc}" if doc else text)
            if members:
                lines.append("")
    return "\n".join(lines).rstrip("\n")


# -- HTTP API --------------------------------------------------------------------------------------
#: The OpenAPI tags, in the order of the page, with their headings.
TAGS = {"ingestion": "Ingestion", "stats": "Stats", "sites": "Sites, goals, segments, funnels, shared links",
        "auth": "Authentication", "admin": "Admin", "ops": "Operations",
        "dashboard": "Tracking script and dashboard"}


def _schema_text(schema: dict[str, typing.Any]) -> str:
    """A short rendering of a parameter's JSON schema: its type, and its values or bounds."""
    kind = str(schema.get("type", "any"))
    if "enum" in schema:
        return "one of " + ", ".join(_code(v) for v in schema["enum"] if v != "")
    words = (("minimum", "≥"), ("maximum", "≤"), ("minLength", "length ≥"), ("maxLength", "length ≤"))
    bounds = [f"{word} {schema[key]}" for key, word in words if key in schema]
    extra = f" ({schema['format']})" if "format" in schema else ""
    return _code(kind) + extra + (", " + ", ".join(bounds) if bounds else "")


def render_openapi() -> str:
    spec = document(ROUTES)
    by_tag: dict[str, list[tuple[str, str, dict[str, typing.Any]]]] = {}
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            by_tag.setdefault(op["tags"][0], []).append((method.upper(), path, op))
    unknown = sorted(set(by_tag) - set(TAGS))
    if unknown:
        raise ValueError(f"OpenAPI tags without a heading in gen_docs.TAGS: {unknown}")
    lines = [f"OpenAPI {spec['openapi']}, {sum(len(v) for v in by_tag.values())} operations.", ""]
    for tag, title in TAGS.items():
        lines += [f"## {title}", ""]
        for method, path, op in by_tag.get(tag, []):
            lines += [f"### `{method} {path}`", "", _cell(op["summary"]), ""]
            lines.append(f"- Access: {op.get('description', 'public')}")
            body = op.get("requestBody")
            if body:
                for media_type, content in body["content"].items():
                    what = body.get("description") or content["schema"].get("description", "")
                    lines.append(f"- Body ({_code(media_type)}{', required' if body['required'] else ''})"
                                 + (f": {_cell(what)}" if what else ""))
            answers = []
            for status, answer in op["responses"].items():
                media = ", ".join(_code(m) for m in answer.get("content", {}))
                answers.append(f"`{status}`" + (f" {media}" if media and int(status) < 400 else ""))
            errors = any(int(status) >= 400 for status in op["responses"])
            lines.append("- Answers: " + ", ".join(answers)
                         + (' (an error is `{"error": …, "code": …}`)' if errors else ""))
            lines.append("")
            if op.get("parameters"):
                lines += ["| Parameter | In | Required | Schema | Description |", "|---|---|---|---|---|"]
                for p in op["parameters"]:
                    lines.append(f"| {_code(p['name'])} | {p['in']} | {'yes' if p['required'] else 'no'} | "
                                 f"{_cell(_schema_text(p['schema']))} | {_cell(p.get('description', ''))} |")
                lines.append("")
    return "\n".join(lines).rstrip("\n")


# -- driver ----------------------------------------------------------------------------------------
BLOCKS: dict[str, tuple[str, Callable[[], str]]] = {
    "settings": ("settings.md", render_settings),
    "metrics": ("queries.md", render_metrics),
    "dimensions": ("queries.md", render_dimensions),
    "breakdowns": ("queries.md", render_breakdowns),
    "schema": ("storage.md", render_schema),
    "api": ("python-api.md", render_api),
    "openapi": ("http-reference.md", render_openapi),
}


class MarkerError(Exception):
    pass


def replace_block(text: str, name: str, content: str) -> str:
    """``text`` with the body between the ``name`` markers replaced by ``content``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise MarkerError(f"needs exactly one {start} followed by one {end}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{content}\n{end}{tail}"


def generate(docs: Path) -> tuple[dict[Path, str], list[str]]:
    """New text of every page holding a block, and the problems found (missing markers)."""
    pages: dict[Path, str] = {}
    problems: list[str] = []
    for name, (page, render) in BLOCKS.items():
        path = docs / page
        if path not in pages:
            try:
                pages[path] = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                problems.append(f"{path}: missing (holds the '{name}' block)")
                continue
        try:
            pages[path] = replace_block(pages[path], name, render())
        except MarkerError as exc:
            problems.append(f"{path}: block '{name}' {exc}")
    return pages, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any generated block is stale")
    parser.add_argument("--docs-dir", type=Path, default=DOCS, help="directory of the Markdown pages")
    args = parser.parse_args(argv)
    pages, problems = generate(args.docs_dir)
    stale = [path for path, text in pages.items() if path.read_text(encoding="utf-8") != text]
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.check:
        for path in stale:
            print(f"{path}: generated block(s) are stale; run python scripts/gen_docs.py", file=sys.stderr)
        return 1 if stale or problems else 0
    for path in stale:
        path.write_text(pages[path], encoding="utf-8")
        print(f"rewrote {path}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
