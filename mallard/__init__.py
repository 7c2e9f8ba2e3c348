"""mallard: privacy-first, cookieless web analytics as an importable library (DuckDB + Parquet).

**Usage**::

    import mallard

    m = mallard.Mallard(data_dir="var/analytics")
    m.track("pageview", site="example.com", url="https://example.com/", ip=ip, user_agent=ua)
    m.queries.breakdown("example.com", "sources", period="7d").df()

    q = mallard.open("var/analytics")          # read-only, for notebooks
"""

import os

from ._app import Mallard as Mallard
from ._auth import Auth as Auth
from ._buffer import BufferStats as BufferStats
from ._buffer import EventBuffer as EventBuffer
from ._errors import ConfigurationError as ConfigurationError
from ._errors import InvalidEventError as InvalidEventError
from ._errors import InvalidQueryError as InvalidQueryError
from ._errors import MallardError as MallardError
from ._errors import QueryTimeoutError as QueryTimeoutError
from ._errors import StorageError as StorageError
from ._events import Event as Event
from ._funnels import SavedFunnel as SavedFunnel
from ._funnels import SavedFunnels as SavedFunnels
from ._goals import Goal as Goal
from ._goals import Goals as Goals
from ._goals import Segment as Segment
from ._ingestion import Stats as Stats
from ._payload import RawEvent as RawEvent
from ._privacy import Salts as Salts
from ._progress import Progress as Progress
from ._queries import Queries as Queries
from ._queries.access import Access as Access
from ._queries.filters import Condition as Condition
from ._queries.filters import FilterInput as FilterInput
from ._queries.model import Query as Query
from ._queries.periods import DateRange as DateRange
from ._queries.results import MainStats as MainStats
from ._queries.results import QueryResult as QueryResult
from ._queries.results import Record as Record
from ._queries.results import Report as Report
from ._queries.results import Result as Result
from ._queries.results import Table as Table
from ._queries.revenue import Revenue as Revenue
from ._settings import Settings as Settings
from ._settings import aws_endpoint_url as _aws_endpoint_url
from ._shares import SharedLink as SharedLink
from ._shares import SharedLinks as SharedLinks
from ._store import ErasureResult as ErasureResult
from ._store import Store as Store
from ._store.objectstore import open_store as _open_store
from ._store.quarantine import QuarantinedFile as QuarantinedFile
from ._store.s3 import is_object_url as _is_object_url
from ._telemetry import ProcessCounters as ProcessCounters
from ._tracker import ClientContext as ClientContext
from ._tracker import Outcome as Outcome
from ._tracker import Tracker as Tracker
from ._transfer_api import ExportResult as ExportResult
from ._transfer_api import ImportResult as ImportResult
from ._transfer_api import export_events as export_events
from ._transfer_api import import_events as import_events

__version__ = "0.1.0.dev0"


def open(data_dir: str | os.PathLike[str], **options: object) -> Queries:
    """Read-only :class:`Queries` over an existing data directory, or a lake on S3-compatible object
    storage (``"s3://bucket/prefix"``, with the ``s3_*`` settings); starts no ingestion.

    Safe while other processes ingest into the same directory. ``options`` are settings that affect
    queries (``timezone``, ``session_window_minutes``, ``duckdb_threads``, ``s3_endpoint_url``, …).
    """
    where = {"lake_url": data_dir} if _is_object_url(data_dir) else {"data_dir": data_dir}
    settings = Settings(**where, **options)  # type: ignore[arg-type]
    if settings.lake_url and "s3_endpoint_url" not in options:  # the one AWS variable pyarrow ignores
        settings = settings.replace(s3_endpoint_url=_aws_endpoint_url())
    return Queries(_open_store(settings, read_only=True), settings)


__all__ = [
    "Access",
    "Auth",
    "BufferStats",
    "ClientContext",
    "Condition",
    "ConfigurationError",
    "DateRange",
    "ErasureResult",
    "Event",
    "EventBuffer",
    "export_events",
    "ExportResult",
    "FilterInput",
    "Goal",
    "Goals",
    "import_events",
    "ImportResult",
    "InvalidEventError",
    "InvalidQueryError",
    "MainStats",
    "Mallard",
    "MallardError",
    "open",
    "Outcome",
    "ProcessCounters",
    "Progress",
    "QuarantinedFile",
    "Queries",
    "Query",
    "QueryResult",
    "QueryTimeoutError",
    "RawEvent",
    "Record",
    "Report",
    "Result",
    "Revenue",
    "Salts",
    "SavedFunnel",
    "SavedFunnels",
    "Segment",
    "Settings",
    "SharedLink",
    "SharedLinks",
    "Stats",
    "StorageError",
    "Store",
    "Table",
    "Tracker",
]
