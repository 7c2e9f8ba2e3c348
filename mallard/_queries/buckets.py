"""The labels of a time dimension's buckets over a date range (the zero-filled rows of a series)."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from .._errors import InvalidQueryError
from .periods import DateRange

__all__ = ["bucket_labels"]

_MAX_BUCKETS: Final = {"time:hour": 24 * 400, "time:day": 3700, "time:week": 600, "time:month": 200}


def bucket_labels(rng: DateRange, time_dim: str) -> list[str]:
    """Every bucket label of a range, in order (hours in local time, DST-aware)."""
    out: list[str] = []
    if time_dim == "time:hour":
        zone = ZoneInfo(rng.tz)
        lower, upper = rng.bounds()
        t = lower.replace(tzinfo=UTC)
        seen: set[str] = set()
        while t < upper.replace(tzinfo=UTC):
            local = t.astimezone(zone)
            label = local.strftime("%Y-%m-%d %H:00")
            if label not in seen:
                seen.add(label)
                out.append(label)
            # to the next local hour (a range of instants may start within one)
            t += timedelta(hours=1) - (local - local.replace(minute=0, second=0, microsecond=0))
        return out
    day = rng.start
    if time_dim == "time:week":
        day -= timedelta(days=day.weekday())
    elif time_dim == "time:month":
        day = day.replace(day=1)
    step = {"time:day": timedelta(days=1), "time:week": timedelta(days=7)}.get(time_dim)
    while day <= rng.end:
        out.append(day.isoformat())
        if len(out) > _MAX_BUCKETS[time_dim]:
            raise InvalidQueryError("Too many time buckets; choose a coarser interval.",
                                    code="invalid_interval")
        # Stop at the last bucket rather than step past it (a step past 9999-12 would overflow).
        if step is None:
            if (day.year, day.month) == (rng.end.year, rng.end.month):
                break
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            if rng.end - day < step:
                break
            day += step
    return out
