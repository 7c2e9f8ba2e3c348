"""Plausible's vocabulary: the values Plausible shows and accepts for a dimension, as SQL over mallard's.

Mallard stores what its parsers give (ua-parser family names, lower-case device classes, ``(direct)``, NULL
for unknown); Mallard Metrics' routes and the Python presets report those values unchanged. Plausible's
Stats API names the same things differently (its User-Agent parser is Matomo's device detector, its empty
values are labels). A :class:`Words` turns a stored value into Plausible's in SQL, so that a query in
Plausible's vocabulary (``POST /api/v2/query``, :func:`plausible_query`) groups by Plausible's names
(two stored values with one Plausible name are one row) and compares its filter values with them (every
operator, ``contains`` and ``matches`` included, sees the value Plausible would show).

Facts from Plausible's source (lib/plausible/ingestion/event.ex, stats/sql/expression.ex, its dashboard's
icon tables) and Matomo's names:

* ``visit:device``: ``Desktop``, ``Mobile``, ``Tablet``; unknown ``(not set)``.
* ``visit:browser``: Matomo's names, with Plausible's merges (``Opera Mini`` is ``Opera``, in-app
  browsers and WebViews are ``Mobile App``); unknown ``(not set)``. ``visit:browser_version`` and
  ``visit:os_version`` are ``major.minor``; unknown ``(not set)``.
* ``visit:os``: ``Mac``, ``GNU/Linux``, ``Windows``, ``iOS``, ``Android``, ``Chrome OS``, …; unknown
  ``(not set)``.
* ``visit:source``: a named source or the referrer's host; none ``Direct / None``. ``visit:referrer``: the
  referrer without scheme, ``www.``, query and trailing ``/``; none ``Direct / None``.
* ``visit:utm_*``: the raw value; none ``(not set)``. ``event:props:<key>``: none ``(none)``.
* ``visit:region``: ISO 3166-2 codes (``DE-BE``). Mallard stores the GeoIP database's English name; the
  code is looked up from it and the country code (:func:`region_words`), and ``is``/``is_not`` filter
  values that are codes become conditions on the stored names (:func:`region_codes`, no lookup a row).
* ``visit:country_name``, ``visit:region_name``, ``visit:city_name`` (in every vocabulary): names; none
  ``""``. The country name is the ISO 3166-1 common name, else the name (Debian's iso-codes through
  pycountry, the data Plausible's location library reads), ``Kosovo`` for ``XK``.

Known differences that cannot be mapped from what mallard stores: Plausible reports iPads as ``iPadOS``
where ua-parser (and so mallard) says ``iOS``; it gives in-app browsers no version; it drops a referrer
from the site itself, which mallard keeps in ``visit:referrer`` (its source is ``Direct / None`` in both).
"""

from __future__ import annotations

import gettext
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Final, Literal

from .sql import Sql

if TYPE_CHECKING:
    from .filters import Condition, Filter
    from .model import Query
    from .registry import Dimension

Vocabulary = Literal["mallard", "plausible"]

NOT_SET: Final = "(not set)"
NO_REFERRER: Final = "Direct / None"
NO_PROPERTY: Final = "(none)"


@dataclass(frozen=True, slots=True)
class Words:
    """How one dimension's stored values are named: ``shape`` (an SQL template, ``{}`` the stored value)
    first, then ``names`` (shaped value → shown value; None: the value counts as missing), and ``empty``
    for a missing (NULL or empty) value."""

    names: tuple[tuple[str, str | None], ...] = ()
    empty: str = NOT_SET
    shape: str = "{}"
    #: SQL of the key ``names`` are looked up by: ``{}`` the shaped value, ``{0}``… the columns ``also``
    key: str = "{}"
    #: lake columns of the same row the key reads besides the dimension's own (e.g. the country code)
    also: tuple[str, ...] = ()

    def label(self, expr: Sql, also: tuple[str, ...] = ()) -> Sql:
        """SQL of the shown value of ``expr`` (never NULL); ``also``: the expressions of the columns
        :attr:`also` in the relation ``expr`` is read from."""
        value = _fill(self.shape, expr)
        named: Sql = "nullif(" + value + ", '')"
        key = _fill(self.key.replace("{}", "\0").format(*also).replace("\0", "{}"), value)
        if len(self.names) > _INLINE:  # a lookup table: a long CASE costs ~1 µs a row per 200 names
            assert all(shown is not None for _stored, shown in self.names)
            rows = Sql(", ".join(["(?, ?)"] * len(self.names)),
                       tuple(v for pair in self.names for v in pair))
            named = ("coalesce((SELECT w.shown FROM (VALUES " + rows + ") AS w(stored, shown) "
                     "WHERE w.stored = " + key + "), " + named + ")")
        elif self.names:
            whens = Sql.join([Sql("WHEN ? THEN " + ("NULL" if shown is None else "?"),
                                  (stored,) if shown is None else (stored, shown))
                              for stored, shown in self.names], " ")
            named = "CASE " + key + " " + whens + " ELSE " + named + " END"
        return "coalesce(" + named + Sql(", ?)", (self.empty,))


#: Names beyond which :meth:`Words.label` looks values up in a table instead of a CASE.
_INLINE: Final = 32


def _fill(template: str, expr: Sql) -> Sql:
    before, after = template.split("{}")
    return before + expr + after


# ua-parser's families as mallard stores them (mallard._enrich.useragent) → Matomo's names as Plausible
# shows them; families spelled alike in both are left out.
BROWSERS: Final[Mapping[str, str]] = {
    "Edge": "Microsoft Edge", "Samsung Internet": "Samsung Browser",
    "DuckDuckGo": "DuckDuckGo Privacy Browser", "MiuiBrowser": "MIUI Browser", "IE": "Internet Explorer",
    "Opera Mini": "Opera", "Chrome WebView": "Mobile App", "Facebook": "Mobile App",
    "Facebook Messenger": "Mobile App", "Instagram": "Mobile App", "TikTok": "Mobile App",
    "LINE": "Mobile App",
}
OSES: Final[Mapping[str, str]] = {"macOS": "Mac", "Mac OS": "Mac", "Linux": "GNU/Linux"}
DEVICES: Final[Mapping[str, str]] = {"desktop": "Desktop", "mobile": "Mobile", "tablet": "Tablet"}
#: ``major.minor`` of a dotted version.
MAJOR_MINOR: Final = "array_to_string(string_split({}, '.')[1:2], '.')"
#: A referrer URL as Plausible shows it: host without ``www.`` and port, then the path without a
#: trailing ``/``; no scheme, user, query or fragment.
REFERRER: Final = (r"rtrim(regexp_replace({}, '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(?:www\.)?"
                   r"([^:/?#]*)(?::[0-9]*)?([^?#]*).*$', '\1\2'), '/')")

_UTM: Final = Words()
PLAUSIBLE: Final[Mapping[str, Words]] = {
    "visit:device": Words(tuple(DEVICES.items())),
    "visit:browser": Words(tuple(BROWSERS.items())),
    "visit:browser_version": Words(shape=MAJOR_MINOR),
    "visit:os": Words(tuple(OSES.items())),
    "visit:os_version": Words(shape=MAJOR_MINOR),
    "visit:source": Words((("(direct)", None),), empty=NO_REFERRER),
    "visit:referrer": Words(empty=NO_REFERRER, shape=REFERRER),
    **{f"visit:utm_{tag}": _UTM for tag in ("source", "medium", "campaign", "content", "term")},
}
_PROPERTY: Final = Words(empty=NO_PROPERTY)


@cache
def country_words() -> Words:
    """ISO 3166-1 alpha-2 code → country name, as Plausible names countries; none ``""``."""
    import pycountry

    names = {c.alpha_2: getattr(c, "common_name", None) or c.name for c in pycountry.countries}
    names.setdefault("XK", "Kosovo")
    return Words(tuple(sorted(names.items())), empty="")


#: Location names (stored as the GeoIP database's English names); none ``""``.
PLACE: Final = Words(empty="")


@cache
def region_words() -> Words:
    """A stored region (the GeoIP database's English name, with the row's country code) → its ISO 3166-2
    code, as Plausible reports ``visit:region``: by the ISO name or its English translation, the names
    MaxMind and DB-IP give; a name that is neither is reported as stored; none ``""``."""
    import pycountry

    codes: dict[str, str] = {}
    for sub in pycountry.subdivisions:
        for name in sorted({sub.name, _english().gettext(sub.name)}):
            codes.setdefault(f"{sub.country_code}|{name}", sub.code)
    return Words(tuple(sorted(codes.items())), empty="", key="{0} || '|' || {}", also=("country_code",))


def worded(dim: Dimension, vocabulary: Vocabulary) -> Dimension:
    """``dim`` as it is named in ``vocabulary`` (itself when the vocabulary does not rename it)."""
    if vocabulary != "plausible" or dim.words is not None:
        return dim
    words = (_PROPERTY if dim.prop_key is not None else region_words() if dim.name == "visit:region"
             else PLAUSIBLE.get(dim.name))
    return dim if words is None else replace(dim, words=words)


def worded_filters(node: Filter | None, vocabulary: Vocabulary) -> Filter | None:
    """The filter tree with every condition's dimension named in ``vocabulary`` (and, in Plausible's,
    ``visit:region`` values that are ISO 3166-2 codes made conditions on the stored names)."""
    from .filters import transform

    if vocabulary != "plausible":
        return node
    return transform(node, lambda c: region_codes(replace(c, dimension=worded(c.dimension, vocabulary))))


@cache
def _english() -> gettext.NullTranslations:
    import pycountry

    return gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=["en"], fallback=True)


def region_names(code: str) -> tuple[str, tuple[str, ...]] | None:
    """(country code, the names a GeoIP database may give it) of the ISO 3166-2 subdivision ``code``:
    its ISO name and the English one (iso-codes' translation, the names MaxMind and DB-IP give); None
    when ``code`` is not an ISO 3166-2 code."""
    import pycountry

    found = pycountry.subdivisions.get(code=code) if "-" in code else None  # type: ignore[no-untyped-call]
    if found is None:
        return None
    return found.country_code, tuple(sorted({found.name, _english().gettext(found.name)}))


def region_codes(cond: Condition) -> Filter:
    """A ``visit:region`` condition (``is``/``is_not``) whose values are ISO 3166-2 codes, as Plausible
    stores regions, made a condition on the country code and the stored region name. Mallard stores the
    GeoIP database's English name: a name that is neither the ISO name nor its English translation never
    matches a code (no guessing). Other values are compared with the stored names as they are."""
    from .filters import Condition, Logic, Not, Written
    from .registry import dimension

    if cond.dimension.name != "visit:region" or cond.op not in ("is", "is_not"):
        return cond
    places = [(value, region_names(value)) for value in cond.values]
    coded = [found for _value, found in places if found is not None]
    if not coded and cond.dimension.words is None:
        return cond
    country, stored = dimension("visit:country"), dimension("visit:region")
    alternatives: list[Filter] = [
        Logic("and", (Condition("is", country, (code,)),
                      Condition("is", stored, names, cond.case_sensitive)))
        for code, names in coded]
    others = tuple(value for value, found in places if found is None)
    if others:
        alternatives.append(Condition("is", stored, others, cond.case_sensitive))
    if cond.op == "is_not":
        return Written("and", (Not(Logic("or", tuple(alternatives))),), cond)
    return Written("or", tuple(alternatives), cond)


def plausible_query(query: Query) -> Query:
    """``query`` in Plausible's vocabulary: its filters compare, and its dimensions report, the values
    Plausible shows (the Stats API v1 and v2 answer in it)."""
    return replace(query, filters=worded_filters(query.filters, "plausible"), vocabulary="plausible")
