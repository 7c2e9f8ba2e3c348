"""Date ranges: named periods and explicit dates, resolved in the site's time zone.

:func:`resolve` (Mallard Metrics' routes, the Python ``period=`` keyword) follows Mallard Metrics v0.2:
``day``/``today`` is today; ``7d``, ``30d``, ``90d`` are today and the N days before it; ``12mo`` the 365
days before today and today; ``month`` and ``year`` run from their first day to today; ``all`` from the
first stored day. An explicit ``start_date``..``end_date`` is inclusive.

:func:`plausible_range` (the v2 body's ``date_range``) follows Plausible: ``Nd`` is the N full days before
today (today excluded), ``Nmo`` the N calendar months before this one, ``month`` and ``year`` the whole
calendar month and year, ``24h`` the 24 hours up to now, and ``[datetime, datetime]`` an exact span. Such
a sub-day range carries its UTC instants (:attr:`DateRange.instants`) besides the local dates it touches.

Dates run from :data:`FIRST_DATE` (0001-01-02) to :data:`LAST_DATE` (9999-12-30): one day inside the ends
of Python's calendar, so the UTC bounds of any local day, in any time zone, can still be computed. A range
outside them is an :class:`InvalidQueryError`, never an ``OverflowError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from .._errors import InvalidQueryError

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
    #: Naive UTC ``[lower, upper)`` of a range that is not made of whole local days (``24h``, a datetime
    #: range); ``start``..``end`` are then the local dates it touches. None: the whole days.
    instants: tuple[datetime, datetime] | None = None

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
        if self.instants is not None:
            return self.instants
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

    def to_json(self) -> list[str]:
        """``[start, end]`` as the v2 body echoes it: dates, or (a range of instants) the first and the
        last second as ISO 8601 datetimes in the range's time zone."""
        if self.instants is None:
            return [self.start.isoformat(), self.end.isoformat()]
        zone = ZoneInfo(self.tz)
        lower, upper = (t.replace(tzinfo=UTC).astimezone(zone) for t in self.instants)
        return [lower.isoformat(), (upper - _SECOND).isoformat()]

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


# -- Plausible's periods (the Stats API v2 body) ----------------------------------------------------
PLAUSIBLE_PERIODS: Final = ("day", "24h", "7d", "28d", "30d", "91d", "month", "6mo", "12mo", "year",
                            "all", "realtime", "30m")
_SHORTHAND: Final = re.compile(r"([1-9][0-9]{0,3})(d|mo)")
_MINUTES: Final = {"realtime": 5, "30m": 30, "24h": 24 * 60}
_SECOND: Final = timedelta(seconds=1)


def plausible_range(value: object, *, now: datetime, tz: str = "UTC", first_day: date | None = None,
                    max_days: int | None = None) -> DateRange:
    """The :class:`DateRange` of a Plausible Stats API ``date_range``: a period name (see
    :func:`plausible_period`) or a ``[start, end]`` pair of ISO 8601 dates (local, inclusive) or of
    datetimes with offsets (an exact span, its end second included). The v1 API's ``period`` names
    resolve through :func:`plausible_period` too.

    ``now`` is an aware datetime (the clock); ``max_days`` bounds explicit pairs as in :func:`resolve`.

    Raises:
        InvalidQueryError: unknown name, malformed pair, end before start, dates out of range.
    """
    if isinstance(value, str) and value.strip():
        return plausible_period(value.strip(), now=now, tz=tz, first_day=first_day)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) for v in value):
        start, end = value
        if len(start) <= 10 and len(end) <= 10:
            return resolve(None, start, end, today=now.date(), tz=tz, max_days=max_days)
        if len(start) <= 10 or len(end) <= 10:  # one date, one datetime: name the one that is wrong
            _instant(end, "end_date") if len(start) <= 10 else _instant(start, "start_date")
            raise InvalidQueryError("date_range must be two dates or two datetimes, not one of each.",
                                    code="invalid_date")
        lower, upper = _instant(start, "start_date"), _instant(end, "end_date")
        if upper < lower:
            raise InvalidQueryError("The end of date_range must not be before its start.",
                                    code="invalid_range")
        if max_days is not None and upper - lower > timedelta(days=max_days + 1):
            raise InvalidQueryError(f"Date range must not exceed {max_days} days.", code="range_too_long")
        return instant_range(lower, upper, tz, inclusive_end=True)
    raise InvalidQueryError(
        "date_range must be a period name or [start_date, end_date] (ISO 8601 dates, or datetimes with "
        "offsets); periods: " + ", ".join(PLAUSIBLE_PERIODS) + ".", code="invalid_period")


def plausible_period(name: str, *, now: datetime, tz: str = "UTC",
                     first_day: date | None = None) -> DateRange:
    """A period name as Plausible counts it, ``today`` being ``now``'s date in ``tz``:

    ``day`` today; ``Nd`` (1-5000 days: ``7d``, ``28d``, ``30d``, ``91d``, …) the N days before today,
    today excluded; ``Nmo`` (1-100: ``6mo``, ``12mo``) the N calendar months before this month;
    ``month`` this whole calendar month; ``year`` this whole calendar year; ``all`` from the first
    stored day to today; ``24h``, ``30m`` and ``realtime`` (5 minutes) the span up to now.
    """
    today = _local(now, tz).date()
    if name in _MINUTES:
        upper = now.replace(microsecond=0)
        return instant_range(upper - timedelta(minutes=_MINUTES[name]), upper, tz, inclusive_end=True)
    if name == "day":
        return DateRange(today, today, tz)
    if name == "month":
        return DateRange(today.replace(day=1), _month_end(today), tz)
    if name == "year":
        return DateRange(today.replace(month=1, day=1), today.replace(month=12, day=31), tz)
    if name == "all":
        return resolve("all", today=today, tz=tz, first_day=first_day)
    match = _SHORTHAND.fullmatch(name)
    if match is not None:
        n, unit = int(match.group(1)), match.group(2)
        if unit == "d" and n <= 5000:
            return _checked(lambda: DateRange(today - timedelta(days=n), today - timedelta(days=1), tz))
        if unit == "mo" and n <= 100:
            this_month = today.replace(day=1)
            return _checked(lambda: DateRange(_months_before(this_month, n),
                                              this_month - timedelta(days=1), tz))
    raise InvalidQueryError(f"Invalid period: {name}. Use one of {', '.join(PLAUSIBLE_PERIODS)}, "
                            "another Nd or Nmo, or a [start, end] pair.", code="invalid_period")


def instant_range(lower: datetime, upper: datetime, tz: str, *, inclusive_end: bool = False) -> DateRange:
    """The :class:`DateRange` of the span ``[lower, upper)`` (aware datetimes; ``inclusive_end``: up to
    and including ``upper``'s second), with the local dates it touches in ``tz``.

    Raises:
        InvalidQueryError: the span reaches outside :data:`FIRST_DATE`..:data:`LAST_DATE`.
    """
    def build() -> DateRange:
        low = lower.astimezone(UTC).replace(tzinfo=None)
        high = upper.astimezone(UTC).replace(tzinfo=None)
        if inclusive_end:
            high = high.replace(microsecond=0) + _SECOND
        first = _local(lower, tz).date()
        last = (high.replace(tzinfo=UTC) - timedelta(microseconds=1)).astimezone(ZoneInfo(tz)).date()
        return DateRange(first, max(first, last), tz, (low, high))

    return _checked(build)


def _checked(make: Callable[[], DateRange]) -> DateRange:
    """``make()``, an overflow at the calendar's ends reported as ``date_out_of_range``."""
    try:
        return make()
    except InvalidQueryError:
        raise
    except (OverflowError, ValueError):
        raise InvalidQueryError(f"Dates must lie between {FIRST_DATE} and {LAST_DATE}.",
                                code="date_out_of_range") from None


def _instant(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None or len(text) < 19:
        raise InvalidQueryError(f"Invalid {name} format {text!r}: use YYYY-MM-DD for both ends, or an "
                                "ISO 8601 datetime with an offset (2024-01-01T12:00:00+02:00) for both.",
                                code="invalid_date")
    return value


def _local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz))


def _month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1) \
        if day.month != 12 else day.replace(day=31)


def _months_before(first: date, n: int) -> date:
    """The first day of the month ``n`` months before ``first`` (a first of month)."""
    index = first.year * 12 + first.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def v1_period(period: str | None, date_param: str | None = None, *, now: datetime, tz: str = "UTC",
              first_day: date | None = None, max_days: int | None = None) -> DateRange:
    """A Plausible Stats API **v1** ``period`` (with its ``date`` parameter), which counts differently from
    the v2 body: ``7d`` is the reference day and the 6 days before, ``30d`` the reference day and the 30
    before, ``month``/``6mo``/``12mo`` end with the reference day's whole month (``6mo``: it and the 5
    before), ``year`` its whole year, ``custom`` the dates of ``date=YYYY-MM-DD,YYYY-MM-DD``; the reference
    day is ``date`` (``YYYY-MM-DD`` or ``today``), by default today. ``realtime``, ``30m``, ``day`` and
    ``all`` as in :func:`plausible_period`. No period is ``30d``. ``max_days`` bounds ``custom`` as in
    :func:`resolve`.

    Raises:
        InvalidQueryError: unknown period, malformed ``date``, dates out of range.
    """
    name = (period or "30d").strip()
    if name in ("realtime", "30m", "all"):
        return plausible_period(name, now=now, tz=tz, first_day=first_day)
    if name == "custom":
        parts = (date_param or "").split(",")
        if len(parts) != 2:
            raise InvalidQueryError("period=custom needs date=YYYY-MM-DD,YYYY-MM-DD.", code="invalid_date")
        return resolve(None, parts[0].strip(), parts[1].strip(), today=now.date(), tz=tz,
                       max_days=max_days)
    day = _local(now, tz).date() if date_param in (None, "", "today") else parse_date(date_param, "date")
    if name == "day":
        return DateRange(day, day, tz)
    if name in ("7d", "30d"):
        return _checked(lambda: DateRange(day - timedelta(days=6 if name == "7d" else 30), day, tz))
    if name in ("month", "6mo", "12mo"):
        back = {"month": 0, "6mo": 5, "12mo": 11}[name]
        return _checked(lambda: DateRange(_months_before(day.replace(day=1), back), _month_end(day), tz))
    if name == "year":
        return DateRange(day.replace(month=1, day=1), day.replace(month=12, day=31), tz)
    raise InvalidQueryError(f"Invalid period: {name}. Use day, 7d, 30d, month, 6mo, 12mo, year, all, "
                            "realtime, 30m or custom.", code="invalid_period")
