"""The single definition of every metric and dimension.

A dimension is *event*-level (a property of each event: page, hostname, event name, custom property) or
*visit*-level (a property of the session: source, referrer, UTM tags, entry and exit page, and the client
attributes browser/OS/device/location, taken from the session's first event). Event metrics aggregate
event rows; session metrics aggregate sessions (see sessions.py). Expressions here are identifiers and
SQL built from identifiers only, never user input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from .._errors import InvalidQueryError
from .sql import Sql
from .vocabulary import PLACE, Words, country_words

Level = Literal["event", "visit"]
Relation = Literal["events", "sessions", "engagement"]
#: ``fraction``: a share from 0 to 1 in Python and Mallard Metrics' JSON, in percent (0-100) in the
#: Plausible-shaped v2 body (``QueryResult.to_dict()``). ``percent``: 0-100 everywhere.
Unit = Literal["count", "fraction", "seconds", "ratio", "amount", "percent"]


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    expr: str  # aggregate over the relation below
    relation: Relation
    doc: str
    unit: Unit
    empty: int | float | None = 0  # value of an empty bucket


# Event metrics run over rows with columns of the lake; session metrics over sessions.py's columns.
METRICS: Final[Mapping[str, Metric]] = {m.name: m for m in (
    Metric("visitors", "count(DISTINCT visitor_id)", "events",
           "Unique visitors (daily visitor ids; over several days, visitor-days)", "count"),
    Metric("pageviews", "count(*) FILTER (WHERE event_name = 'pageview')", "events",
           "Pageview events", "count"),
    Metric("events", "count(*)", "events", "All events, pageviews included", "count"),
    Metric("views_per_visitor",
           "coalesce(count(*) FILTER (WHERE event_name = 'pageview') / "
           "nullif(count(DISTINCT visitor_id), 0), 0)", "events", "Pageviews per visitor", "ratio"),
    Metric("total_revenue", "sum(revenue_amount)", "events",
           "Sum of revenue amounts in their one currency (a Revenue; None when the row mixes "
           "currencies: they are never converted)", "amount", empty=None),
    Metric("average_revenue", "avg(revenue_amount)", "events",
           "Mean revenue amount of the events with revenue, in their one currency (as total_revenue)",
           "amount", empty=None),
    Metric("conversion_rate", "count(DISTINCT visitor_id)", "events",
           "Visitors of the result as a share of all visitors in scope, ignoring event name and "
           "property filters", "fraction", empty=0.0),
    Metric("group_conversion_rate", "count(DISTINCT visitor_id)", "events",
           "Visitors of the row as a share of the visitors of the row's group (its dimensions other "
           "than event:goal), ignoring goal filters", "fraction", empty=0.0),
    Metric("percentage", "count(DISTINCT visitor_id)", "events",
           "Visitors of the row as a share of all the query's visitors (its filters applied; needs a "
           "dimension)", "fraction", empty=0.0),
    Metric("visits", "count(*)", "sessions",
           "Sessions (runs of events split by an inactivity gap of session_window_minutes)", "count"),
    Metric("bounce_rate", "coalesce(avg((pageviews = 1)::INTEGER), 0)", "sessions",
           "Share of sessions with exactly one pageview", "fraction", empty=0.0),
    Metric("visit_duration", "coalesce(avg(duration_s), 0)", "sessions",
           "Mean session length in seconds (last event − first event)", "seconds", empty=0.0),
    Metric("views_per_visit", "coalesce(avg(pageviews), 0)", "sessions",
           "Pageviews per session", "ratio", empty=0.0),
    # Engagement metrics run over one row per visit of the engagement reports (engagement.py: ``sd``,
    # the deepest scroll reported in the visit, ``ms``, its engaged milliseconds). TRICKY: round_even,
    # as Plausible's ClickHouse rounds floats (half to even).
    Metric("scroll_depth", "round_even(avg(sd), 0)::INTEGER", "engagement",
           "Mean over visits of the deepest scroll reported, percent (Plausible's engagement events; "
           "needs event:page)", "percent", empty=None),
    Metric("time_on_page", "round_even(coalesce(sum(ms), 0) / 1000.0 / nullif(count(*), 0), 0)::INTEGER",
           "engagement", "Engaged seconds reported ÷ visits that reported any (Plausible's engagement "
           "events; needs event:page)", "seconds", empty=None),
)}


#: The lake columns a goal's predicate reads (queries/goals.py: an event name, or a pageview's path).
GOAL_PREDICATE_COLUMNS: Final = ("event_name", "pathname")


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    column: str | None  # lake column (event level); None for entry/exit page and properties
    level: Level
    doc: str
    session_column: str | None = None  # column of the sessions relation for visit dimensions
    prop_key: str | None = None  # for event:props:<key>
    words: Words | None = None  # how the stored values are shown (vocabulary.py); None: as stored
    # event:goal bound to a site's goals (queries/goals.py): (display name, predicate on an event)
    goals: tuple[tuple[str, Sql], ...] | None = None

    def event_expr(self) -> Sql:
        if self.goals is not None:
            return Sql(GOAL_COLUMN)
        if self.name == "event:goal":
            raise InvalidQueryError("event:goal is only available in queries of a site's goals "
                                    "(Queries.query, POST /api/v2/query).", code="invalid_dimension")
        if self.prop_key is not None:
            return self._shown(Sql("json_extract_string(props, ?)", (_json_path(self.prop_key),)))
        if self.column is None:
            raise InvalidQueryError(f"{self.name} is a property of visits, not of single events.",
                                    code="invalid_dimension")
        return self._shown(Sql(self.column), self.words.also if self.words else ())

    def visit_expr(self) -> Sql:
        return self._shown(Sql(self.visit_column()), tuple(f"s_{c}" for c in self.words.also)
                           if self.words else ())

    def lake_columns(self) -> tuple[str, ...]:
        """The lake columns the dimension's value is computed from (its own, and those its words read;
        for event:goal bound to goals, those the goals' predicates read: queries/goals.py)."""
        if self.goals is not None:
            return GOAL_PREDICATE_COLUMNS
        if self.column is None:
            return ()
        return (self.column, *(self.words.also if self.words else ()))

    def visit_column(self) -> str:
        """The column of the sessions relation holding the stored value."""
        return self.session_column or f"s_{self.column}"

    def _shown(self, stored: Sql, also: tuple[str, ...] = ()) -> Sql:
        return stored if self.words is None else self.words.label(stored, also)


def _json_path(key: str) -> str:
    return '$."' + key + '"'


GOAL_COLUMN: Final = "goal"  # the goal an event matched (one row per goal), see builder.py
#: Filters only: ``["is", "segment", [id]]`` stands for a saved segment's filters (queries/goals.py).
SEGMENT: Final = Dimension("segment", None, "visit", "A saved segment (filters only)")

_VISIT_COLUMNS: Final = ("referrer_source", "referrer", "utm_source", "utm_medium", "utm_campaign",
                         "utm_content", "utm_term", "browser", "browser_version", "os", "os_version",
                         "device_type", "screen_size", "country_code", "region", "city")

DIMENSIONS: Final[Mapping[str, Dimension]] = {d.name: d for d in (
    Dimension("event:page", "pathname", "event", "Page path"),
    Dimension("event:hostname", "hostname", "event", "Host of the page URL"),
    Dimension("event:name", "event_name", "event", "Event name (pageview or a custom event)"),
    Dimension("event:goal", None, "event", "Goal (configured per site): one row per goal an event "
              "completed"),
    Dimension("visit:entry_page", None, "visit", "First page of the session",
              session_column="entry_page"),
    Dimension("visit:exit_page", None, "visit", "Last page of the session",
              session_column="exit_page"),
    Dimension("visit:entry_page_hostname", None, "visit", "Host of the session's first page",
              session_column="entry_page_hostname"),
    Dimension("visit:exit_page_hostname", None, "visit", "Host of the session's last page",
              session_column="exit_page_hostname"),
    Dimension("visit:source", "referrer_source", "visit", "Source of the session"),
    Dimension("visit:channel", "channel", "visit", "Acquisition channel of the session (Organic "
              "Search, Paid Social, AI Assistants, …; computed from source, UTM tags and click id)"),
    Dimension("visit:referrer", "referrer", "visit", "Referrer URL of the session"),
    Dimension("visit:utm_source", "utm_source", "visit", "utm_source of the session"),
    Dimension("visit:utm_medium", "utm_medium", "visit", "utm_medium of the session"),
    Dimension("visit:utm_campaign", "utm_campaign", "visit", "utm_campaign of the session"),
    Dimension("visit:utm_content", "utm_content", "visit", "utm_content of the session"),
    Dimension("visit:utm_term", "utm_term", "visit", "utm_term of the session"),
    Dimension("visit:browser", "browser", "visit", "Browser"),
    Dimension("visit:browser_version", "browser_version", "visit", "Browser version"),
    Dimension("visit:os", "os", "visit", "Operating system"),
    Dimension("visit:os_version", "os_version", "visit", "Operating system version"),
    Dimension("visit:device", "device_type", "visit", "desktop, mobile or tablet"),
    Dimension("visit:screen", "screen_size", "visit", "Viewport width"),
    Dimension("visit:country", "country_code", "visit", "Country (ISO code)"),
    Dimension("visit:region", "region", "visit", "Region"),
    Dimension("visit:city", "city", "visit", "City"),
    Dimension("visit:country_name", "country_code", "visit", "Country name (ISO 3166-1)",
              words=country_words()),
    Dimension("visit:region_name", "region", "visit", "Region name", words=PLACE),
    Dimension("visit:city_name", "city", "visit", "City name", words=PLACE),
)}

# Source attributes that differ between the events of one session: for these, event metrics use the
# session's value (attribution), not the event's own.
ATTRIBUTION_COLUMNS: Final = frozenset({"referrer_source", "referrer", "utm_source", "utm_medium",
                                        "utm_campaign", "utm_content", "utm_term", "channel"})

# Reference breakdown names (Mallard Metrics v0.2 slugs) and short aliases.
BREAKDOWNS: Final[Mapping[str, str]] = {
    "pages": "event:page", "entry-pages": "visit:entry_page", "exit-pages": "visit:exit_page",
    "hostnames": "event:hostname", "events": "event:name", "sources": "visit:source",
    "referrers": "visit:referrer", "utm-sources": "visit:utm_source",
    "utm-mediums": "visit:utm_medium", "utm-campaigns": "visit:utm_campaign",
    "utm-contents": "visit:utm_content", "utm-terms": "visit:utm_term",
    "browsers": "visit:browser", "browser-versions": "visit:browser_version", "os": "visit:os",
    "os-versions": "visit:os_version", "devices": "visit:device", "screen-sizes": "visit:screen",
    "countries": "visit:country", "regions": "visit:region", "cities": "visit:city",
    "channels": "visit:channel",
}

# Singular short names, as used in Mallard-style filter strings (``page==/a;browser!=Chrome``).
ALIASES: Final[Mapping[str, str]] = {
    "page": "pages", "entry-page": "entry-pages", "exit-page": "exit-pages", "hostname": "hostnames",
    "event": "events", "source": "sources", "referrer": "referrers", "utm-source": "utm-sources",
    "utm-medium": "utm-mediums", "utm-campaign": "utm-campaigns", "utm-content": "utm-contents",
    "utm-term": "utm-terms", "browser": "browsers", "browser-version": "browser-versions",
    "os-version": "os-versions", "device": "devices", "screen-size": "screen-sizes",
    "country": "countries", "region": "regions", "city": "cities",
}

TIME_DIMENSIONS: Final = ("time:hour", "time:day", "time:week", "time:month")
_PROP_KEY: Final = re.compile(r"[A-Za-z0-9_.\- :$]{1,128}")


def dimension(name: str) -> Dimension:
    """The :class:`Dimension` called ``name`` (a ``event:``/``visit:`` name, a breakdown slug or its
    singular alias)."""
    slug = name.replace("_", "-")
    slug = ALIASES.get(slug, slug)
    name = BREAKDOWNS.get(name, BREAKDOWNS.get(slug, name))
    found = DIMENSIONS.get(name)
    if found is not None:
        return found
    if name.startswith("event:props:"):
        key = name[len("event:props:"):]
        if not _PROP_KEY.fullmatch(key):
            raise InvalidQueryError(
                "Custom property keys are 1-128 characters of letters, digits, '_', '.', '-', ' ', "
                "':' and '$'.", code="invalid_dimension")
        return Dimension(name, None, "event", f"Custom property {key}", prop_key=key)
    valid = ", ".join([*DIMENSIONS, "event:props:<key>", *TIME_DIMENSIONS])
    raise InvalidQueryError(f"Unknown dimension {name!r}. Valid dimensions: {valid}; or a "
                            f"breakdown name: {', '.join(BREAKDOWNS)}.", code="invalid_dimension")


def metric(name: str) -> Metric:
    found = METRICS.get(name)
    if found is None:
        raise InvalidQueryError(f"Unknown metric {name!r}. Valid metrics: "
                                f"{', '.join(METRICS)}.", code="invalid_metric")
    return found
