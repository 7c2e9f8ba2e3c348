"""Write small MaxMind DB (``.mmdb``) files for tests, with the ``mmdb_writer`` package.

Records are given as ``{"81.2.69.0/24": {...}, "2001:db8::/32": {...}}``: CIDR strings mapped to
MaxMind-shaped record dicts. By default the database is IPv6 (``ip_version`` 6) and holds each
IPv4 network twice, like MaxMind's own files: in the IPv4 subtree ``::a.b.c.d/96+n`` (where
readers look IPv4 addresses up) and as the IPv4-mapped alias ``::ffff:a.b.c.d/96+n``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPNetwork, IPSet

__all__ = ["write_city_db", "write_country_db", "write_db"]


def write_db(
    path: str | os.PathLike[str],
    records: Mapping[str, Any],
    *,
    database_type: str,
    ip_version: int = 6,
    ipv4_mapped_alias: bool = True,
) -> Path:
    """Write ``records`` to ``path`` as a MaxMind DB of ``database_type``; return the path.

    ``ip_version`` 4 gives an IPv4-only database (IPv6 keys are then rejected by the writer).
    ``ipv4_mapped_alias=False`` leaves out the ``::ffff:a.b.c.d`` aliases of IPv4 networks.
    """
    writer = MMDBWriter(
        ip_version=ip_version,
        database_type=database_type,
        languages=["en"],
        description={"en": f"mallard test {database_type} database"},
        ipv4_compatible=ip_version == 6,
    )
    # Supernets first: the writer splits an existing leaf when a subnet is inserted into it,
    # but a supernet inserted later would overwrite its subnets.
    networks = sorted(
        ((IPNetwork(cidr), record) for cidr, record in records.items()),
        key=lambda item: (item[0].version, item[0].prefixlen),
    )
    for network, record in networks:
        writer.insert_network(IPSet([network]), record)
        if ip_version == 6 and ipv4_mapped_alias and network.version == 4:
            writer.insert_network(IPSet([network.ipv6(ipv4_compatible=False)]), record)
    target = Path(path)
    writer.to_db_file(os.fspath(target))
    return target


def write_city_db(path: str | os.PathLike[str], records: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write a ``GeoLite2-City`` database (IPv6, IPv4 included and mapped); return the path."""
    return write_db(path, records, database_type="GeoLite2-City")


def write_country_db(
    path: str | os.PathLike[str], records: Mapping[str, Mapping[str, Any]]
) -> Path:
    """Write a ``GeoLite2-Country`` database (IPv6, IPv4 included and mapped); return the path."""
    return write_db(path, records, database_type="GeoLite2-Country")
