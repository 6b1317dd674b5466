"""Which non-public addresses a fetch may still reach: the operator's allow-list of CIDR ranges
(``fetch.private_networks``; ``fetch.allow_private_addresses`` is shorthand for every private
range in ``PRIVATE_NETWORKS``), minus what is never reachable, allow-list or not: link-local
addresses (cloud metadata services live there: ``169.254.169.254``, ``fe80::/10``), the other
known metadata addresses, multicast and unspecified addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PRIVATE_NETWORKS = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
)
"""Loopback, RFC 1918, carrier-grade NAT and unique-local ranges."""
NEVER_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # IPv4 link-local: EC2/GCP/Azure metadata at 169.254.169.254
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # EC2 metadata over IPv6 (inside fc00::/7)
        "100.100.100.200/32",  # Alibaba Cloud metadata (inside 100.64.0.0/10)
        "0.0.0.0/8",
        "::/128",
        "224.0.0.0/4",
        "ff00::/8",
    )
)
"""Never fetched from, whatever the allow-list says."""


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR ranges (a bare address is a range of one).

    Raises:
        ValueError: a value that is not an address or a CIDR range.
    """
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


def never_allowed(ip: IPAddress) -> bool:
    """True for addresses no allow-list can open (link-local, metadata, multicast...)."""
    return any(ip.version == net.version and ip in net for net in NEVER_NETWORKS)


def allowed(forms: list[IPAddress], networks: Iterable[IPNetwork]) -> bool:
    """True when one of ``forms`` (an address and the IPv4 address it embeds, if any) is inside
    one of ``networks`` and none of them is ``never_allowed``."""
    if any(never_allowed(ip) for ip in forms):
        return False
    return any(ip.version == net.version and ip in net for ip in forms for net in networks)
