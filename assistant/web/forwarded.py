"""The client's address behind trusted reverse proxies (Sans-I/O).

Why: per-address limits (``max_unauthenticated_per_address``) count connections by
the peer's IP address. Behind a reverse proxy every client has the proxy's address,
so a few idle token-less sockets from anyone would refuse everyone. A proxy names
the client in ``X-Forwarded-For``; that header is only believed when the peer is a
proxy the operator listed (``web.trusted_proxies``), and read from the right: each
proxy appends the address it saw, so the rightmost entry that is not itself a
trusted proxy is the one no client could have written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` → networks (an address is a /32 or /128).

    Raises:
        ValueError: an entry is neither an IP address nor a network.
    """
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or network: {entry!r}") from exc
    return tuple(out)


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None, networks: Sequence[Network]) -> bool:
    return ip is not None and any(ip in n for n in networks)


def client_address(peer: str, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The address to count a connection under.

    ``peer`` itself unless it is a trusted proxy; then the rightmost ``X-Forwarded-For``
    entry that is not a trusted proxy (``forwarded_for``: the header's values, each a
    comma-separated list). A malformed entry there is where the chain can no longer be
    believed: the peer is used. With every entry trusted, the leftmost.
    """
    if not _trusted(_ip(peer), trusted):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return peer
        if not _trusted(ip, trusted):
            return hop
    return hops[0] if hops else peer
