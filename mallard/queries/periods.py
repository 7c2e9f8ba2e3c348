"""Date ranges: named periods and explicit dates, resolved in the site's time zone.

Periods follow Mallard Metrics v0.2: ``day``/``today`` is today; ``7d``, ``30d``, ``90d`` are today and the
N days before it; ``12mo`` the 365 days before today and today; ``month`` and ``year`` run from their first
day to today; ``all`` from the first stored day. An explicit ``start_date``..``end_date`` is inclusive.

Dates run from :data:`FIRST_DATE` (0001-01-02) to :data:`LAST_DATE` (9999-12-30): one day inside the ends
of Python's calendar, so the UTC bounds of any local day, in any time zone, can still be computed. A range
outside them is an :class:`InvalidQueryError`, never an ``OverflowError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from ..errors import InvalidQueryError

PERIODS: Final = ("day", "today", "7d", "30d", "90d", "12mo", "month", "year", "all")
_DAYS: Final = {"7d": 7, "30d": 30, "90d": 90, "12mo": 365}
MAX_API_DAYS: Final = 366
FIRST_DATE: Final = date(1, 1, 2)
LAST_DATE: Final = date(9999, 12, 30)


@dataclass(frozen=True, slots=True)
class DateRange:
    """Local dates ``start``..``end`` (inclusive) in time zone ``tz``."""

    start: date
    end: date
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if self.start < FIRST_DATE or self.end > LAST_DATE:
            raise InvalidQueryError(
                f"Dates must lie between {FIRST_DATE} and {LAST_DATE}; got {self.start} to {self.end}.",
                code="date_out_of_range")

    def shifted(self, days: int) -> DateRange:
        """The same range ``days`` earlier (a comparison period).

        Raises:
            InvalidQueryError: the shifted range would start before :data:`FIRST_DATE`.
        """
        try:
            return DateRange(self.start - timedelta(days=days), self.end - timedelta(days=days), self.tz)
        except (OverflowError, InvalidQueryError):
            raise InvalidQueryError(
                f"The comparison period, {days} days earlier, would start before {FIRST_DATE}; "
                "choose later dates.", code="date_out_of_range") from None

    def bounds(self) -> tuple[datetime, datetime]:
        """Naive UTC ``[lower, upper)`` bounds of the range."""
        zone = ZoneInfo(self.tz)
        lower = datetime.combine(self.start, time(), zone).astimezone(UTC)
        upper = datetime.combine(self.end + timedelta(days=1), time(), zone).astimezone(UTC)
        return lower.replace(tzinfo=None), upper.replace(tzinfo=None)

    def partition_dates(self) -> tuple[date, date]:
        """First and last UTC partition dates that can hold events of the range."""
        lower, upper = self.bounds()
        return lower.date(), (upper - timedelta(microseconds=1)).date()

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def to_dict(self) -> dict[str, str]:
        return {"start_date": self.start.isoformat(), "end_date": self.end.isoformat(),
                "timezone": self.tz}


def parse_date(value: str, name: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidQueryError(f"Invalid {name} format. Use YYYY-MM-DD.",
                                code="invalid_date") from None


def resolve(period: str | None = None, start_date: str | date | None = None,
            end_date: str | date | None = None, *, today: date, tz: str = "UTC",
            first_day: date | None = None, max_days: int | None = None) -> DateRange:
    """The :class:`DateRange` for a period name or explicit dates.

    Explicit dates win when both are given. ``max_days`` (the HTTP API uses 366) bounds explicit ranges.
    ``first_day`` (for ``all``) is the first UTC date with stored events.

    Raises:
        InvalidQueryError: unknown period, malformed date, end before start, range too long.
    """
    if start_date is not None and end_date is not None:
        start = start_date if isinstance(start_date, date) else parse_date(start_date, "start_date")
        end = end_date if isinstance(end_date, date) else parse_date(end_date, "end_date")
        if end < start:
            raise InvalidQueryError("end_date must be on or after start_date", code="invalid_range")
        if max_days is not None and (end - start).days > max_days:
            raise InvalidQueryError(
                f"Date range must not exceed {max_days} days. Narrow start_date..end_date.",
                code="range_too_long")
        return DateRange(start, end, tz)
    name = (period or "30d").strip()
    if name in ("day", "today"):
        return DateRange(today, today, tz)
    if name in _DAYS:
        return DateRange(today - timedelta(days=_DAYS[name]), today, tz)
    if name == "month":
        return DateRange(today.replace(day=1), today, tz)
    if name == "year":
        return DateRange(today.replace(month=1, day=1), today, tz)
    if name == "all":
        if first_day is None:
            return DateRange(today, today, tz)
        # first_day is a UTC partition date: its first hours are the day before west of UTC.
        first = datetime.combine(max(first_day, FIRST_DATE), time(), UTC).astimezone(ZoneInfo(tz)).date()
        return DateRange(max(min(first, today), FIRST_DATE), today, tz)
    raise InvalidQueryError(
        f"Invalid period: {name}. Use 'day', '7d', '30d', '90d', '12mo', 'month', 'year', 'all', "
        "or provide start_date and end_date.", code="invalid_period")
