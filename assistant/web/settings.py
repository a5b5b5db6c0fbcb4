"""Typed settings of the web transport; every limit is on by default.

Meant to become the ``web`` section of :class:`core.settings.Settings`
(``QUICKTURN_WEB__MAX_SESSIONS=4`` etc.); until then :func:`web_settings`
reads the ``web:`` mapping of the config file and ``QUICKTURN_WEB__*``
variables itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, field_validator

from assistant.web.forwarded import parse_networks


class WebSettings(BaseModel):
    """Network, security and limit settings of ``quickturn serve web``."""

    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0 exposes it to the network).")
    port: int = Field(8765, description="TCP port for the page (HTTP) and the websocket (same port).")
    token: str | None = Field(
        None, description="Access token clients must present; None generates a random one at start (printed)."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Extra allowed Origin values (scheme://host:port); the server's own http(s) origins on "
        "localhost / 127.0.0.1 / --host are always allowed.",
    )
    allow_missing_origin: bool = Field(
        True, description="Accept clients that send no Origin header (non-browser clients; still need the token)."
    )
    max_frame_bytes: int = Field(65536, description="Largest binary audio message accepted (bytes, header included).")
    max_control_bytes: int = Field(16384, description="Largest JSON control message accepted (bytes).")
    max_message_bytes: int = Field(
        1 << 20, description="Hard cap enforced by the websocket layer itself (bytes); above it the library closes (1009)."
    )
    rate_messages_per_s: float = Field(100.0, description="Sustained messages per second per connection.")
    rate_burst_messages: int = Field(200, description="Message burst allowed above the sustained rate.")
    rate_bytes_per_s: float = Field(262144.0, description="Sustained bytes per second per connection (audio in).")
    rate_burst_bytes: int = Field(1 << 20, description="Byte burst allowed above the sustained rate.")
    max_sessions: int = Field(
        16, description="Concurrent authenticated websocket sessions; more are refused (close 1013). A connection "
        "counts only once its token is checked, so token-less sockets cannot take the places."
    )
    max_unauthenticated_per_address: int = Field(
        8, description="Connections from one IP address that have not shown the token yet (no ?token= in the URL, "
        "session-start not received); more are refused (close 1013)."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="IP addresses or networks (CIDR) of reverse proxies in front of the server. For a connection "
        "from one of them the client's address is read from X-Forwarded-For (the rightmost entry that is not a "
        "trusted proxy), so per-address limits count each client, not the proxy (assistant/web/forwarded.py). "
        "Empty: the peer's address is the client's, and X-Forwarded-For is ignored.",
    )
    auth_timeout_s: float = Field(
        5.0, description="Seconds a connection without ?token= has to send session-start with its token."
    )
    handshake_timeout_s: float = Field(
        3.0, description="Seconds for the opening handshake (HTTP upgrade, and TLS when on); a client that sends "
        "nothing, or speaks TLS to the plain port, is dropped after it."
    )
    start_timeout_s: float = Field(10.0, description="Seconds a new connection has to send session-start.")
    audio_realtime_factor: float = Field(
        1.5, description="Audio a session may send, in multiples of real time at its declared sample_rate_hz "
        "(token bucket in audio seconds); audio beyond it is dropped (non-fatal rate-limited error, at most one a second)."
    )
    audio_burst_s: float = Field(
        8.0, description="Seconds of audio a session may send at once above the real-time budget (a file sent "
        "unpaced, network jitter)."
    )
    audio_abuse_close_s: float = Field(
        30.0, description="A session that keeps sending over its audio budget for this many seconds (drops less "
        "than a second apart) is closed with rate-limited (1008)."
    )
    idle_timeout_s: float = Field(300.0, description="Seconds without any client message before the session closes.")
    min_sample_rate_hz: int = 8000
    max_sample_rate_hz: int = 96000
    certfile: Path | None = Field(None, description="TLS certificate (PEM); browsers need https for a non-local microphone.")
    keyfile: Path | None = None

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        parse_networks(value)  # a typo stops the start with its entry named, not the first connection
        return value


def web_settings(config_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> WebSettings:
    """The ``web`` section of the config file, then ``QUICKTURN_WEB__*`` variables, then ``overrides``."""
    values: dict[str, Any] = {}
    path = config_file or os.environ.get("QUICKTURN_CONFIG")
    if path and Path(path).is_file():
        p = Path(path)
        text = p.read_text()
        if p.suffix == ".json":
            data = json.loads(text)
        elif p.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text) or {}
        values.update(dict(data.get("web") or {}))
    prefix = "QUICKTURN_WEB__"
    for key, value in os.environ.items():
        if key.startswith(prefix):
            name = key[len(prefix):].lower()
            values[name] = json.loads(value) if name == "allowed_origins" and value.startswith("[") else value
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return WebSettings(**values)
