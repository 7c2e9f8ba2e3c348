"""The ``mallard`` command: operator tasks on a data directory.

A human adapter: it parses arguments, calls :class:`mallard.Mallard` or :class:`mallard.Queries` and
prints. ``mallard serve`` arrives with the HTTP layer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import date
from typing import Any

from .errors import MallardError
from .exporting import to_csv, to_json


def _settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="data directory (default: $MALLARD_DATA_DIR or ./mallard-data)")
    p.add_argument("--config", help="TOML settings file (default: $MALLARD_CONFIG)")


def _mallard(args: argparse.Namespace) -> Any:
    from .analytics import Mallard
    from .settings import Settings

    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    return Mallard(Settings.load(args.config, **overrides))


def _queries(args: argparse.Namespace) -> Any:
    import mallard

    from .settings import Settings

    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    settings = Settings.load(args.config, **overrides)
    return mallard.open(settings.data_dir, timezone=settings.timezone,
                        session_window_minutes=settings.session_window_minutes)


def _range(p: argparse.ArgumentParser) -> None:
    p.add_argument("--period", default=None, help="day, 7d, 30d, 90d, 12mo, month, year, all")
    p.add_argument("--start-date", help="YYYY-MM-DD (with --end-date, inclusive)")
    p.add_argument("--end-date", help="YYYY-MM-DD")


def cmd_stats(args: argparse.Namespace) -> int:
    q = _queries(args)
    print(json.dumps(q.main(args.site, period=args.period, start_date=args.start_date,
                            end_date=args.end_date).to_dict(), indent=2))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    q = _queries(args)
    table = q.export(args.site, period=args.period, start_date=args.start_date,
                     end_date=args.end_date, kind=args.kind)
    if args.format == "json":
        sys.stdout.write(to_json(table.rows).decode() + "\n")
    else:
        sys.stdout.write(to_csv(table.columns, table.rows))
    return 0


def cmd_sites(args: argparse.Namespace) -> int:
    for site in _queries(args).sites():
        print(site)
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    with _mallard(args) as m:
        print(f"compacted {m.compact()} partition(s)")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    with _mallard(args) as m:
        if not m.settings.retention_days:
            print("retention_days is 0: nothing is deleted", file=sys.stderr)
            return 0
        print(f"deleted {m.apply_retention()} partition(s)")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    with _mallard(args) as m:
        result = m.erase(args.site, date.fromisoformat(args.start_date),
                         date.fromisoformat(args.end_date))
        print(json.dumps({"status": "erased", "site_id": result.site_id,
                          "start_date": args.start_date, "end_date": args.end_date,
                          "buffered_events_deleted": result.buffered_events_deleted,
                          "parquet_partitions_deleted": result.parquet_partitions_deleted}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mallard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stats", help="headline figures of a site")
    _settings_args(p)
    p.add_argument("site")
    _range(p)
    p.set_defaults(func=cmd_stats)
    p = sub.add_parser("export", help="daily report or raw events as CSV or JSON on stdout")
    _settings_args(p)
    p.add_argument("site")
    _range(p)
    p.add_argument("--kind", choices=("daily", "raw"), default="daily")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("sites", help="site ids with stored events")
    _settings_args(p)
    p.set_defaults(func=cmd_sites)
    p = sub.add_parser("compact", help="merge small Parquet files")
    _settings_args(p)
    p.set_defaults(func=cmd_compact)
    p = sub.add_parser("retention", help="delete partitions older than retention_days")
    _settings_args(p)
    p.set_defaults(func=cmd_retention)
    p = sub.add_parser("erase", help="delete a site's events between two dates (inclusive)")
    _settings_args(p)
    p.add_argument("site")
    p.add_argument("--start-date", required=True)
    p.add_argument("--end-date", required=True)
    p.set_defaults(func=cmd_erase)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (MallardError, ValueError) as exc:
        print(f"mallard: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `mallard export … | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
