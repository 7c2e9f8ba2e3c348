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
    from ._transfer_api import export_events

    with progress.for_command(args) as bars:
        done = export_events(args.output, args.site, period=args.period, start_date=args.start_date,
                             end_date=args.end_date, format=args.format, kind=args.kind,
                             settings=_settings(args), progress=bars)
    print(f"exported {done.rows} row(s) of {args.site} ({done.start_date} to {done.end_date}) to "
          f"{args.output}")
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
    from ._transfer_api import import_events

    with progress.for_command(args) as bars:
        result = import_events(args.source, origin=args.origin, format=args.format, site=args.site,
                               start_date=args.start_date, end_date=args.end_date,
                               include_tracked_days=args.include_tracked_days, settings=_settings(args),
                               progress=bars)
    spans = _spans(list(result.tracked_days_skipped))
    if spans:
        print(f"mallard: skipped {len(result.tracked_days_skipped)} day(s) holding events mallard tracked "
              f"for {args.site} ({', '.join(a if a == b else f'{a} to {b}' for a, b in spans)}): importing "
              "them would count those days twice; --include-tracked-days imports them anyway",
              file=sys.stderr)
    notes = result.notes
    for note in notes[:20]:
        print(f"mallard: not exact: {note}", file=sys.stderr)
    if len(notes) > 20:
        print(f"mallard: not exact: … and {len(notes) - 20} more day(s)", file=sys.stderr)
    done = result.imported
    answer: dict[str, Any] = {"status": "imported", "source": args.source, "rows": done.read,
                              "stored": done.stored, "duplicates": done.duplicates, "erased": done.erased,
                              "skipped": done.skipped}
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
