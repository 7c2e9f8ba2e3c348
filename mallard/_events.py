"""The event record and the public column schema of the lake.

An :class:`Event` is what the ingestion pipeline produces and what one Parquet row holds. The first 25
columns are Mallard Metrics' schema, in its order; later columns are only ever appended, and are
nullable, so files written by older versions (or other tools) stay readable. The raw IP address and
User-Agent have no field here: they cannot reach the lake by construction.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, NamedTuple, TypeAlias

from ._errors import ConfigurationError, InvalidEventError

SCHEMA_VERSION: Final = 3


class Column(NamedTuple):
    name: str
    sql_type: str
    nullable: bool
    doc: str


COLUMNS: Final[tuple[Column, ...]] = (
    Column("site_id", "VARCHAR", False, "Site identifier (the `d` of the payload)"),
    Column("visitor_id", "VARCHAR", False, "Keyed hash of site, IP and User-Agent under a daily "
           "random salt (64 hex chars)"),
    Column("timestamp", "TIMESTAMP", False, "Event time, UTC, microseconds"),
    Column("event_name", "VARCHAR", False, "`pageview` or a custom event name"),
    Column("pathname", "VARCHAR", False, "URL path, trailing slash removed (root stays `/`), PII "
           "redacted"),
    Column("hostname", "VARCHAR", True, "Host of the page URL"),
    Column("referrer", "VARCHAR", True, "Referrer URL as sent, PII redacted (query removed under "
           "strip_referrer_query)"),
    Column("referrer_source", "VARCHAR", True, "Named source (Google, ChatGPT, …), the "
           "referrer host, or `(direct)`; without a referrer (version 3), the source that the page "
           "URL's `utm_source`, `source` or `ref` tag names"),
    Column("utm_source", "VARCHAR", True, "utm_source of the page URL, percent-decoded"),
    Column("utm_medium", "VARCHAR", True, "utm_medium"),
    Column("utm_campaign", "VARCHAR", True, "utm_campaign"),
    Column("utm_content", "VARCHAR", True, "utm_content"),
    Column("utm_term", "VARCHAR", True, "utm_term"),
    Column("browser", "VARCHAR", True, "Browser family"),
    Column("browser_version", "VARCHAR", True, "Browser version (major.minor)"),
    Column("os", "VARCHAR", True, "Operating system family"),
    Column("os_version", "VARCHAR", True, "Operating system version"),
    Column("device_type", "VARCHAR", True, "desktop, mobile or tablet"),
    Column("screen_size", "VARCHAR", True, "Viewport width in CSS pixels, e.g. `1920`"),
    Column("country_code", "VARCHAR", True, "ISO 3166-1 alpha-2 country"),
    Column("region", "VARCHAR", True, "Region / state name"),
    Column("city", "VARCHAR", True, "City name"),
    Column("props", "VARCHAR", True, "Custom properties, a canonical JSON object, PII redacted"),
    Column("revenue_amount", "DECIMAL(12,2)", True, "Revenue amount"),
    Column("revenue_currency", "VARCHAR", True, "ISO 4217 currency, upper case"),
    # -- added by mallard (schema version 2): nullable, appended ----------------------------------
    Column("user_id", "VARCHAR", True, "Keyed pseudonym of a host-supplied user id (stable "
           "across days)"),
    Column("visitor_id_prev", "VARCHAR", True, "Visitor id under the previous salt, set only "
           "during the first session window after a salt change (joins midnight-crossing "
           "sessions)"),
    # -- added by mallard (schema version 3): nullable, appended ----------------------------------
    Column("click_id", "VARCHAR", True, "Which ad click-id parameter the page URL had (`gclid` or "
           "`msclkid`), never its value; NULL without one or in files written before version 3"),
    Column("channel", "VARCHAR", True, "Acquisition channel (Organic Search, Paid Social, AI "
           "Assistants, …) from the source, UTM tags and click id; NULL in files written before "
           "version 3, where queries compute it"),
    Column("scroll_depth", "SMALLINT", True, "On an `engagement` row: the deepest scroll of the page "
           "view, percent 0-100 (NULL: not reported)"),
    Column("engagement_ms", "BIGINT", True, "On an `engagement` row: milliseconds the page was "
           "visible and engaged since the previous report (NULL: not reported)"),
    Column("interactive", "BOOLEAN", True, "`false` for a custom event sent as non-interactive "
           "(Plausible's `i: false`); NULL otherwise"),
)

COLUMN_NAMES: Final[tuple[str, ...]] = tuple(c.name for c in COLUMNS)


class Event(NamedTuple):
    """One stored event: a row of the lake, in column order."""

    site_id: str
    visitor_id: str
    timestamp: datetime
    event_name: str
    pathname: str
    hostname: str | None = None
    referrer: str | None = None
    referrer_source: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    utm_term: str | None = None
    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    device_type: str | None = None
    screen_size: str | None = None
    country_code: str | None = None
    region: str | None = None
    city: str | None = None
    props: str | None = None
    revenue_amount: Decimal | None = None
    revenue_currency: str | None = None
    user_id: str | None = None
    visitor_id_prev: str | None = None
    click_id: str | None = None
    channel: str | None = None
    scroll_depth: int | None = None
    engagement_ms: int | None = None
    interactive: bool | None = None


#: An event as the buffer holds it: a plain tuple in :class:`Event`'s field order (an Event is one).
#: Instances of a tuple *subclass* such as Event stay tracked by the garbage collector, each visited
#: field by field in every full collection; a plain tuple of strings, numbers and datetimes is
#: untracked at its first collection. Buffered events would otherwise make the host's collections slow.
Row: TypeAlias = tuple[Any, ...]
SITE_ID: Final = Event._fields.index("site_id")
#: The name of Plausible's engagement events: not events of their own, but reports on the page view they
#: follow (scroll depth, engaged time). Analyses read them only for ``scroll_depth`` and ``time_on_page``.
ENGAGEMENT: Final = "engagement"
TIMESTAMP: Final = Event._fields.index("timestamp")


assert Event._fields == COLUMN_NAMES

# The lake names a site's directory "site_id=<id>" with ':' written "%3A"; a directory name has at most
# 255 bytes (NAME_MAX), so an id may have at most 247 characters, a ':' counting as 3.
MAX_SITE_ID: Final = 247
SITE_ID_PATTERN: Final = r"[A-Za-z0-9._:-]+"  # with a length of 1..MAX_SITE_ID
_SITE_ID = re.compile(SITE_ID_PATTERN)


def validate_site_id(site_id: object, *, setting: str | None = None) -> str:
    """Return ``site_id`` if it is a valid site id, else raise.

    A site id is 1–247 characters of ``A-Z a-z 0-9 . - _ :`` (a ``:`` counting as 3) and not only dots: it
    names a directory, ``site_id=<id>`` with ``:`` written ``%3A``, of at most 255 bytes.

    Raises:
        InvalidEventError: (or ConfigurationError when ``setting`` names a setting) with the rule.
    """
    problem = None
    if not isinstance(site_id, str) or site_id == "":
        problem = "site_id must not be empty"
    elif len(site_id) + 2 * site_id.count(":") > MAX_SITE_ID:
        problem = (f"site_id must be at most {MAX_SITE_ID} characters, a ':' counting as 3 (it names a "
                   "directory)")
    elif not _SITE_ID.fullmatch(site_id):
        problem = "site_id may only contain alphanumeric characters, '.', '-', '_', ':'"
    elif site_id.strip(".") == "":
        problem = "site_id must contain a character other than '.'"
    if problem is None:
        return site_id  # type: ignore[return-value]
    if setting is not None:
        raise ConfigurationError(f"{setting}: {problem} (got {site_id!r}).")
    raise InvalidEventError(problem, code="invalid_site_id")
