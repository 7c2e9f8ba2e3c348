"""``mallard.export_events`` and ``mallard.import_events``: what ``mallard export --output`` and
``mallard import`` do, from Python (a notebook, a scheduled job), with the same progress bars
(:mod:`mallard._progress`: tqdm.auto, a widget in a notebook).

Each opens the lake of ``settings`` (or ``Settings.load(**options)``, as :class:`mallard.Mallard` does)
for the call and closes it: an export reads (it runs beside writers, as ``mallard.open()`` does), an
import writes through the lake's write path (:mod:`mallard._transfer`, :mod:`mallard._store.transfer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from ._errors import ConfigurationError, MallardError
from ._progress import Progress, chosen
from ._settings import Settings
from ._store.transfer import Imported

__all__ = ["ExportResult", "ImportResult", "export_events", "import_events"]


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_events` wrote: ``rows`` of the days ``start_date``..``end_date``."""

    rows: int
    start_date: date
    end_date: date


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_events` did: the rows' counts (:class:`~mallard._store.transfer.Imported`)
    and, for Plausible's export, the days left out because mallard tracked the site on them
    (``tracked_days_skipped``) and the days whose figures are not exact (``notes``)."""

    imported: Imported
    tracked_days_skipped: Sequence[date] = ()
    notes: Sequence[str] = field(default_factory=tuple)


def export_events(output: str, site: str, *, period: str | None = None,
                  start_date: str | date | None = None, end_date: str | date | None = None,
                  format: str | None = None, kind: Literal["daily", "raw"] = "daily",
                  settings: Settings | None = None, progress: bool | Progress | None = None,
                  **options: Any) -> ExportResult:
    """Write ``site``'s events of a range (``period``, or ``start_date`` and ``end_date``) to ``output``
    (a local path, ``s3://bucket/key``, any pyarrow filesystem URI) as Parquet, CSV or JSON lines
    (``format``, default: the name's suffix): ``kind="daily"`` the daily report, ``"raw"`` one row per
    event with every lake column (what :func:`import_events` stores back). Returns the rows written and
    the range's days. ``progress``: True a bar, False none, None a bar when someone watches (a
    notebook, a terminal), or a :class:`~mallard.Progress` callback."""
    import pyarrow as pa

    from ._queries import Queries
    from ._store.objectstore import open_store
    from ._store.transfer import count_rows, export_batches
    from ._transfer import format_of, write_file

    if kind not in ("daily", "raw"):
        raise MallardError(f"kind is 'daily' or 'raw', not {kind!r}.")
    settings = Settings.given(settings, **options)
    fmt = format_of(output, format)
    store = open_store(settings, read_only=True)
    with Queries(store, settings) as q, chosen(progress) as bars:
        rng = q.date_range(site, period, start_date, end_date)
        if kind == "raw":
            lower, upper = rng.bounds()
            done = write_file(export_batches(store, site, lower, upper), output, fmt, settings,
                              progress=bars("export", count_rows(store, site, lower, upper), "rows"))
        else:
            table = pa.Table.from_pylist(q.export(site, start_date=rng.start, end_date=rng.end,
                                                  kind="daily").rows)
            done = write_file([table], output, fmt, settings, progress=bars("export", table.num_rows, "rows"))
    return ExportResult(done, rng.start, rng.end)


def import_events(source: str, *, origin: Literal["mallard", "plausible"] = "mallard",
                  format: str | None = None, site: str | None = None, start_date: str | date | None = None,
                  end_date: str | date | None = None, include_tracked_days: bool = False,
                  settings: Settings | None = None, progress: bool | Progress | None = None,
                  **options: Any) -> ImportResult:
    """Store the rows of ``source``: a Parquet, CSV or JSON-lines file of lake rows (``origin="mallard"``,
    as :func:`export_events` with ``kind="raw"`` writes them; ``format`` default: the name's suffix), or
    Plausible's CSV export (``origin="plausible"``: its directory or ZIP archive; ``site`` required),
    optionally only ``site``'s rows and those dated ``start_date``..``end_date`` (inclusive, in the
    timezone setting). Every row is checked before any is stored; rows the lake holds already are not
    stored again. Plausible's days on which mallard tracked the site are left out unless
    ``include_tracked_days``. ``progress`` as for :func:`export_events`."""
    from ._queries.model import check_site
    from ._queries.periods import DateRange, parse_date
    from ._store import Store
    from ._store.lake import to_table
    from ._store.transfer import import_batches
    from ._transfer import format_of, import_file

    if (start_date is None) != (end_date is None):
        raise MallardError("give both start_date and end_date (YYYY-MM-DD, inclusive), or neither.")
    if origin not in ("mallard", "plausible"):
        raise MallardError(f"origin is 'mallard' or 'plausible', not {origin!r}.")
    settings = Settings.given(settings, **options)
    if settings.lake_url:
        raise ConfigurationError(f"lake_url is {settings.lake_url!r}: imports write to data_dir's lake; "
                                 "writing to object storage is not supported yet.")
    checked = check_site(site) if site is not None else None
    rng = None
    if start_date is not None and end_date is not None:
        rng = DateRange(parse_date(str(start_date), "start_date"), parse_date(str(end_date), "end_date"),
                        settings.timezone)
    bounds = rng.bounds() if rng else None
    store = Store(settings.data_dir, spool_fsync=settings.spool_fsync)
    try:
        with chosen(progress) as bars:
            if origin == "mallard":
                return ImportResult(import_file(store, source, format_of(source, format), settings,
                                                site=checked, bounds=bounds, progress=bars))
            from ._plausible import days_of, events, read_export, tracked_days

            if checked is None:
                raise MallardError("importing Plausible's export needs the site its history belongs to.")
            tables = read_export(source)
            first, last = (rng.start, rng.end) if rng else (None, None)
            days = [d for d in days_of(tables) if (not first or d >= first) and (not last or d <= last)]
            tracked = [] if include_tracked_days else tracked_days(store, checked, days, settings.timezone)
            rows, notes = events(tables, checked, settings.timezone, settings.session_window_minutes,
                                 first, last, skip=set(tracked))
            done = import_batches(store, [to_table(rows)], source, site=checked, bounds=bounds,
                                  progress=bars)
            return ImportResult(done, tuple(tracked), tuple(notes))
    finally:
        store.close()
