"""IP → coarse location lookup against a local MaxMind DB (``.mmdb``) file, else the built-in countries.

:class:`GeoLookup` opens the database named by the ``geoip_db_path`` setting once, through the
``maxminddb`` C extension (``MODE_AUTO``: memory-mapped, thread-safe for concurrent reads), and
turns an IP address into a :class:`Location` of country code, region and city, cut down to the
``geoip_precision`` setting.

Without a database (and with ``geoip_builtin_countries``), the country alone comes from ``iptocc``: the
country each Regional Internet Registry (AFRINIC, APNIC, ARIN, LACNIC, RIPE NCC) assigned the address
block to, from their public delegation statistics, embedded in the wheel (no file, no download; about
0.15 µs a lookup). The assigned country is where the block is registered, which agrees with MaxMind
for about 95% of IPv4 addresses; a newer wheel brings newer data.

Supported databases:

* City-schema (GeoLite2-City, GeoIP2-City, GeoIP2-Enterprise, DB-IP City Lite):
  ``country.iso_code``, ``subdivisions[0].names.en`` and ``city.names.en``;
* Country-schema (GeoLite2-Country, GeoIP2-Country, DB-IP Country Lite): ``country.iso_code``;
* flat ip-location-db style records: top-level ``country_code`` (and, when present,
  ``state1`` and ``city`` as plain strings).

Privacy: the raw IP address is used for the single lookup and dropped; nothing is cached per
address, and no message raised or logged here contains an IP address.

:meth:`GeoLookup.lookup` is on the ingestion hot path and never raises: anything that is not a
listed public address (``None``, ``"unknown"``, garbage, private ranges) maps to
:data:`NO_LOCATION`.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import maxminddb

from mallard._errors import ConfigurationError

__all__ = ["BUILTIN", "NO_LOCATION", "GeoLookup", "GeoPrecision", "Location"]

GeoPrecision = Literal["city", "region", "country", "none"]

#: precision → how many levels (country, region, city) are kept.
_LEVELS: Final[Mapping[str, int]] = {"none": 0, "country": 1, "region": 2, "city": 3}
_ACCEPTED_PRECISIONS: Final = ", ".join(repr(p) for p in _LEVELS)

#: Substrings of ``metadata.database_type`` that mark a location database without probing it.
_LOCATION_DB_MARKERS: Final = ("city", "country", "enterprise")
#: How many records to inspect when ``database_type`` is not recognisable by name.
_PROBE_RECORDS: Final = 64

_EMPTY: Final[Mapping[str, Any]] = {}

#: Errors ``Reader.get`` raises for bad input (``ValueError``: not an address, an IPv6 address
#: in an IPv4-only database, a closed reader; ``TypeError``: not a string) or a damaged tree.
_LOOKUP_ERRORS: Final = (ValueError, TypeError, maxminddb.InvalidDatabaseError)
#: Errors a malformed record can cause while it is read as the expected nested dicts.
_RECORD_ERRORS: Final = (AttributeError, TypeError, KeyError, IndexError)


@dataclass(frozen=True, slots=True)
class Location:
    """Where a visitor is, as precisely as ``geoip_precision`` allows; every field may be None."""

    country_code: str | None  # ISO 3166-1 alpha-2, upper-case
    region: str | None  # first subdivision's English name
    city: str | None  # English city name


NO_LOCATION: Final = Location(None, None, None)
#: :attr:`GeoLookup.database_type` of the built-in countries (no database).
BUILTIN: Final = "iptocc"


def _country_record(code: str | None) -> Mapping[str, str] | None:
    return None if code is None else {"country_code": code}


class GeoLookup:
    """A read-only GeoIP database, opened once and shared by all threads."""

    __slots__ = ("_database_type", "_get", "_level", "_reader")

    def __init__(
        self, path: str | os.PathLike[str] | None, precision: GeoPrecision = "city", *,
        builtin_countries: bool = False,
    ) -> None:
        """Open the .mmdb once (maxminddb C extension, MODE_AUTO).

        ``path`` None: with ``builtin_countries`` the country alone comes from the registries' data
        (``iptocc``, see the module); without, every lookup returns :data:`NO_LOCATION`.

        Raises:
            ConfigurationError: ``precision`` is not one of the accepted values (names
                ``geoip_precision``), or the file is missing, unreadable, corrupt or not a
                City/Country-style database (names ``geoip_db_path`` and the path).
        """
        level = _LEVELS.get(precision) if isinstance(precision, str) else None
        if level is None:
            shown = repr(precision) if isinstance(precision, str) else type(precision).__name__
            raise ConfigurationError(
                f"geoip_precision: unknown value {shown[:40]}; "
                f"accepted values are {_ACCEPTED_PRECISIONS}."
            )
        self._level: int = level
        self._reader: maxminddb.Reader | None = None
        self._get: Callable[[str], Any] | None = None
        self._database_type: str | None = None
        if path is None:
            if builtin_countries and level:
                from iptocc import country_code

                self._get = lambda ip: _country_record(country_code(ip))
                self._database_type = BUILTIN
            return
        reader, database_type = _open(os.fspath(path))
        self._reader = reader
        self._database_type = database_type
        if level:
            self._get = reader.get

    @property
    def loaded(self) -> bool:
        """True while a database is open (False when disabled or closed)."""
        return self._reader is not None

    @property
    def locates(self) -> bool:
        """True while lookups can find a location (a database, or the built-in countries)."""
        return self._get is not None

    @property
    def database_type(self) -> str | None:
        """The database's ``database_type`` (e.g. ``"GeoLite2-City"``), :data:`BUILTIN` for the built-in
        countries; None if neither."""
        return self._database_type

    def lookup(self, ip: str | None) -> Location:
        """Locate ``ip``; never raises, and returns :data:`NO_LOCATION` when nothing is known.

        ``None``, ``"unknown"``, unparsable strings and private or unlisted addresses give
        :data:`NO_LOCATION`. The result is cut to the configured precision: ``"region"`` drops
        the city, ``"country"`` drops region and city, ``"none"`` always gives NO_LOCATION.
        """
        get = self._get
        if get is None or not ip:
            return NO_LOCATION
        try:
            record = get(ip)
        except _LOOKUP_ERRORS:
            record = None
        if record is None:
            # An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``, what a dual-stack socket
            # reports) in a database that has no alias for it, or an IPv4-only database.
            record = _get_ipv4_mapped(get, ip)
            if record is None:
                return NO_LOCATION
        level = self._level
        try:
            country = record.get("country")
            if country is not None:  # MaxMind City / Country schema
                code = country.get("iso_code")
                region = city = None
                if level > 1:
                    subdivisions = record.get("subdivisions")
                    if subdivisions:
                        region = subdivisions[0].get("names", _EMPTY).get("en")
                    if level > 2:
                        city_record = record.get("city")
                        if city_record is not None:
                            city = city_record.get("names", _EMPTY).get("en")
            else:  # ip-location-db style: flat ``country_code`` / ``state1`` / ``city``
                code = record.get("country_code")
                if code.__class__ is str:
                    code = code.upper()
                region = record.get("state1") if level > 1 else None
                city = record.get("city") if level > 2 else None
        except _RECORD_ERRORS:
            return NO_LOCATION
        # Anything that is not a non-empty string (a malformed database) counts as unknown.
        if code.__class__ is not str or not code:
            code = None
        if region is not None and (region.__class__ is not str or not region):
            region = None
        if city is not None and (city.__class__ is not str or not city):
            city = None
        if code is None and region is None and city is None:
            return NO_LOCATION
        return Location(code, region, city)

    def close(self) -> None:
        """Release the database; later lookups return NO_LOCATION. Safe to call twice."""
        reader = self._reader
        self._get = None
        self._reader = None
        self._database_type = None
        if reader is not None:
            reader.close()

    def __repr__(self) -> str:
        level = next(name for name, value in _LEVELS.items() if value == self._level)
        return f"GeoLookup(database_type={self._database_type!r}, precision={level!r})"


def _get_ipv4_mapped(get: Callable[[str], Any], ip: str) -> Any:
    """Look up the IPv4 address inside an IPv4-mapped IPv6 address; None if not one or no hit."""
    try:
        if ":" not in ip or "ffff" not in ip.lower():
            return None
        mapped = ipaddress.IPv6Address(ip).ipv4_mapped
        return None if mapped is None else get(str(mapped))
    except _LOOKUP_ERRORS:
        return None


def _config_error(path: str, reason: str) -> ConfigurationError:
    return ConfigurationError(
        f"geoip_db_path: cannot use the GeoIP database {path!r}: {reason}. "
        "Set geoip_db_path to a readable MaxMind DB (.mmdb) City or Country database "
        "(for example GeoLite2-City.mmdb or GeoLite2-Country.mmdb), "
        "or leave it unset to disable geolocation."
    )


def _open(path: str) -> tuple[maxminddb.Reader, str]:
    """Open and validate the database at ``path``; raise ConfigurationError if unusable."""
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        raise _config_error(path, "the file does not exist") from exc
    except PermissionError as exc:
        raise _config_error(path, "permission denied") from exc
    except OSError as exc:
        raise _config_error(path, exc.strerror or type(exc).__name__) from exc
    if stat.S_ISDIR(info.st_mode):
        raise _config_error(path, "it is a directory, not a file")
    if info.st_size == 0:
        raise _config_error(path, "the file is empty")
    try:
        reader = maxminddb.open_database(path, maxminddb.MODE_AUTO)
    except PermissionError as exc:
        raise _config_error(path, "permission denied") from exc
    except OSError as exc:
        raise _config_error(path, exc.strerror or type(exc).__name__) from exc
    except (maxminddb.InvalidDatabaseError, ValueError) as exc:
        raise _config_error(
            path, "it is not a valid MaxMind DB file (corrupt, truncated or another format)"
        ) from exc
    try:
        database_type = _check_location_database(reader)
    except ConfigurationError as exc:
        reader.close()
        raise _config_error(path, exc.message) from None
    except Exception as exc:
        reader.close()
        raise _config_error(
            path, "it is not a valid MaxMind DB file (its data could not be read)"
        ) from exc
    return reader, database_type


def _check_location_database(reader: maxminddb.Reader) -> str:
    """Return the database type if the database holds locations; else raise ConfigurationError."""
    database_type = reader.metadata().database_type
    if not isinstance(database_type, str):
        database_type = ""
    lowered = database_type.lower()
    if any(marker in lowered for marker in _LOCATION_DB_MARKERS):
        return database_type
    # Not recognisable by name (e.g. ip-location-db files): look at the first records.
    for count, (_network, record) in enumerate(reader, start=1):
        if isinstance(record, dict) and (
            isinstance(record.get("country"), dict) or isinstance(record.get("country_code"), str)
        ):
            return database_type
        if count >= _PROBE_RECORDS:
            break
    raise ConfigurationError(
        f"it is a {database_type or 'untyped'!r} database, not a City or Country database "
        "(its records have no country)"
    )
