"""Plausible's CSV export (``imported_<table>_<YYYYMMDD>_<YYYYMMDD>.csv`` files, in a directory or the
ZIP archive Plausible hands out) turned into events that reproduce its daily figures.

Plausible exports daily aggregates, not events. For each day of ``imported_visitors`` this module
synthesises that many visitors, visits (sessions), pageviews, bounces (one-pageview sessions) and that total
visit duration, all inside the local day, so the day's visitors, visits, pageviews, bounce rate, visit
duration and views per visit are Plausible's exactly. The other tables label those sessions and
pageviews: each session table (sources, entry pages, browsers, operating systems, devices, locations)
gives its values to as many bounced and non-bounced sessions as its row says, so visits and bounces per
value are exact too when the table adds up to the day's totals (a Plausible export does); pages give their
pageviews to pageviews; custom events become events of as many visitors. What cannot be reproduced is
listed in docs/cli.md (``mallard import --from plausible``). The events are a pure function of the files,
the site, the time zone and the session window, so importing the same export twice stores them once.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import os
import re
import zipfile
from collections import Counter
from collections.abc import Collection, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pycountry

from ._errors import InvalidEventError
from ._events import Event, Row

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["TABLES", "days_of", "events", "read_export", "tracked_days"]

#: The columns mallard reads of each table (Plausible's CSV import format; other columns are ignored).
TABLES: Final = {
    "imported_visitors": ("visitors", "pageviews", "bounces", "visits", "visit_duration"),
    "imported_sources": ("source", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_content",
                         "utm_term", "visits", "bounces"),
    "imported_pages": ("hostname", "page", "pageviews"),
    "imported_entry_pages": ("entry_page", "entrances", "bounces"),
    "imported_exit_pages": ("exit_page", "exits"),
    "imported_custom_events": ("name", "link_url", "path", "visitors", "events"),
    "imported_locations": ("country", "region", "city", "visits", "bounces"),
    "imported_devices": ("device", "visits", "bounces"),
    "imported_browsers": ("browser", "browser_version", "visits", "bounces"),
    "imported_operating_systems": ("operating_system", "operating_system_version", "visits", "bounces"),
}
_NAME: Final = re.compile(r"(?:imported_)?([a-z_]+?)_(\d{8})_(\d{8})\.csv")
_COUNTS: Final = frozenset({"visitors", "pageviews", "bounces", "visits", "visit_duration", "entrances",
                            "exits", "events"})
_DEVICES: Final = {"Desktop": "desktop", "Laptop": "desktop", "Mobile": "mobile", "Tablet": "tablet"}
#: Seconds between two sessions of one synthetic visitor, beyond the session window.
_PAUSE: Final = 60

Table = list[dict[str, object]]


def _bad(message: str) -> InvalidEventError:
    return InvalidEventError(message + " Nothing was imported.", code="invalid_import")


def read_export(location: str) -> dict[str, Table]:
    """The rows of every table of the export at ``location`` (a directory or a ``.zip``), each row's
    ``date`` a :class:`date` and its counts integers; the rows outside the dates of a file's name are
    left out, as Plausible does."""
    files: list[tuple[str, bytes]] = []
    try:
        if zipfile.is_zipfile(location):
            with zipfile.ZipFile(location) as archive:
                files = [(os.path.basename(n), archive.read(n)) for n in archive.namelist()
                         if n.endswith(".csv") and not n.endswith("/")]
        elif os.path.isdir(location):
            for name in sorted(os.listdir(location)):
                if name.endswith(".csv"):
                    with open(os.path.join(location, name), "rb") as f:
                        files.append((name, f.read()))
        else:
            raise _bad(f"{location} is neither a directory nor a ZIP archive of Plausible's CSV export.")
    except (OSError, zipfile.BadZipFile) as exc:
        raise _bad(f"Cannot read {location}: {exc}.") from None
    tables: dict[str, Table] = {}
    for name, data in files:
        found = _NAME.fullmatch(name)
        table = f"imported_{found.group(1)}" if found else ""
        if found is None or table not in TABLES:
            raise _bad(f"{name}: not a table of Plausible's CSV export (expected imported_<table>_"
                       f"<YYYYMMDD>_<YYYYMMDD>.csv with a table among {', '.join(TABLES)}).")
        first, last = (_day(found.group(i), name, "its name") for i in (2, 3))
        tables.setdefault(table, []).extend(r for r in _rows(name, data, TABLES[table])
                                            if first <= r["date"] <= last)  # type: ignore[operator]
    if "imported_visitors" not in tables:
        raise _bad(f"{location} has no imported_visitors_<YYYYMMDD>_<YYYYMMDD>.csv: the daily totals "
                   "are needed.")
    return tables


def _day(text: str, name: str, where: str) -> date:
    try:
        return datetime.strptime(text, "%Y%m%d" if len(text) == 8 else "%Y-%m-%d").date()
    except ValueError:
        raise _bad(f"{name}: {where}: {text!r} is not a date.") from None


def _rows(name: str, data: bytes, columns: tuple[str, ...]) -> Iterator[dict[str, object]]:
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _bad(f"{name}: not UTF-8 CSV ({exc}).") from None
    missing = [c for c in ("date", *columns) if c not in header]
    if missing:
        raise _bad(f"{name}: the column {missing[0]!r} is missing (the header has "
                   f"{', '.join(header) or 'nothing'}).")
    for line, raw in enumerate(reader, 2):
        row: dict[str, object] = {"date": _day(raw["date"] or "", name, f"line {line}, column 'date'")}
        for column in columns:
            value = raw[column]
            if value is None:
                raise _bad(f"{name}: line {line}: fewer fields than the header names.")
            if column in _COUNTS:
                if not value.isdigit():
                    raise _bad(f"{name}: line {line}, column {column!r}: {value!r} is not a count (a "
                               "whole number, 0 or more).")
                row[column] = int(value)
            else:
                row[column] = value
        yield row


def _labels(rows: Table, key: tuple[str, ...], bounced: bool,
            count: str = "visits") -> list[tuple[object, ...]]:
    """The value of ``key`` of each bounced (or non-bounced) session the rows describe, in row order."""
    out: list[tuple[object, ...]] = []
    for r in rows:
        n = int(r["bounces"]) if bounced else int(r[count]) - int(r["bounces"])  # type: ignore[call-overload]
        out.extend([tuple(r[k] for k in key)] * max(n, 0))
    return out


def _by_day(tables: dict[str, Table]) -> dict[str, dict[date, Table]]:
    out: dict[str, dict[date, Table]] = {}
    for name, rows in tables.items():
        for r in rows:
            out.setdefault(name, {}).setdefault(r["date"], []).append(r)  # type: ignore[arg-type]
    return out


def events(tables: dict[str, Table], site: str, tz: str, window_minutes: int,
           first: date | None = None, last: date | None = None, *,
           skip: Collection[date] = ()) -> tuple[list[Row], list[str]]:
    """The events reproducing the export's days ``[first, last]`` (all when None) but ``skip`` for
    ``site``, in time zone ``tz``, and a note for each day where a figure could not be reproduced
    exactly."""
    days = _by_day(tables)
    rows: list[Row] = []
    notes: list[str] = []
    for day, totals in sorted(days["imported_visitors"].items()):
        if (first and day < first) or (last and day > last) or day in skip:
            continue
        if len(totals) != 1:
            raise _bad(f"imported_visitors: {day} has {len(totals)} rows; one per day is expected.")
        rows += _day_events(site, day, totals[0], {t: days.get(t, {}).get(day, []) for t in TABLES},
                            ZoneInfo(tz), window_minutes * 60, notes)
    return rows, notes


def _day_events(site: str, day: date, totals: dict[str, object], t: dict[str, Table], zone: ZoneInfo,
                window: int, notes: list[str]) -> list[Row]:
    visitors, visits, pageviews, bounces, duration = (int(totals[k]) for k in (  # type: ignore[call-overload]
        "visitors", "visits", "pageviews", "bounces", "visit_duration"))
    if visits == 0 and visitors == 0 and pageviews == 0:
        return []
    if not 0 < visitors <= visits <= pageviews:
        raise _bad(f"imported_visitors: {day}: {visitors} visitors, {visits} visits and {pageviews} "
                   "pageviews cannot be reproduced (mallard needs 0 < visitors <= visits <= pageviews).")
    if bounces > visits:
        raise _bad(f"imported_visitors: {day}: more bounces ({bounces}) than visits ({visits}).")
    if pageviews < 2 * visits - bounces:  # a session that did not bounce has 2 pageviews or more
        notes.append(f"{day}: bounce rate {100 * (2 * visits - pageviews) // visits}% instead of "
                     f"{100 * bounces // visits}% (too few pageviews for {visits - bounces} non-bounces)")
        bounces = 2 * visits - pageviews
    engaged = visits - bounces
    if engaged == 0 and duration:
        notes.append(f"{day}: visit duration 0 s instead of {duration // visits} s (every visit bounced)")
        duration = 0
    start = datetime.combine(day, time(), zone).astimezone(UTC).replace(tzinfo=None)
    length = int((datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
                  .replace(tzinfo=None) - start).total_seconds())
    extra = pageviews - bounces - 2 * engaged
    # (bounced, pageviews, seconds) of each session: the engaged ones first; session n is visitor n % V's
    sessions = [(False, 2 + extra // engaged + (i < extra % engaged), duration // engaged
                 + (i < duration % engaged)) for i in range(engaged)] + [(True, 1, 0)] * bounces
    begins = _layout(sessions, visitors, length, window, day)
    labels = {k: (_labels(t[k], key, False), _labels(t[k], key, True)) for k, key in (
        ("imported_sources", ("source", "referrer", "utm_source", "utm_medium", "utm_campaign",
                              "utm_content", "utm_term")),
        ("imported_browsers", ("browser", "browser_version")),
        ("imported_operating_systems", ("operating_system", "operating_system_version")),
        ("imported_devices", ("device",)), ("imported_locations", ("country", "region")))}
    entries = tuple([str(e[0]) for e in _labels(t["imported_entry_pages"], ("entry_page",), b, "entrances")]
                    for b in (False, True))
    left = Counter({str(r["page"]): int(r["pageviews"]) for r in t["imported_pages"]})  # type: ignore[call-overload]
    hosts = {str(r["page"]): str(r["hostname"]) or None for r in t["imported_pages"]}
    firsts = [entries[b][:n] for b, n in ((False, engaged), (True, bounces))]
    left.subtract(Counter(firsts[0] + firsts[1]))
    rest = iter([page for page, n in left.most_common() for _ in range(max(n, 0))])
    used = [0, 0]
    out: list[Row] = []
    visits_of: list[tuple[datetime, dict[str, tuple[object, ...] | None], str]] = []
    for n, (bounced, views, seconds) in enumerate(sessions):
        when = start + timedelta(seconds=begins[n])
        i = used[bounced]
        used[bounced] += 1
        pick = {k: (lists[bounced][i] if i < len(lists[bounced]) else None) for k, lists in labels.items()}
        vid = _visitor(site, day, n % visitors)
        for k in range(views):
            path = firsts[bounced][i] if k == 0 and i < len(firsts[bounced]) else next(rest, "(unknown)")
            at = when + timedelta(microseconds=(seconds * 1_000_000 * k) // (views - 1) if views > 1 else 0)
            out.append(_event(site, vid, at, "pageview", path, hosts.get(path), pick))
            if n < visitors and k == 0:
                visits_of.append((at, pick, path))
    out += _custom(site, day, t["imported_custom_events"], visits_of, hosts, notes)
    return out


def _visitor(site: str, day: date, n: int) -> str:
    return hashlib.sha256(f"plausible-import/{site}/{day}/{n}".encode()).hexdigest()


def days_of(tables: dict[str, Table]) -> list[date]:
    """The days of the export (those of ``imported_visitors``)."""
    return sorted({r["date"] for r in tables["imported_visitors"] if isinstance(r["date"], date)})


def tracked_days(store: Store, site: str, days: Collection[date], tz: str) -> list[date]:
    """Those of ``days`` (in time zone ``tz``) on which the lake holds events of ``site`` that no
    Plausible import made: mallard tracked them.

    An import's visitors of a day ``D`` are numbered from 0 (:func:`_visitor`), and every one of them has
    an event, so the ids an import left on ``D`` are those of visitors 0 to k - 1. A day with ``n``
    distinct visitor ids holds only imported events if and only if it holds visitor ``n - 1``'s.
    """
    if not days:
        return []
    zone = ZoneInfo(tz)
    lower, upper = (datetime.combine(d, time(), zone).astimezone(UTC).replace(tzinfo=None)
                    for d in (min(days), max(days) + timedelta(days=1)))
    with store.reading(site, lower.date(), upper.date()) as reader:
        src, params = reader.source("all")
        local = (f"SELECT timezone(?, timezone('UTC', timestamp))::DATE AS day, visitor_id FROM ({src}) "
                 "WHERE site_id = ? AND timestamp >= ? AND timestamp < ?")
        scope = [tz, *params, site, lower, upper]
        counts = reader.execute(f"SELECT day, count(DISTINCT visitor_id) AS n FROM ({local}) GROUP BY day",
                                scope).to_pylist()
        probes = [(c["day"], _visitor(site, c["day"], c["n"] - 1)) for c in counts if c["day"] in days]
        if not probes:
            return []
        reader.register("__mallard_probes", pa.table({"day": pa.array([d for d, _ in probes], pa.date32()),
                                                      "id": [i for _, i in probes]}))
        imported = reader.execute(f"SELECT DISTINCT p.day FROM __mallard_probes p JOIN ({local}) e "
                                  "ON e.day = p.day AND e.visitor_id = p.id", scope).column("day")
    return sorted({d for d, _ in probes} - set(imported.to_pylist()))


def _layout(sessions: list[tuple[bool, int, int]], visitors: int, length: int, window: int,
            day: date) -> list[int]:
    """Seconds into the day at which each session starts: visitor v's sessions one after the other,
    a session window and a minute apart, from a start spread over the day, all inside it."""
    begins = [0] * len(sessions)
    for v in range(visitors):
        mine = range(v, len(sessions), visitors)
        needed = sum(sessions[n][2] for n in mine) + (len(mine) - 1) * (window + _PAUSE)
        if needed >= length:
            raise _bad(f"imported_visitors: {day}: {len(sessions)} visits of {visitors} visitors "
                       f"lasting {sum(s[2] for s in sessions)} s in all do not fit in the day (a visitor's "
                       "visits are a session window apart).")
        at = min(v * length // visitors, length - 1 - needed)
        for n in mine:
            begins[n] = at
            at += sessions[n][2] + window + _PAUSE
    return begins


@functools.lru_cache(maxsize=4096)
def _region(code: str) -> str | None:
    found = pycountry.subdivisions.get(code=code) if code else None  # type: ignore[no-untyped-call]
    return str(found.name) if found is not None else None


def _event(site: str, vid: str, at: datetime, name: str, path: str, host: str | None,
           pick: dict[str, tuple[object, ...] | None], props: str | None = None) -> Row:
    src = pick.get("imported_sources") or ("",) * 7
    browser = pick.get("imported_browsers") or ("", "")
    system = pick.get("imported_operating_systems") or ("", "")
    device = pick.get("imported_devices") or ("",)
    place = pick.get("imported_locations") or ("", "")
    text = [str(x) or None for x in (*src, *browser, *system)]
    return tuple(Event(
        site, vid, at, name, path, host, text[1], text[0] or "(direct)", text[2], text[3], text[4],
        text[5], text[6], text[7], text[8], text[9], text[10], _DEVICES.get(str(device[0])), None,
        str(place[0]) or None, _region(str(place[1])), None, props))


def _custom(site: str, day: date, rows: Table,
            visits: list[tuple[datetime, dict[str, tuple[object, ...] | None], str]],
            hosts: dict[str, str | None], notes: list[str]) -> list[Row]:
    """Each row's events, spread over as many visitors, at the start of their first visit (with its
    attributes and entry page: the visit's duration and bounce stay as they were)."""
    out: list[Row] = []
    for r in rows:
        name, count, people = str(r["name"]), int(r["events"]), int(r["visitors"])  # type: ignore[call-overload]
        if name in ("pageview", "engagement") or not count:
            continue
        if not 0 < people <= min(count, len(visits)):
            kept = min(max(people, 1), count, len(visits))
            notes.append(f"{day}: {name!r} by {kept} visitor(s) instead of {people}")
            people = kept
        meta = {k: r[c] for k, c in (("url", "link_url"), ("path", "path")) if r[c]}
        props = orjson.dumps(meta, option=orjson.OPT_SORT_KEYS).decode() if meta else None
        for i in range(count):
            at, pick, path = visits[i % people]
            out.append(_event(site, _visitor(site, day, i % people), at, name, path, hosts.get(path),
                              pick, props))
    return out
