"""The ``mallard goals`` and ``mallard segments`` commands: a site's goals, reporting currency and saved
segments in ``goals.json`` of the shared state (:mod:`mallard._goals`, :mod:`mallard._sharedstate`),
from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ._errors import MallardError

__all__ = ["cmd_goals", "cmd_segments", "goal_parsers"]


def _goals(args: argparse.Namespace) -> Any:
    from ._goals import Goals
    from ._queries.goals import check_segment_filters
    from ._settings import Settings
    from ._sharedstate import shared_state
    from ._store import Store

    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    settings = Settings.load(args.config, **overrides)
    # a local data directory must exist already; on object storage, data_dir holds no state
    local = (settings.data_dir / "state" if settings.lake_url
             else Store(settings.data_dir, read_only=True).state_dir)
    return Goals(shared_state(settings, local), check_filters=check_segment_filters)


def cmd_goals(args: argparse.Namespace) -> int:
    from ._queries.model import check_site

    goals = _goals(args)
    site = check_site(args.site)
    if args.action == "add":
        goal = goals.add(site, event_name=args.event, page_path=args.page, display_name=args.name,
                         currency=args.currency)
        print(json.dumps(goal.to_json(), indent=2))
    elif args.action == "list":
        print(json.dumps([g.to_json() for g in goals.list(site)], indent=2))
    elif args.action == "currency":
        if args.clear or args.code:
            goals.set_currency(site, None if args.clear else args.code)
        print(json.dumps({"site_id": site, "currency": goals.currency(site)}))
    else:
        return _removed(goals.remove(args.id, site), f"site {site} has no goal {args.id}")
    return 0


def _removed(found: bool, missing: str) -> int:
    if not found:
        print(f"mallard: {missing}", file=sys.stderr)
        return 2
    print("removed")
    return 0


def cmd_segments(args: argparse.Namespace) -> int:
    from ._queries.model import check_site

    goals = _goals(args)
    site = check_site(args.site)
    if args.action == "add":
        try:
            filters = json.loads(args.filters)
        except ValueError:
            raise MallardError("FILTERS must be a JSON list of v2 filters, e.g. "
                               '\'[["is", "visit:country", ["DE"]]]\'.') from None
        print(json.dumps(goals.add_segment(site, args.name, filters).to_json(), indent=2))
    elif args.action == "list":
        print(json.dumps([s.to_json() for s in goals.segments(site)], indent=2))
    else:
        return _removed(goals.remove_segment(args.id, site), f"site {site} has no segment {args.id}")
    return 0


def goal_parsers(sub: Any, settings_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``goals`` and ``segments`` commands to ``sub`` (``settings_args`` adds the options every
    command has)."""
    def action(parent: Any, name: str, help_text: str) -> Any:
        q = parent.add_parser(name, help=help_text)
        settings_args(q)
        q.add_argument("site")
        return q

    p = sub.add_parser("goals", help="add, list or remove a site's goals; its reporting currency")
    actions = p.add_subparsers(dest="action", required=True)
    a = action(actions, "add", "find or create a goal (a custom event or a page path)")
    kind = a.add_mutually_exclusive_group(required=True)
    kind.add_argument("--event", help="custom event name")
    kind.add_argument("--page", help="page path; * matches any characters, e.g. /blog/*")
    a.add_argument("--name", help="display name (default: the event name, or 'Visit <path>')")
    a.add_argument("--currency", help="ISO 4217 currency of the event's revenue, e.g. EUR")
    action(actions, "list", "the site's goals as JSON")
    action(actions, "remove", "delete a goal by its id").add_argument("id", type=int)
    c = action(actions, "currency", "show or set the site's reporting currency")
    c.add_argument("code", nargs="?", help="ISO 4217 code, e.g. EUR")
    c.add_argument("--clear", action="store_true", help="forget the reporting currency")
    p.set_defaults(func=cmd_goals)
    p = sub.add_parser("segments", help="add, list or remove a site's saved segments")
    actions = p.add_subparsers(dest="action", required=True)
    a = action(actions, "add", "save a segment: a name and a JSON list of v2 filters")
    a.add_argument("name")
    a.add_argument("filters", help='e.g. \'[["is", "visit:country", ["DE"]]]\'')
    action(actions, "list", "the site's segments as JSON")
    action(actions, "remove", "delete a segment by its id").add_argument("id", type=int)
    p.set_defaults(func=cmd_segments)
