"""The client's address behind trusted reverse proxies (assistant/web/forwarded.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from assistant.web.forwarded import client_address, parse_networks
from assistant.web.settings import WebSettings

PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8"])


@pytest.mark.parametrize("peer, forwarded, expected", [
    ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # not from a proxy: the header is anyone's to write
    ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),  # the proxy names its client
    ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # a client-written entry on the left is not believed
    ("127.0.0.1", ["198.51.100.1, 10.1.2.3"], "198.51.100.1"),  # a chain of trusted proxies is skipped
    ("127.0.0.1", ["198.51.100.1", "10.1.2.3"], "198.51.100.1"),  # the header repeated counts as one list
    ("127.0.0.1", ["not-an-ip, 198.51.100.1"], "198.51.100.1"),
    ("127.0.0.1", ["198.51.100.1, garbage"], "127.0.0.1"),  # the chain breaks where it cannot be believed
    ("127.0.0.1", ["10.9.9.9"], "10.9.9.9"),  # every hop trusted: the leftmost
    ("127.0.0.1", [], "127.0.0.1"),
    ("::1", ["198.51.100.1"], "::1"),  # IPv6 loopback is not in the list
])
def test_client_address(peer: str, forwarded: list[str], expected: str) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected


def test_no_trusted_proxy_means_the_header_is_ignored() -> None:
    assert client_address("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"


def test_settings_refuse_a_malformed_proxy_entry() -> None:
    assert WebSettings(trusted_proxies=["10.0.0.0/8", "::1"]).trusted_proxies == ["10.0.0.0/8", "::1"]
    with pytest.raises(ValidationError, match="not an IP address or network: 'proxy.local'"):
        WebSettings(trusted_proxies=["proxy.local"])
