"""Tests for mallard._enrich.geo: GeoIP lookups against small generated MaxMind DB files."""

from __future__ import annotations

import dataclasses
import gc
import os
import random
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mallard._enrich.geo import NO_LOCATION, GeoLookup, GeoPrecision, Location
from mallard._errors import ConfigurationError
from tests.mmdb import write_city_db, write_country_db, write_db

LONDON_IP = "81.2.69.142"
LONDON_IP_HEX_MAPPED = "::ffff:5102:458e"  # ::ffff:81.2.69.142 written in hex
BOSTON_IP = "2001:db8::1"
NO_CITY_IP = "2.125.160.218"
LINKOPING_IP = "89.160.20.130"
NON_EN_CITY_IP = "202.196.224.5"
PROXY_IP = "67.43.156.7"
FLAT_IP = "5.6.7.8"

CITY_RECORDS: dict[str, dict[str, Any]] = {
    "81.2.69.0/24": {
        "city": {"geoname_id": 2643743, "names": {"en": "London", "de": "London"}},
        "continent": {"code": "EU", "names": {"en": "Europe"}},
        "country": {"geoname_id": 2635167, "iso_code": "GB", "names": {"en": "United Kingdom"}},
        "location": {"accuracy_radius": 10, "latitude": 51.5142, "longitude": -0.0931},
        "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
    },
    "2001:db8::/32": {
        "city": {"names": {"en": "Boston"}},
        "country": {"iso_code": "US", "names": {"en": "United States"}},
        "subdivisions": [{"iso_code": "MA", "names": {"en": "Massachusetts"}}],
    },
    # Region but no city.
    "2.125.160.216/29": {
        "country": {"iso_code": "GB"},
        "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
    },
    # Non-ASCII names; the first subdivision is the region.
    "89.160.20.128/25": {
        "city": {"names": {"en": "Linköping", "sv": "Linköping"}},
        "country": {"iso_code": "SE", "names": {"en": "Sweden"}},
        "subdivisions": [
            {"iso_code": "E", "names": {"en": "Östergötland County"}},
            {"iso_code": "X", "names": {"en": "Second level"}},
        ],
    },
    # City without an English name.
    "202.196.224.0/20": {
        "city": {"names": {"de": "Nur Deutsch"}},
        "country": {"iso_code": "PH"},
    },
    # Anonymous proxy style: registered country only, no location.
    "67.43.156.0/24": {"registered_country": {"iso_code": "BT"}, "traits": {"is_anonymous": True}},
}

COUNTRY_RECORDS: dict[str, dict[str, Any]] = {
    "81.2.69.0/24": {"country": {"iso_code": "GB", "names": {"en": "United Kingdom"}}},
    "2001:db8::/32": {"country": {"iso_code": "US", "names": {"en": "United States"}}},
}

IPV4_PATTERN = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")


@pytest.fixture
def open_lookup() -> Iterator[Callable[..., GeoLookup]]:
    """Build GeoLookups that are all closed at teardown."""
    opened: list[GeoLookup] = []

    def factory(path: str | os.PathLike[str] | None, precision: Any = "city") -> GeoLookup:
        lookup = GeoLookup(path, precision)
        opened.append(lookup)
        return lookup

    yield factory
    for lookup in opened:
        lookup.close()


@pytest.fixture
def city_db(tmp_path: Path) -> Path:
    return write_city_db(tmp_path / "GeoLite2-City.mmdb", CITY_RECORDS)


@pytest.fixture
def city(open_lookup: Callable[..., GeoLookup], city_db: Path) -> GeoLookup:
    return open_lookup(city_db)


def assert_clean_message(error: ConfigurationError) -> None:
    message = str(error)
    assert not IPV4_PATTERN.search(message), message
    for fragment in ("81.2.69", "2001:db8", "5.6.7", LONDON_IP, BOSTON_IP):
        assert fragment not in message


# ---------------------------------------------------------------- City database


def test_city_db_ipv4(city: GeoLookup) -> None:
    assert city.loaded
    assert city.database_type == "GeoLite2-City"
    assert city.lookup(LONDON_IP) == Location("GB", "England", "London")


def test_city_db_ipv6(city: GeoLookup) -> None:
    assert city.lookup(BOSTON_IP) == Location("US", "Massachusetts", "Boston")
    assert city.lookup("2001:0db8:0000:0000:0000:0000:0000:00ff") == Location(
        "US", "Massachusetts", "Boston"
    )


def test_city_db_partial_records(city: GeoLookup) -> None:
    assert city.lookup(NO_CITY_IP) == Location("GB", "England", None)
    assert city.lookup(LINKOPING_IP) == Location("SE", "Östergötland County", "Linköping")
    assert city.lookup(NON_EN_CITY_IP) == Location("PH", None, None)


def test_record_without_country_is_no_location(city: GeoLookup) -> None:
    assert city.lookup(PROXY_IP) is NO_LOCATION


def test_path_may_be_str_or_pathlike(open_lookup: Callable[..., GeoLookup], city_db: Path) -> None:
    assert open_lookup(str(city_db)).lookup(LONDON_IP).city == "London"
    assert open_lookup(city_db).lookup(LONDON_IP).city == "London"


@pytest.mark.parametrize(
    ("precision", "london", "boston"),
    [
        ("city", Location("GB", "England", "London"), Location("US", "Massachusetts", "Boston")),
        ("region", Location("GB", "England", None), Location("US", "Massachusetts", None)),
        ("country", Location("GB", None, None), Location("US", None, None)),
        ("none", NO_LOCATION, NO_LOCATION),
    ],
)
def test_precision(
    open_lookup: Callable[..., GeoLookup],
    city_db: Path,
    precision: GeoPrecision,
    london: Location,
    boston: Location,
) -> None:
    lookup = open_lookup(city_db, precision)
    assert lookup.loaded
    assert lookup.lookup(LONDON_IP) == london
    assert lookup.lookup(BOSTON_IP) == boston
    assert lookup.lookup(f"::ffff:{LONDON_IP}") == london


def test_precision_none_returns_the_shared_no_location(
    open_lookup: Callable[..., GeoLookup], city_db: Path
) -> None:
    assert open_lookup(city_db, "none").lookup(LONDON_IP) is NO_LOCATION


def test_default_precision_is_city(open_lookup: Callable[..., GeoLookup], city_db: Path) -> None:
    lookup = GeoLookup(city_db)
    try:
        assert lookup.lookup(LONDON_IP).city == "London"
    finally:
        lookup.close()


# ------------------------------------------------------------- Country database


def test_country_db(open_lookup: Callable[..., GeoLookup], tmp_path: Path) -> None:
    path = write_country_db(tmp_path / "GeoLite2-Country.mmdb", COUNTRY_RECORDS)
    lookup = open_lookup(path)
    assert lookup.database_type == "GeoLite2-Country"
    assert lookup.lookup(LONDON_IP) == Location("GB", None, None)
    assert lookup.lookup(BOSTON_IP) == Location("US", None, None)
    assert lookup.lookup(f"::ffff:{LONDON_IP}") == Location("GB", None, None)
    assert lookup.lookup("10.1.2.3") is NO_LOCATION


@pytest.mark.parametrize("precision", ["city", "region", "country"])
def test_country_db_any_precision(
    open_lookup: Callable[..., GeoLookup], tmp_path: Path, precision: GeoPrecision
) -> None:
    path = write_country_db(tmp_path / "country.mmdb", COUNTRY_RECORDS)
    assert open_lookup(path, precision).lookup(BOSTON_IP) == Location("US", None, None)


# ----------------------------------------------- ip-location-db style (flat) database


@pytest.fixture
def flat_db(tmp_path: Path) -> Path:
    # ip-location-db ships IPv4-only files whose database_type names no schema.
    return write_db(
        tmp_path / "dbip-ipv4.mmdb",
        {
            "5.6.7.0/24": {
                "country_code": "de",
                "state1": "Berlin",
                "city": "Berlin",
                "latitude": 52.52,
                "longitude": 13.4,
            },
            "5.6.8.0/24": {"country_code": "FR"},
        },
        database_type="ip-location-db",
        ip_version=4,
    )


def test_flat_country_code_db(open_lookup: Callable[..., GeoLookup], flat_db: Path) -> None:
    lookup = open_lookup(flat_db)
    assert lookup.database_type == "ip-location-db"
    assert lookup.lookup(FLAT_IP) == Location("DE", "Berlin", "Berlin")
    assert lookup.lookup("5.6.8.1") == Location("FR", None, None)
    assert lookup.lookup("5.6.9.1") is NO_LOCATION
    # An IPv6 address in an IPv4-only database is a miss, not an error.
    assert lookup.lookup(BOSTON_IP) is NO_LOCATION
    # What a dual-stack socket reports for an IPv4 client.
    assert lookup.lookup(f"::ffff:{FLAT_IP}") == Location("DE", "Berlin", "Berlin")


@pytest.mark.parametrize(
    ("precision", "expected"),
    [
        ("region", Location("DE", "Berlin", None)),
        ("country", Location("DE", None, None)),
        ("none", NO_LOCATION),
    ],
)
def test_flat_db_precision(
    open_lookup: Callable[..., GeoLookup],
    flat_db: Path,
    precision: GeoPrecision,
    expected: Location,
) -> None:
    assert open_lookup(flat_db, precision).lookup(FLAT_IP) == expected


def test_flat_country_db_ipv6(open_lookup: Callable[..., GeoLookup], tmp_path: Path) -> None:
    path = write_db(
        tmp_path / "geo-whois-asn-country.mmdb",
        {"81.2.69.0/24": {"country_code": "GB"}, "2001:db8::/32": {"country_code": "US"}},
        database_type="ip-location-db geo-whois-asn",
    )
    lookup = open_lookup(path)
    assert lookup.lookup(LONDON_IP) == Location("GB", None, None)
    assert lookup.lookup(BOSTON_IP) == Location("US", None, None)


# ------------------------------------------------------------ inputs that miss


@pytest.mark.parametrize(
    "ip",
    [
        None,
        "",
        "unknown",
        "not-an-ip",
        "81.2.69",
        "81.2.69.256",
        "999.1.1.1",
        f" {LONDON_IP}",
        f"{LONDON_IP} ",
        f"{LONDON_IP}:443",
        "[2001:db8::1]",
        "2001:db8::1::2",
        "::ffff:",
        "::ffff:not-an-ip",
        "::ffff:1.2.3.4",  # mapped, but the address is not listed
        "10.0.0.1",
        "192.168.1.20",
        "127.0.0.1",
        "::1",
        "fe80::1%eth0",
        "8.8.8.8",
        "2a00:1450::1",
    ],
)
def test_unknown_inputs_give_no_location(city: GeoLookup, ip: str | None) -> None:
    assert city.lookup(ip) is NO_LOCATION


@pytest.mark.parametrize("ip", [b"81.2.69.142", 1359103374, object()])
def test_non_string_inputs_never_raise(city: GeoLookup, ip: Any) -> None:
    assert city.lookup(ip) is NO_LOCATION


@pytest.mark.parametrize(
    "ip",
    [f"::ffff:{LONDON_IP}", f"::FFFF:{LONDON_IP}", LONDON_IP_HEX_MAPPED, f"::{LONDON_IP}"],
)
def test_ipv4_mapped_ipv6(city: GeoLookup, ip: str) -> None:
    assert city.lookup(ip) == Location("GB", "England", "London")


@pytest.mark.parametrize(
    "ip", [f"::ffff:{LONDON_IP}", f"0:0:0:0:0:FFFF:{LONDON_IP}", LONDON_IP_HEX_MAPPED]
)
def test_ipv4_mapped_without_alias_in_the_database(
    open_lookup: Callable[..., GeoLookup], tmp_path: Path, ip: str
) -> None:
    path = write_db(
        tmp_path / "no-alias.mmdb",
        CITY_RECORDS,
        database_type="GeoLite2-City",
        ipv4_mapped_alias=False,
    )
    assert open_lookup(path).lookup(ip) == Location("GB", "England", "London")


def test_malformed_records_never_raise(
    open_lookup: Callable[..., GeoLookup], tmp_path: Path
) -> None:
    path = write_db(
        tmp_path / "odd.mmdb",
        {
            "1.0.0.0/24": {"country": "GB"},
            "1.0.1.0/24": {"country": {"iso_code": 44}},
            "1.0.2.0/24": {
                "country": {"iso_code": "FR"},
                "subdivisions": [],
                "city": {"geoname_id": 1},
            },
            "1.0.3.0/24": {
                "country": {"iso_code": "FR"},
                "subdivisions": [{"names": {"en": 5}}],
                "city": {"names": {"en": ""}},
            },
            "1.0.4.0/24": {"country": {"iso_code": "FR"}, "subdivisions": "Île-de-France"},
            "1.0.5.0/24": {"country_code": 7, "state1": ["x"], "city": {"names": {"en": "X"}}},
            "1.0.6.0/24": {"country": {"iso_code": "FR"}, "city": {"names": "Paris"}},
            "1.0.7.0/24": "a bare string",
            "1.0.8.0/24": ["a", "list"],
        },
        database_type="GeoLite2-City",
    )
    lookup = open_lookup(path)
    assert lookup.lookup("1.0.0.1") is NO_LOCATION
    assert lookup.lookup("1.0.1.1") is NO_LOCATION
    assert lookup.lookup("1.0.2.1") == Location("FR", None, None)
    assert lookup.lookup("1.0.3.1") == Location("FR", None, None)
    assert lookup.lookup("1.0.5.1") is NO_LOCATION
    for ip in ("1.0.4.1", "1.0.6.1", "1.0.7.1", "1.0.8.1"):
        assert isinstance(lookup.lookup(ip), Location)


# --------------------------------------------------------- disabled and closed


@pytest.mark.parametrize("precision", ["city", "region", "country", "none"])
def test_disabled_lookup(precision: GeoPrecision) -> None:
    lookup = GeoLookup(None, precision)
    assert not lookup.loaded
    assert lookup.database_type is None
    assert lookup.lookup(LONDON_IP) is NO_LOCATION
    assert lookup.lookup(None) is NO_LOCATION
    lookup.close()
    lookup.close()


def test_close(city_db: Path) -> None:
    lookup = GeoLookup(city_db)
    assert lookup.lookup(LONDON_IP).country_code == "GB"
    lookup.close()
    assert not lookup.loaded
    assert lookup.database_type is None
    assert lookup.lookup(LONDON_IP) is NO_LOCATION
    lookup.close()  # idempotent


def test_concurrent_lookups(city: GeoLookup) -> None:
    ips = [LONDON_IP, BOSTON_IP, "10.0.0.1", "unknown", LINKOPING_IP] * 200
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(city.lookup, ips))
    assert results == [city.lookup(ip) for ip in ips]
    assert results[0] == Location("GB", "England", "London")


def test_no_ip_is_kept_after_lookup(city: GeoLookup) -> None:
    ip = "".join(["81.2.69.", "142"])  # a fresh object, not an interned constant
    assert city.lookup(ip).city == "London"
    referents = gc.get_referents(city)
    assert not any(value == ip for value in referents if isinstance(value, str))
    assert not hasattr(city, "__dict__")


def test_location_is_frozen() -> None:
    location = Location("GB", "England", "London")
    with pytest.raises(dataclasses.FrozenInstanceError):
        location.city = "Paris"  # type: ignore[misc]
    assert not hasattr(location, "__dict__")
    assert Location(None, None, None) == NO_LOCATION


# --------------------------------------------------------- configuration errors


def _corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.mmdb"
    path.write_bytes(random.Random(1234).randbytes(4096))
    return path


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "does-not-exist.mmdb"


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.mmdb"
    path.write_bytes(b"")
    return path


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "a-directory.mmdb"
    path.mkdir()
    return path


def _truncated(tmp_path: Path) -> Path:
    source = write_city_db(tmp_path / "full.mmdb", CITY_RECORDS)
    data = source.read_bytes()
    path = tmp_path / "truncated.mmdb"
    path.write_bytes(data[: len(data) // 2])
    return path


def _text_file(tmp_path: Path) -> Path:
    path = tmp_path / "GeoLite2-City.csv"
    path.write_text("network,geoname_id\n81.2.69.0/24,2643743\n", encoding="utf-8")
    return path


def _asn_db(tmp_path: Path) -> Path:
    return write_db(
        tmp_path / "GeoLite2-ASN.mmdb",
        {
            "81.2.69.0/24": {
                "autonomous_system_number": 20712,
                "autonomous_system_organization": "X",
            }
        },
        database_type="GeoLite2-ASN",
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_corrupt, "not a valid MaxMind DB"),
        (_missing, "does not exist"),
        (_empty, "empty"),
        (_directory, "directory"),
        (_truncated, "not a valid MaxMind DB"),
        (_text_file, "not a valid MaxMind DB"),
        (_asn_db, "GeoLite2-ASN"),
    ],
    ids=["corrupt", "missing", "empty", "directory", "truncated", "text", "asn"],
)
def test_unusable_database_raises_configuration_error(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(ConfigurationError) as info:
        GeoLookup(path)
    error = info.value
    message = str(error)
    assert "geoip_db_path" in message
    assert str(path) in message
    assert reason in message
    assert "unset" in message  # says what to do
    assert error.code == "configuration"
    assert isinstance(error, ValueError)
    assert_clean_message(error)


def test_unusable_database_raises_for_every_precision(tmp_path: Path) -> None:
    precisions: tuple[GeoPrecision, ...] = ("city", "region", "country", "none")
    for precision in precisions:
        with pytest.raises(ConfigurationError, match="geoip_db_path"):
            GeoLookup(_missing(tmp_path), precision)


@pytest.mark.parametrize("precision", ["street", "", "City", " city", "exact", None, 3])
def test_bad_precision(tmp_path: Path, city_db: Path, precision: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        GeoLookup(city_db, precision)
    message = str(info.value)
    assert "geoip_precision" in message
    for accepted in ("'city'", "'region'", "'country'", "'none'"):
        assert accepted in message
    assert_clean_message(info.value)


def test_bad_precision_is_reported_before_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="geoip_precision"):
        GeoLookup(_missing(tmp_path), "street")  # type: ignore[arg-type]


# --------------------------------------------------------- built-in countries (no database)
# Addresses whose registry allocation is long-standing (Google's 8.8.8.8 and 2001:4860::/32 by ARIN to
# the US; 81.2.69.142 by RIPE NCC to GB; 1.0.16.1 by APNIC to JP).
BUILTIN_CASES = [("8.8.8.8", "US"), ("2001:4860:4860::8888", "US"), (LONDON_IP, "GB"), ("1.0.16.1", "JP"),
                 ("::ffff:8.8.8.8", "US"), (LONDON_IP_HEX_MAPPED, "GB")]


@pytest.mark.parametrize(("ip", "country"), BUILTIN_CASES)
@pytest.mark.parametrize("precision", ["city", "region", "country"])
def test_builtin_countries_without_a_database(ip: str, country: str, precision: GeoPrecision) -> None:
    """Without a database the country (only: the registries know no regions or cities) comes from
    iptocc's embedded allocation data, IPv4, IPv6 and IPv4-mapped IPv6 alike."""
    lookup = GeoLookup(None, precision, builtin_countries=True)
    assert lookup.locates and not lookup.loaded
    assert lookup.database_type == "iptocc"
    assert lookup.lookup(ip) == Location(country, None, None)


@pytest.mark.parametrize("ip", [None, "", "unknown", "garbage", "127.0.0.1", "10.1.2.3", "192.168.0.1",
                                "::1", "fe80::1", "999.1.1.1", "8.8.8.8\x00", "x" * 1000])
def test_builtin_countries_know_no_private_or_bad_address(ip: str | None) -> None:
    assert GeoLookup(None, builtin_countries=True).lookup(ip) is NO_LOCATION


def test_builtin_countries_follow_precision_none_and_close() -> None:
    assert not GeoLookup(None, "none", builtin_countries=True).locates
    assert GeoLookup(None, "none", builtin_countries=True).lookup("8.8.8.8") is NO_LOCATION
    lookup = GeoLookup(None, builtin_countries=True)
    lookup.close()
    assert not lookup.locates and lookup.lookup("8.8.8.8") is NO_LOCATION


def test_a_database_wins_over_the_builtin_countries(city_db: Path) -> None:
    lookup = GeoLookup(city_db, builtin_countries=True)
    assert lookup.lookup(LONDON_IP) == Location("GB", "England", "London")
    assert lookup.lookup("8.8.8.8") is NO_LOCATION  # not in the database: no guess from the registries
    lookup.close()


CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/124.0.0.0 Safari/537.36")


@pytest.mark.parametrize("builtin", [True, False])
def test_a_default_mallard_stores_countries(tmp_path: Path, builtin: bool) -> None:
    """``Mallard()`` with no GeoIP setting stores the country of a public address (and no IP), unless
    ``geoip_builtin_countries`` is off."""
    import pyarrow.parquet as pq

    import mallard

    data = tmp_path / "data"
    with mallard.Mallard(data_dir=data, **({} if builtin else {"geoip_builtin_countries": False})) as m:
        assert m.geoip_source == ("iptocc" if builtin else None)
        for ip in ("8.8.8.8", LONDON_IP, "10.0.0.7"):
            m.track("pageview", site="example.com", url="https://example.com/", ip=ip, user_agent=CHROME)
        assert m.flush() == 3
    rows = [r for f in sorted((data / "events").rglob("*.parquet"))
            for r in pq.read_table(f, columns=["country_code", "region"]).to_pylist()]
    assert sorted((r["country_code"] for r in rows), key=str) == (
        ["GB", None, "US"] if builtin else [None, None, None])
    assert {r["region"] for r in rows} == {None}
    stored = b"".join(p.read_bytes() for p in (data / "events").rglob("*.parquet"))
    assert b"8.8.8.8" not in stored and LONDON_IP.encode() not in stored
