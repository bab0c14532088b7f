"""Where a fleet's miners are: addresses, address ranges and named entries expanded into one list.

A fleet lists its miners as "10.20.0.11", "10.20.0.12:4029", a range "10.20.0.100-10.20.0.199" (IPv4,
inclusive) or a table {address = "10.20.0.13", name = "rack1-13"}. The device tag is the name if given, else
the address (with the port only when it is not the fleet's).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_RANGE = 4096
MAX_FLEET = 65_536
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


@dataclass(frozen=True, slots=True)
class MinerAddress:
    """One miner to poll: the name its points carry, and where its API listens."""

    name: str
    host: str
    port: int


def split_host_port(address: str, default_port: int) -> tuple[str, int]:
    """ "host", "host:port", "[v6]" or "[v6]:port" -> (host, port); ValueError with the reason otherwise."""
    address = address.strip()
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        ipaddress.IPv6Address(host)
        if not rest:
            return host, default_port
        if not rest.startswith(":"):
            raise ValueError(f"{address!r}: expected [ipv6]:port")
        return host, _port(rest[1:], address)
    host, colon, port = address.partition(":")
    if not colon:
        return _host(host, address), default_port
    return _host(host, address), _port(port, address)


def _host(host: str, address: str) -> str:
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        if _HOSTNAME.match(host) and not host.replace(".", "").isdigit():
            return host
    raise ValueError(f"{address!r}: not an IPv4 address or host name")


def _port(text: str, address: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65_535:
        raise ValueError(f"{address!r}: the port must be a number from 1 to 65535")
    return int(text)


def expand_range(spec: str) -> list[str]:
    """ "10.0.0.1-10.0.0.9" -> every IPv4 address from the first to the last, inclusive."""
    first_text, _, last_text = spec.partition("-")
    try:
        first, last = ipaddress.IPv4Address(first_text.strip()), ipaddress.IPv4Address(last_text.strip())
    except ValueError:
        raise ValueError(f"{spec!r}: a range is two IPv4 addresses joined by '-'") from None
    if last < first:
        raise ValueError(f"{spec!r}: the range ends before it starts")
    if int(last) - int(first) + 1 > MAX_RANGE:
        raise ValueError(f"{spec!r}: more than {MAX_RANGE} addresses in one range; split it")
    return [str(ipaddress.IPv4Address(n)) for n in range(int(first), int(last) + 1)]


def miner_addresses(entries: Sequence[str | tuple[str, str]], default_port: int) -> list[MinerAddress]:
    """Expand a fleet's entries (address strings, or (address, name) pairs) in order; ValueError on bad ones."""
    miners: list[MinerAddress] = []
    for entry in entries:
        address, name = (entry, "") if isinstance(entry, str) else entry
        if "-" in address and not name and address.replace("-", "").replace(".", "").strip().isdigit():
            hosts = [(host, default_port) for host in expand_range(address)]
        else:
            hosts = [split_host_port(address, default_port)]
        for host, port in hosts:
            label = name or (host if port == default_port else f"{host}:{port}")
            miners.append(MinerAddress(label, host, port))
        if len(miners) > MAX_FLEET:
            raise ValueError(f"more than {MAX_FLEET} miners in one fleet; split it")
    seen: dict[tuple[str, int], str] = {}
    names: set[str] = set()
    for miner in miners:
        if (miner.host, miner.port) in seen:
            raise ValueError(f"{miner.host}:{miner.port} is listed twice")
        if miner.name in names:
            raise ValueError(f"miner name {miner.name!r} is used twice")
        seen[(miner.host, miner.port)] = miner.name
        names.add(miner.name)
    return miners
