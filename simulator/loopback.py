"""The simulator listens on loopback only, unless a caller explicitly allows otherwise (a container)."""

from __future__ import annotations

import ipaddress


def require_loopback(host: str, what: str) -> None:
    """Raise ValueError unless `host` is "localhost" or a loopback IPv4 address; `what` names the listener."""
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{what} host must be a loopback IPv4 address, got {host!r}") from None
    if address.version != 4 or not address.is_loopback:
        raise ValueError(f"{what} host must be a loopback IPv4 address, got {host!r}")
