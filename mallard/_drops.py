"""Why an accepted event was not stored: the drop reasons, explained, and the rules in force.

An event the pipeline drops (a bot, a site not allowed, an opt-out) is still answered ``202`` over HTTP,
as in Plausible and Mallard Metrics, so that a page never retries it. That makes a first test with curl
(whose User-Agent is a bot's) or from a page on ``localhost`` look like success while nothing is recorded.
So the reasons are said: the ``X-Mallard-Dropped`` header of the answer names them, ``?debug=1`` answers
each event's reason with an explanation, ``Outcome.reason`` carries it in Python, and the rules in force
are logged when ingestion starts (and printed by ``mallard serve``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._settings import Settings

__all__ = ["EXPLANATIONS", "explain", "rules"]

#: Drop reason → what happened and what to change.
EXPLANATIONS: Final = {
    "bot": "The User-Agent is a known bot or crawler (curl, wget, python-requests, headless browsers "
           "included); send a browser's User-Agent, or set filter_bots = false.",
    "site_not_allowed": "The site is not in site_ids; add it there (or `mallard serve --site`).",
    "do_not_track": "The client sent DNT: 1 or Sec-GPC: 1 and honor_dnt is on.",
}


def explain(reason: str) -> str:
    """The explanation of a drop reason (the reason itself when it has none)."""
    return EXPLANATIONS.get(reason, reason)


def rules(settings: Settings) -> list[str]:
    """The drop rules in force, one line each (empty: every valid event is stored)."""
    out = []
    if settings.filter_bots:
        out.append("events whose User-Agent is a bot or crawler, curl included (filter_bots)")
    if settings.site_ids:
        out.append("events of sites other than " + ", ".join(settings.site_ids) + " (site_ids)")
    if settings.honor_dnt:
        out.append("events of clients sending DNT: 1 or Sec-GPC: 1 (honor_dnt)")
    return out
