"""``mallard export --output`` and ``mallard import``: events to and from Parquet, CSV and JSON-lines files,
on local disk or at a pyarrow filesystem URI (:mod:`mallard._transfer`), and Plausible's CSV export
(:mod:`mallard._plausible`), with progress bars on stderr when it is a terminal."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ._errors import ConfigurationError, MallardError

__all__ = ["cmd_export_file", "cmd_import", "export_options", "import_parser"]


def _settings(args: argparse.Namespace) -> Any:
    from ._settings import Settings

    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    return Settings.load(args.config, **overrides)


@contextmanager
def _bars(args: argparse.Namespace, desc: str) -> Iterator[Callable[[int], Callable[[int], None]]]:
    """A factory of progress bars (``start(total)`` returns the callback counting rows done), drawn on
    stderr unless it is not a terminal or ``--quiet`` is given."""
    from tqdm import tqdm

    bars: list[Any] = []

    def start(total: int) -> Callable[[int], None]:
        bar = tqdm(total=total, desc=desc, unit=" rows", unit_scale=True, file=sys.stderr,
                   disable=args.quiet or not sys.stderr.isatty(), dynamic_ncols=True)
        bars.append(bar)

        def done(n: int) -> None:
            bar.update(n)

        return done

    try:
        yield start
    finally:
        for bar in bars:
            bar.close()


def export_options(p: argparse.ArgumentParser) -> None:
    """The options of ``mallard export`` that write a file."""
    p.add_argument("--format", choices=("csv", "json", "parquet"), default=None,
                   help="csv (default on stdout), json, or parquet (with --output only); with --output, "
                        "the default is the file name's suffix")
    p.add_argument("--output", metavar="PATH_OR_URI",
                   help="write a file (local path, s3://bucket/key, or any pyarrow filesystem URI) "
                        "instead of stdout; --kind raw then holds every lake column")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


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
        with _bars(args, "export") as bars:
            if args.kind == "raw":
                lower, upper = rng.bounds()
                tables = export_batches(store, args.site, lower, upper)
                done = write_file(tables, args.output, fmt, settings,
                                  progress=bars(count_rows(store, args.site, lower, upper)))
            else:
                report = q.export(args.site, start_date=rng.start, end_date=rng.end, kind="daily")
                table = pa.Table.from_pylist(report.rows)
                done = write_file([table], args.output, fmt, settings, progress=bars(table.num_rows))
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from ._queries.model import check_site
    from ._queries.periods import DateRange, parse_date
    from ._store import Store
    from ._store.lake import to_table
    from ._transfer import format_of, import_table, read_events

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
    try:
        with _bars(args, "import") as bars:
            if args.origin == "plausible":
                from ._plausible import events, read_export

                if site is None:
                    raise MallardError("--from plausible needs --site: the site the history belongs to.")
                rows, notes = events(read_export(args.source), site, settings.timezone,
                                     settings.session_window_minutes,
                                     rng.start if rng else None, rng.end if rng else None)
                table = to_table(rows)
            else:
                table = read_events(args.source, format_of(args.source, args.format), settings)
            done = import_table(store, table, args.source, site=site,
                                bounds=rng.bounds() if rng else None, progress=bars)
    finally:
        store.close()
    for note in notes[:20]:
        print(f"mallard: not exact: {note}", file=sys.stderr)
    if len(notes) > 20:
        print(f"mallard: not exact: … and {len(notes) - 20} more day(s)", file=sys.stderr)
    print(json.dumps({"status": "imported", "source": args.source, "rows": done.read,
                      "stored": done.imported.stored, "duplicates": done.imported.duplicates,
                      "erased": done.imported.erased, "skipped": done.skipped}))
    return 0
