"""Saved funnels per site, shared by every process and host (``funnels.json`` in the shared state of
:mod:`mallard._sharedstate`).

A saved funnel is a name, its steps as the funnel query takes them (``["page:/pricing",
"event:Signup"]``) and its conversion window (``"1 day"``). Steps and window are checked by the funnel
query's own parser when the funnel is saved, so a saved funnel always runs. Names are unique per site.

**Usage**: ``m.funnels.add("example.com", "Signup", ["page:/pricing", "event:Signup"])``, then
``m.queries.funnel("example.com", f.steps, window=f.window)`` or ``GET /api/stats/funnel?funnel=<id>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._queries.funnels import parse_steps, parse_window
from ._records import RecordError, SiteRecords, check_name
from ._sharedstate import StateLike, as_state

__all__ = ["MAX_FUNNELS", "SavedFunnel", "SavedFunnels"]

MAX_FUNNELS: Final = 100  # per site


@dataclass(frozen=True, slots=True)
class SavedFunnel:
    """One saved funnel of a site."""

    id: int
    site_id: str
    name: str
    steps: tuple[str, ...]
    window: str = "1 day"

    def to_json(self) -> dict[str, Any]:
        return {"id": str(self.id), "site_id": self.site_id, "name": self.name,
                "steps": list(self.steps), "window": self.window}


def _load(item: Mapping[str, Any]) -> SavedFunnel:
    steps = item["steps"]
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        raise ValueError
    return SavedFunnel(int(item["id"]), str(item["site_id"]), str(item["name"]), tuple(steps),
                       str(item["window"]))


class SavedFunnels:
    """The saved funnels of every site in ``state`` (:func:`mallard._sharedstate.shared_state`, or the
    path of a local ``state/`` directory). Thread- and process-safe."""

    def __init__(self, state: StateLike) -> None:
        self._records = SiteRecords(as_state(state), "funnels.json", load=_load,
                                    max_per_site=MAX_FUNNELS, what="saved funnels")

    def list(self, site_id: str) -> list[SavedFunnel]:
        """The site's saved funnels, oldest first."""
        return self._records.of_site(site_id)

    def get(self, site_id: str, funnel_id: int) -> SavedFunnel | None:
        """The site's saved funnel with this id, or None."""
        return self._records.get(site_id, funnel_id)

    def add(self, site_id: str, name: str, steps: Sequence[str] | str, *,
            window: str | int = "1 day") -> SavedFunnel:
        """Save a funnel.

        Args:
            site_id: the site.
            name: 1-120 characters, unique among the site's funnels.
            steps: as :meth:`mallard.Queries.funnel` takes them (a list, or ``"page:/a,event:B"``).
            window: as :meth:`mallard.Queries.funnel` takes it.

        Raises:
            InvalidQueryError: bad steps or window (the funnel query's own message).
            RecordError: a bad or taken name, or too many funnels.
        """
        check_name(name, "The funnel name")
        labels = tuple(s.label for s in parse_steps(steps))
        parse_window(window)
        text = f"{window} seconds" if isinstance(window, int) else window.strip()

        def make(new_id: int, mine: list[SavedFunnel]) -> SavedFunnel:
            if any(f.name == name for f in mine):
                raise RecordError(f"The site already has a funnel named {name!r}; choose another "
                                  "name or delete that one first.", code="funnel_exists")
            return SavedFunnel(new_id, site_id, name, labels, text)

        return self._records.add(site_id, make)

    def remove(self, funnel_id: int, site_id: str | None = None) -> bool:
        """Delete a saved funnel (of ``site_id``, when given); False when there is none."""
        return self._records.change(funnel_id, site_id, lambda f: None) is not None
