"""Revenue per currency: never summed across currencies, never converted.

The builder computes each revenue metric of a row as ``{value, currencies}`` (the sum, or mean, of the
row's revenue amounts and the distinct currencies they are in; see :func:`metric_sql`). :func:`finish`
turns that into a :class:`Revenue` when the row's revenue is in one currency, and into ``None`` with a
warning in ``meta["metric_warnings"]`` (Plausible's ``no_single_revenue_currency``) when it mixes
currencies. A row without revenue is ``Revenue(0, currency)`` when a currency is known for it (its
goal's, else the site's reporting currency), else ``None``. Amounts tracked without a currency are in
that known currency, else in ``XXX`` (ISO 4217: no currency).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .._goals import Goals
    from .model import Query

__all__ = ["REVENUE_METRICS", "Revenue", "currency_of_rows", "finish", "metric_sql"]

REVENUE_METRICS: Final = frozenset({"total_revenue", "average_revenue"})
NO_CURRENCY: Final = "XXX"  # ISO 4217's code for "no currency"
_SYMBOLS: Final = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CNY": "CN¥",
                   "AUD": "A$", "CAD": "CA$", "BRL": "R$", "KRW": "₩"}
WARNING: Final = {"code": "no_single_revenue_currency",
                  "warning": "Revenue metrics are null as there are multiple currencies in the result "
                             "(mallard does not convert currencies)."}


@dataclass(frozen=True, slots=True)
class Revenue:
    """An amount of money in one currency (ISO 4217 code)."""

    value: Decimal
    currency: str

    @property
    def long(self) -> str:
        """``$96,336,315.00``; an unknown symbol is the code and a space (``CHF 12.00``)."""
        return f"{self._symbol()}{self.value:,.2f}"

    @property
    def short(self) -> str:
        """``$96.3M``, ``€1.2K``, ``$12.50``."""
        amount = abs(self.value)
        for limit, suffix in ((Decimal(10) ** 12, "T"), (Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"),
                              (Decimal(1000), "K")):
            if amount >= limit:
                return f"{self._symbol()}{self.value / limit:.1f}{suffix}"
        return self.long

    def to_json(self) -> dict[str, Any]:
        """Plausible's v2 shape: ``{"value", "currency", "short", "long"}``."""
        return {"value": float(self.value), "currency": self.currency, "short": self.short,
                "long": self.long}

    def _symbol(self) -> str:
        return _SYMBOLS.get(self.currency, self.currency + " ")


def metric_sql(name: str) -> str:
    """The aggregate of revenue metric ``name`` over event rows: ``{value, currencies}``."""
    value = "sum(revenue_amount)" if name == "total_revenue" else "avg(revenue_amount)"
    return ("{'value': " + value + ", 'currencies': list(DISTINCT coalesce(revenue_currency, '')) "
            "FILTER (WHERE revenue_amount IS NOT NULL)}")


def currency_of_rows(query: Query, goals: Goals) -> Callable[[dict[str, Any]], str | None]:
    """The currency of a result row without revenue: with ``event:goal``, its goal's (None for a goal
    without one); otherwise the site's reporting currency."""
    if not REVENUE_METRICS & set(query.metrics):
        return lambda row: None
    if "event:goal" not in query.dimensions:
        site = goals.currency(query.site_id)
        return lambda row: site
    by_name = {g.display_name: g.currency for g in goals.list(query.site_id)}
    return lambda row: by_name.get(row["event:goal"])


def finish(rows: list[dict[str, Any]], metrics: Sequence[str],
           currency_of: Callable[[dict[str, Any]], str | None]) -> dict[str, Any]:
    """Replace the revenue metrics of ``rows`` (in place) by :class:`Revenue` or None; return the
    ``metric_warnings`` (empty when no row mixes currencies). ``currency_of(row)`` is the currency of
    a row without revenue (or None)."""
    warnings: dict[str, Any] = {}
    for name in (m for m in metrics if m in REVENUE_METRICS):
        for row in rows:
            raw, fallback = row[name], currency_of(row)
            # an amount sent without a currency is in the row's known currency, else in XXX (ISO 4217:
            # no currency)
            currencies = {c or fallback or NO_CURRENCY for c in (raw or {}).get("currencies") or ()}
            if len(currencies) > 1:
                row[name] = None
                warnings[name] = dict(WARNING)
            elif currencies and raw["value"] is not None:
                row[name] = Revenue(Decimal(raw["value"]).quantize(Decimal("0.01")), currencies.pop())
            else:
                row[name] = None if fallback is None else Revenue(Decimal("0.00"), fallback)
    return warnings
