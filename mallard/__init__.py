"""mallard: privacy-first, cookieless web analytics as an importable library (DuckDB + Parquet).

**Usage**::

    import mallard

    m = mallard.Mallard(data_dir="var/analytics")
    m.track("pageview", site="example.com", url="https://example.com/", ip=ip, user_agent=ua)
    m.queries.breakdown("example.com", "sources", period="7d").df()

    q = mallard.open("var/analytics")          # read-only, for notebooks
"""

import os

from .app import Mallard as Mallard
from .auth import Auth as Auth
from .buffer import BufferStats as BufferStats
from .buffer import EventBuffer as EventBuffer
from .errors import ConfigurationError as ConfigurationError
from .errors import InvalidEventError as InvalidEventError
from .errors import InvalidQueryError as InvalidQueryError
from .errors import MallardError as MallardError
from .errors import QueryTimeoutError as QueryTimeoutError
from .errors import StorageError as StorageError
from .events import Event as Event
from .funnels import SavedFunnel as SavedFunnel
from .funnels import SavedFunnels as SavedFunnels
from .goals import Goal as Goal
from .goals import Goals as Goals
from .goals import Segment as Segment
from .ingestion import Stats as Stats
from .payload import RawEvent as RawEvent
from .privacy import Salts as Salts
from .queries import Queries as Queries
from .queries.access import Access as Access
from .queries.filters import Condition as Condition
from .queries.filters import FilterInput as FilterInput
from .queries.model import Query as Query
from .queries.periods import DateRange as DateRange
from .queries.results import MainStats as MainStats
from .queries.results import QueryResult as QueryResult
from .queries.results import Record as Record
from .queries.results import Report as Report
from .queries.results import Result as Result
from .queries.results import Table as Table
from .queries.revenue import Revenue as Revenue
from .settings import Settings as Settings
from .shares import SharedLink as SharedLink
from .shares import SharedLinks as SharedLinks
from .store import ErasureResult as ErasureResult
from .store import Store as Store
from .store.quarantine import QuarantinedFile as QuarantinedFile
from .telemetry import ProcessCounters as ProcessCounters
from .tracker import ClientContext as ClientContext
from .tracker import Outcome as Outcome
from .tracker import Tracker as Tracker

__version__ = "0.1.0.dev0"


def open(data_dir: str | os.PathLike[str], **options: object) -> Queries:
    """Read-only :class:`Queries` over an existing data directory; starts no ingestion.

    Safe while other processes ingest into the same directory. ``options`` are settings that affect
    queries (``timezone``, ``session_window_minutes``, ``duckdb_threads``, …).
    """
    settings = Settings(data_dir=data_dir, **options)  # type: ignore[arg-type]
    store = Store(settings.data_dir, read_only=True, duckdb_threads=settings.duckdb_threads,
                  duckdb_memory_limit=settings.duckdb_memory_limit)
    return Queries(store, settings)


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
    "FilterInput",
    "Goal",
    "Goals",
    "InvalidEventError",
    "InvalidQueryError",
    "MainStats",
    "Mallard",
    "MallardError",
    "open",
    "Outcome",
    "ProcessCounters",
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
