"""Session messages of the websocket protocol, both directions, as validated types.

The pipeline's own events (:mod:`core.events`) travel server → client as they
are. Around them, a session has its control messages: what a client may send
(``session-start``, ``config``, ``end-of-turn``, ``interrupt``,
``playback-stopped``, ``describe``, ``session-end``) and what the server
answers about the session itself (``session-started``, ``config-applied``,
``info``). Each is a pydantic model here, so the server, the Python client,
the browser tests and ``docs/protocol.md`` agree on one shape, and a message
that does not fit it is refused with a short reason instead of being read
field by field with ``dict.get``.

:func:`parse_client_message` is the one way in for client JSON;
:func:`parse_server_message` reads the session messages back (the client
side). Extra fields are ignored (a client may send ``client`` or ``seq`` for
its own use); a wrong type or an out-of-range number is a
:class:`ProtocolError`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from core.errors import InvalidInput

PROTOCOL_VERSION = 1

MAX_PLAYED_MS = 24 * 3600 * 1000
"""Longest playback a client may report (a day, in milliseconds): anything larger is not a duration."""
MAX_ID_CHARS = 128
"""Longest turn id a client may name (the server's own are much shorter)."""

TurnId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
PlayedMs = Annotated[int, Field(ge=0, le=MAX_PLAYED_MS)]


class ProtocolError(InvalidInput):
    """A client message whose fields do not fit its type (``code`` says which rule it broke)."""

    code = "protocol"


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The JSON object sent on the wire (``type`` first)."""
        return self.model_dump(mode="json")


# ------------------------------------------------------------------ client → server


class SessionStart(_Message):
    """The first message of every connection.

    Attributes:
        sample_rate_hz: rate of the audio the client will send, Hertz (the server's limits apply).
        barge_in: speech during a reply cancels the reply.
        token: the access token, when it is not in the URL.
    """

    type: Literal["session-start"] = "session-start"
    sample_rate_hz: StrictInt = 16000
    barge_in: bool = True
    token: str | None = None


class Config(_Message):
    """Change session options mid-session; answered by :class:`ConfigApplied`."""

    type: Literal["config"] = "config"
    barge_in: bool | None = None


class EndOfTurn(_Message):
    """Push to talk released: the turn is over now."""

    type: Literal["end-of-turn"] = "end-of-turn"


class Interrupt(_Message):
    """Cancel a reply (``turn_id``; None: every reply in progress) after ``played_ms`` of it was heard."""

    type: Literal["interrupt"] = "interrupt"
    turn_id: TurnId | None = None
    played_ms: PlayedMs | None = None


class PlaybackStopped(_Message):
    """The client stopped playing the reply of ``turn_id`` after ``played_ms`` milliseconds."""

    type: Literal["playback-stopped"] = "playback-stopped"
    turn_id: TurnId
    played_ms: PlayedMs


class Describe(_Message):
    """Ask for :class:`Info`."""

    type: Literal["describe"] = "describe"


class SessionEnd(_Message):
    """Close the session normally."""

    type: Literal["session-end"] = "session-end"


ClientMessage = SessionStart | Config | EndOfTurn | Interrupt | PlaybackStopped | Describe | SessionEnd
CLIENT_MESSAGES: dict[str, type[_Message]] = {
    m.model_fields["type"].default: m for m in (SessionStart, Config, EndOfTurn, Interrupt, PlaybackStopped, Describe, SessionEnd)
}
CLIENT_TYPES = frozenset(CLIENT_MESSAGES)
"""Control messages a client may send (text frames)."""

_FIELD_CODES = {"sample_rate_hz": "invalid-audio"}
"""Fields whose bad values have their own error code (the rest are ``protocol``)."""


def parse_client_message(data: dict[str, Any]) -> ClientMessage:
    """Validate one decoded client message (its ``type`` must be one of :data:`CLIENT_TYPES`).

    Raises:
        ProtocolError: unknown type, or a field of the wrong type or out of range; the message
            names the type and the field, never echoes more than a short reason.
    """
    kind = data.get("type")
    model = CLIENT_MESSAGES.get(kind) if isinstance(kind, str) else None
    if model is None:
        shown = repr(kind)[:40] if isinstance(kind, str) else type(kind).__name__
        raise ProtocolError(f"unknown message type {shown} (expected one of {', '.join(sorted(CLIENT_TYPES))})")
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        code = _FIELD_CODES.get(str(first["loc"][0]) if first["loc"] else "", "protocol")
        raise ProtocolError(f"{kind}: {where}: {first['msg']}", code=code) from None


# ------------------------------------------------------------------ server → client


class Limits(_Message):
    """The session's limits, as the server enforces them."""

    max_frame_bytes: int
    max_control_bytes: int
    rate_messages_per_s: float
    rate_bytes_per_s: float
    idle_timeout_s: float


class SessionStarted(_Message):
    """Answer to :class:`SessionStart`: the session exists (its id is minted by the server)."""

    type: Literal["session-started"] = "session-started"
    session_id: str
    protocol: int = PROTOCOL_VERSION
    input_sample_rate_hz: int
    pipeline_sample_rate_hz: int
    reply_sample_rate_hz: int
    barge_in: bool
    limits: Limits


class ConfigApplied(_Message):
    """Answer to :class:`Config`: the options now in force."""

    type: Literal["config-applied"] = "config-applied"
    session_id: str
    barge_in: bool


class Info(_Message):
    """Answer to :class:`Describe`: what this server runs."""

    type: Literal["info"] = "info"
    session_id: str
    protocol: int = PROTOCOL_VERSION
    backend: str
    tts: str
    reply_sample_rate_hz: int
    pipeline_sample_rate_hz: int
    client_types: list[str]
    limits: Limits


ServerSessionMessage = SessionStarted | ConfigApplied | Info
SERVER_MESSAGES: dict[str, type[_Message]] = {m.model_fields["type"].default: m for m in (SessionStarted, ConfigApplied, Info)}


def parse_server_message(data: dict[str, Any]) -> ServerSessionMessage:
    """Validate a session message received from a server.

    Raises:
        ProtocolError: not a session message, or a field that does not fit.
    """
    model = SERVER_MESSAGES.get(str(data.get("type")))
    if model is None:
        raise ProtocolError(f"not a session message: {str(data.get('type'))[:40]!r}")
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ProtocolError(f"{data.get('type')}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
