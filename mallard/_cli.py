"""The ``mallard`` command: operator tasks on a data directory.

A human adapter: it parses arguments, calls :class:`mallard.Mallard` or :class:`mallard.Queries` and
prints. ``mallard serve`` runs the HTTP API, tracking script and dashboard under uvicorn.

Every refusal (a bad argument, a bad setting, a :class:`MallardError`) is one line
``mallard: <message>`` on stderr and exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import _progress as progress
from ._doctor import doctor_parser
from ._errors import MallardError
from ._exporting import to_csv, to_json
from ._goal_commands import goal_parsers
from ._transfer_commands import cmd_export_file, export_options, import_parser


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in mallard's one-line form (exit status 2, as argparse's own)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"mallard: {message} (see `{self.prog} --help`)\n")


def _settings_args(p: argparse.ArgumentParser,
                   data_dir: str = "default: $MALLARD_DATA_DIR or ./mallard-data") -> None:
    p.add_argument("--data-dir", help=f"data directory ({data_dir})")
    p.add_argument("--config", help="TOML settings file (default: $MALLARD_CONFIG)")


def _serve_args(p: argparse.ArgumentParser, **data_dir: str) -> None:
    _settings_args(p, **data_dir)
    p.add_argument("--host", help="address to bind (default: host setting, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: port setting, 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.add_argument("--access-log", action="store_true", help="log every request (IPs included: off "
                                                             "by default for privacy)")


def _mallard(args: argparse.Namespace) -> Any:
    from ._app import Mallard
    from ._settings import Settings

    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    return Mallard(Settings.load(args.config, **overrides))


def _queries(args: argparse.Namespace) -> Any:
    import mallard

    from ._settings import Settings

    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    settings = Settings.load(args.config, **overrides)
    return mallard.open(settings.data_dir, timezone=settings.timezone,
                        session_window_minutes=settings.session_window_minutes)


def _range(p: argparse.ArgumentParser) -> None:
    p.add_argument("--period", default=None, help="day, 7d, 30d, 90d, 12mo, month, year, all")
    p.add_argument("--start-date", help="YYYY-MM-DD (with --end-date, inclusive)")
    p.add_argument("--end-date", help="YYYY-MM-DD")


def _dates(args: argparse.Namespace) -> None:
    if (args.start_date is None) != (args.end_date is None):
        raise MallardError("give both --start-date and --end-date (YYYY-MM-DD, inclusive), or --period.")


def cmd_stats(args: argparse.Namespace) -> int:
    _dates(args)
    q = _queries(args)
    print(json.dumps(q.main(args.site, period=args.period, start_date=args.start_date,
                            end_date=args.end_date).to_dict(), indent=2))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    _dates(args)
    if args.output:
        return cmd_export_file(args)
    if args.format == "parquet":
        raise MallardError("--format parquet writes a file: give --output PATH_OR_URI.")
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
        before = {q.file for q in m.store.quarantined()[1]}
        with progress.for_command(args) as bars:  # each bar closed before its line is printed
            compacted = m.compact(progress=bars)
        print(f"compacted {compacted} partition(s)", flush=True)
        with progress.for_command(args) as bars:
            built = m.build_sessions(budget_secs=math.inf, progress=bars)
        print(f"stored the sessions and rollups of {built} day(s)")
        for q in m.store.quarantined()[1]:
            if q.file not in before:
                print(f"quarantined {q.file}: {q.reason}")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    with _mallard(args) as m:
        if not m.settings.retention_days:
            print("retention_days is 0: nothing is deleted", file=sys.stderr)
            return 0
        print(f"deleted {m.apply_retention()} partition(s)")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    from ._queries.periods import parse_date

    start, end = parse_date(args.start_date, "--start-date"), parse_date(args.end_date, "--end-date")
    with _mallard(args) as m:
        result = m.erase(args.site, start, end)
        print(json.dumps({"status": "erased", "site_id": result.site_id,
                          "start_date": args.start_date, "end_date": args.end_date,
                          "buffered_events_deleted": result.buffered_events_deleted,
                          "parquet_partitions_deleted": result.parquet_partitions_deleted}))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from . import _drops as drops
    from ._settings import Settings, export_to_environ
    from .adapters._logs import banner, log_config
    from .adapters._serve import uvicorn_options

    overrides: dict[str, Any] = {k: v for k, v in (("data_dir", args.data_dir), ("host", args.host),
                                                   ("port", args.port), ("site_ids", args.site))
                                 if v is not None}
    settings = Settings.load(args.config, **overrides)  # fail here, not in every worker
    workers = max(1, args.workers)
    env: dict[str, Any] = {**overrides, "config": args.config}
    if workers > 1:  # rate limits count per process: share the configured rate among the workers
        for name in ("rate_limit_per_site", "rate_limit_per_ip"):
            rate = getattr(settings, name)
            if rate:
                env[name] = max(1, rate // workers)
    export_to_environ(env)
    base = f"http://{settings.host}:{settings.port}"
    print(banner(settings, f"mallard {_version()} serving {settings.data_dir} on {base}/ "
                           f"({workers} worker(s))\n  dashboard: {base}/\n"
                           f'  tracker:   <script defer data-domain="example.com" src="{base}/mallard.js">'
                           "</script>"
                           + "".join(f"\n  not stored: {rule}" for rule in drops.rules(settings))),
          file=sys.stderr, flush=True)
    options: dict[str, Any] = uvicorn_options(settings)
    logging = log_config(settings, args.log_level)
    if logging is not None:
        options["log_config"] = logging
    uvicorn.run("mallard.adapters.asgi:create_app", factory=True, host=settings.host, port=settings.port,
                workers=workers, proxy_headers=False, server_header=False, access_log=args.access_log,
                log_level=args.log_level, timeout_graceful_shutdown=int(settings.shutdown_timeout_secs),
                **options)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from ._demo import fill

    args.data_dir = args.data_dir or tempfile.mkdtemp(prefix="mallard-demo-")
    with _mallard(args) as m:
        done = fill(m, visitors=args.visitors, days=args.days)
    print(f"mallard demo: {done.events} events of {done.visitors} visitors of {done.site}, "
          f"{done.first:%Y-%m-%d} to {done.last:%Y-%m-%d}, in {args.data_dir} (delete it when done)",
          file=sys.stderr, flush=True)
    if args.no_serve:
        return 0
    args.site = None
    return cmd_serve(args)


def _version() -> str:
    from . import __version__

    return __version__


def _auth(args: argparse.Namespace) -> Any:
    from ._auth import Auth
    from ._privacy import load_secret
    from ._settings import Settings
    from ._sharedstate import shared_state
    from ._store import Store

    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    settings = Settings.load(args.config, **overrides)
    state = shared_state(settings, Store(settings.data_dir).state_dir)
    return Auth(state, settings, secret=load_secret(state, settings.secret))


def cmd_password(args: argparse.Namespace) -> int:
    import getpass

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("New admin password: ")
        if getpass.getpass("Repeat it: ") != password:
            print("mallard: the passwords differ; nothing changed", file=sys.stderr)
            return 2
    with _auth(args) as auth:
        auth.set_password(password)
    print("admin password set; every existing dashboard session is logged out")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    with _auth(args) as auth:
        if args.action == "create":
            key, record = auth.create_key(args.name, args.scope)
            print(json.dumps({"key": key, **record}, indent=2))
            print("store the key now: only its hash is kept", file=sys.stderr)
        elif args.action == "list":
            print(json.dumps(auth.list_keys(), indent=2))
        else:
            if not auth.revoke_key(args.key_hash):
                print(f"mallard: no key with hash {args.key_hash}", file=sys.stderr)
                return 2
            print("revoked")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mallard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the HTTP API, tracking script and dashboard (uvicorn)")
    _serve_args(p)
    p.add_argument("--site", action="append", metavar="SITE",
                   help="accept events for this site id only (repeatable; sets site_ids)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("demo", help="fill a throw-away data directory with generated traffic of "
                                    "demo.example and serve it (dashboard included)")
    _serve_args(p, data_dir="default: a new temporary directory")
    p.add_argument("--visitors", type=int, default=1500, help="generated visitors (default 1500)")
    p.add_argument("--days", type=int, default=30, help="days of traffic up to now (default 30)")
    p.add_argument("--no-serve", action="store_true", help="fill the directory and exit")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("password", help="set the admin password (logs every session out)")
    _settings_args(p)
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=cmd_password)
    p = sub.add_parser("keys", help="create, list or revoke API keys")
    keys = p.add_subparsers(dest="action", required=True)
    k = keys.add_parser("create", help="create a key (printed once)")
    _settings_args(k)
    k.add_argument("name")
    k.add_argument("--scope", choices=("ReadOnly", "Admin"), default="ReadOnly")
    k = keys.add_parser("list", help="list keys (hashes only)")
    _settings_args(k)
    k = keys.add_parser("revoke", help="revoke a key by its hash")
    _settings_args(k)
    k.add_argument("key_hash")
    p.set_defaults(func=cmd_keys)
    goal_parsers(sub, _settings_args)
    doctor_parser(sub, _settings_args)
    p = sub.add_parser("stats", help="headline figures of a site")
    _settings_args(p)
    p.add_argument("site")
    _range(p)
    p.set_defaults(func=cmd_stats)
    p = sub.add_parser("export", help="daily report or raw events as CSV or JSON on stdout, or to a "
                                      "Parquet, CSV or JSON-lines file")
    _settings_args(p)
    p.add_argument("site")
    _range(p)
    p.add_argument("--kind", choices=("daily", "raw"), default="daily")
    export_options(p)
    p.set_defaults(func=cmd_export)
    import_parser(sub, _settings_args)
    p = sub.add_parser("sites", help="site ids with stored events")
    _settings_args(p)
    p.set_defaults(func=cmd_sites)
    p = sub.add_parser("compact", help="merge small Parquet files and store the sessions of "
                                       "settled days")
    _settings_args(p)
    progress.options(p)
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
    except (MallardError, ValueError, OSError) as exc:  # OSError: e.g. a file that cannot be read
        print(f"mallard: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `mallard export … | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
