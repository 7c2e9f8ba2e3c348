"""``mallard export --output`` and ``mallard import``: events to and from Parquet, CSV and JSON-lines files,
on local disk or at a pyarrow filesystem URI (:mod:`mallard._transfer`), and Plausible's CSV export
(:mod:`mallard._plausible`), with progress bars on stderr when it is a terminal."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from . import _progress as progress
from ._errors import ConfigurationError, MallardError

__all__ = ["cmd_export_file", "cmd_import", "export_options", "import_parser"]


def _settings(args: argparse.Namespace) -> Any:
    from ._settings import Settings

    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    return Settings.load(args.config, **overrides)


def export_options(p: argparse.ArgumentParser) -> None:
    """The options of ``mallard export`` that write a file."""
    p.add_argument("--format", choices=("csv", "json", "parquet"), default=None,
                   help="csv (default on stdout), json, or parquet (with --output only); with --output, "
                        "the default is the file name's suffix")
    p.add_argument("--output", metavar="PATH_OR_URI",
                   help="write a file (local path, s3://bucket/key, or any pyarrow filesystem URI) "
                        "instead of stdout; --kind raw then holds every lake column")
    progress.options(p)


def cmd_export_file(args: argparse.Namespace) -> int:
    import pyarrow as pa

    from ._queries import Queries
    from ._store.objectstore import open_store
    from ._store.transfer import count_rows, export_batches
    from ._transfer import format_of, write_file

    settings = _settings(args)
    fmt = format_of(args.output, args.format)
    store = open_store(settings, read_only=True)
    with Queries(store, settings) as q:
        rng = q.date_range(args.site, args.period, args.start_date, args.end_date)
        with progress.for_command(args) as bars:
            if args.kind == "raw":
                lower, upper = rng.bounds()
                tables = export_batches(store, args.site, lower, upper)
                total = count_rows(store, args.site, lower, upper)
                done = write_file(tables, args.output, fmt, settings,
                                  progress=bars("export", total, "rows"))
            else:
                report = q.export(args.site, start_date=rng.start, end_date=rng.end, kind="daily")
                table = pa.Table.from_pylist(report.rows)
                done = write_file([table], args.output, fmt, settings,
                                  progress=bars("export", table.num_rows, "rows"))
    print(f"exported {done} row(s) of {args.site} ({rng.start} to {rng.end}) to {args.output}")
    return 0


def import_parser(sub: Any, settings_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``mallard import`` to ``sub``."""
    p = sub.add_parser("import", help="store events from a Parquet, CSV or JSON-lines file, or Plausible's "
                                      "CSV export (idempotent)")
    settings_args(p)
    p.add_argument("source", metavar="PATH_OR_URI",
                   help="the file (local path, s3://bucket/key, any pyarrow filesystem URI); with "
                        "--from plausible, the export's directory or ZIP archive")
    p.add_argument("--from", dest="origin", choices=("mallard", "plausible"), default="mallard",
                   help="mallard (default): a file of lake rows, as `mallard export --output` writes; "
                        "plausible: Plausible's CSV export")
    p.add_argument("--format", choices=("csv", "json", "parquet"), default=None,
                   help="the file's format (default: its suffix)")
    p.add_argument("--site", help="import this site's rows only; required with --from plausible (the "
                                  "site the history belongs to)")
    p.add_argument("--start-date", help="import rows from this date on (YYYY-MM-DD, with --end-date, "
                                        "inclusive, in the timezone setting)")
    p.add_argument("--end-date", help="YYYY-MM-DD")
    p.add_argument("--include-tracked-days", action="store_true",
                   help="with --from plausible, import the days on which mallard tracked events of the "
                        "site too (skipped by default: their figures would add up)")
    progress.options(p)
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from ._queries.model import check_site
    from ._queries.periods import DateRange, parse_date
    from ._store import Store
    from ._store.lake import to_table
    from ._store.transfer import import_batches
    from ._transfer import format_of, import_file

    if (args.start_date is None) != (args.end_date is None):
        raise MallardError("give both --start-date and --end-date (YYYY-MM-DD, inclusive), or neither.")
    settings = _settings(args)
    if settings.lake_url:
        raise ConfigurationError(f"lake_url is {settings.lake_url!r}: imports write to data_dir's lake; "
                                 "writing to object storage is not supported yet.")
    site = check_site(args.site) if args.site is not None else None
    rng = None
    if args.start_date is not None:
        rng = DateRange(parse_date(args.start_date, "--start-date"), parse_date(args.end_date, "--end-date"),
                        settings.timezone)
    store = Store(settings.data_dir, spool_fsync=settings.spool_fsync)
    notes: list[str] = []
    tracked: list[date] = []
    try:
        with progress.for_command(args) as bars:
            bounds = rng.bounds() if rng else None
            if args.origin == "plausible":
                from ._plausible import days_of, events, read_export, tracked_days

                if site is None:
                    raise MallardError("--from plausible needs --site: the site the history belongs to.")
                tables = read_export(args.source)
                first, last = (rng.start, rng.end) if rng else (None, None)
                days = [d for d in days_of(tables) if (not first or d >= first) and (not last or d <= last)]
                tracked = [] if args.include_tracked_days else tracked_days(store, site, days,
                                                                              settings.timezone)
                rows, notes = events(tables, site, settings.timezone, settings.session_window_minutes,
                                     first, last, skip=set(tracked))
                done = import_batches(store, [to_table(rows)], args.source, site=site, bounds=bounds,
                                      progress=bars)
            else:
                done = import_file(store, args.source, format_of(args.source, args.format), settings,
                                   site=site, bounds=bounds, progress=bars)
    finally:
        store.close()
    spans = _spans(tracked)
    if spans:
        print(f"mallard: skipped {len(tracked)} day(s) holding events mallard tracked for {site} "
              f"({', '.join(a if a == b else f'{a} to {b}' for a, b in spans)}): importing them would "
              "count those days twice; --include-tracked-days imports them anyway", file=sys.stderr)
    for note in notes[:20]:
        print(f"mallard: not exact: {note}", file=sys.stderr)
    if len(notes) > 20:
        print(f"mallard: not exact: … and {len(notes) - 20} more day(s)", file=sys.stderr)
    answer = {"status": "imported", "source": args.source, "rows": done.read, "stored": done.stored,
              "duplicates": done.duplicates, "erased": done.erased, "skipped": done.skipped}
    if args.origin == "plausible":
        answer["tracked_days_skipped"] = [list(span) for span in spans]
    print(json.dumps(answer))
    return 0


def _spans(days: list[date]) -> list[tuple[str, str]]:
    """Sorted ``days`` as runs of consecutive days (first, last), ISO dates."""
    spans: list[tuple[date, date]] = []
    for d in days:
        if spans and d - spans[-1][1] == timedelta(days=1):
            spans[-1] = (spans[-1][0], d)
        else:
            spans.append((d, d))
    return [(a.isoformat(), b.isoformat()) for a, b in spans]
