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

:func:`load_json_object` is the layer below: it turns the raw text of a control
message (or the header of a binary audio frame) into a JSON object, refusing
before or while parsing what could cost the server more than the message is
worth or break it later: nesting deeper than :data:`MAX_JSON_DEPTH` (checked by a
cheap scan *before* ``json.loads`` recurses), numbers that are not finite or do
not fit in 64 bits (``1e999``, ``NaN``, 5 000-digit integers), lone UTF-16
surrogates (``"\\ud800"``, which cannot be encoded back to UTF-8) and bytes that
are not UTF-8. Every refusal is a :class:`BadJson` with a short fixed message:
the client's input is never echoed back.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from core.errors import InvalidInput

PROTOCOL_VERSION = 1

MAX_PLAYED_MS = 24 * 3600 * 1000
"""Longest playback a client may report (a day, in milliseconds): anything larger is not a duration."""
MAX_ID_CHARS = 128
"""Longest turn id a client may name (the server's own are much shorter)."""
MAX_TOKEN_CHARS = 512
"""Longest access token a client may present (tokens are 22 characters by default)."""
MAX_SAMPLE_RATE_HZ = 1_000_000
"""Schema bound of ``sample_rate_hz``; the server's own limits (8–96 kHz by default) are narrower."""
MAX_JSON_DEPTH = 8
"""Deepest nesting of arrays/objects accepted in a client message (the protocol's own messages are flat)."""
MAX_JSON_INT = (1 << 63) - 1
"""Integers must fit in a signed 64-bit value (SQLite, numpy): larger ones are refused as bad JSON."""
MAX_REASON_CHARS = 160
"""Longest error message built from a validation failure (it travels in an ``error`` event)."""


class ProtocolError(InvalidInput):
    """A client message whose fields do not fit its type (``code`` says which rule it broke)."""

    code = "protocol"


class BadJson(ProtocolError):
    """Text that is not one bounded, valid JSON object (close 1007: the data itself is bad)."""

    code = "bad-json"


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _utf8(value: str) -> str:
    """Refuse strings that cannot be encoded as UTF-8 (lone surrogates from a ``\\ud800`` escape)."""
    if _SURROGATE.search(value):
        raise ValueError("not valid UTF-8 text")
    return value


Utf8 = Annotated[StrictStr, AfterValidator(_utf8)]
TurnId = Annotated[Utf8, Field(min_length=1, max_length=MAX_ID_CHARS)]
PlayedMs = Annotated[StrictInt, Field(ge=0, le=MAX_PLAYED_MS)]
Token = Annotated[Utf8, Field(max_length=MAX_TOKEN_CHARS)]
SampleRate = Annotated[StrictInt, Field(ge=1, le=MAX_SAMPLE_RATE_HZ)]


# ------------------------------------------------------------------ raw JSON, bounded

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _BadNumber(ValueError):
    """A number ``json.loads`` would accept but the protocol does not (raised by the parse hooks)."""


def _bounded_int(digits: str) -> int:
    if len(digits) > 20:  # checked before int(): a 5 000-digit literal is refused without converting it
        raise _BadNumber(digits[:8])
    value = int(digits)
    if abs(value) > MAX_JSON_INT:
        raise _BadNumber(digits[:8])
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(text[:8])
    return value


def _no_constant(name: str) -> float:
    raise _BadNumber(name)  # NaN, Infinity, -Infinity: not JSON, though Python's json accepts them


def json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of the arrays/objects in ``text``, counted without parsing (stops past ``limit``).

    String literals are skipped first, so brackets inside strings do not count. Cheap (two
    regex passes and a loop over the brackets only), so ``"[" * 1000`` is refused before
    ``json.loads`` would recurse into it.
    """
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def _has_lone_surrogate(value: Any) -> bool:
    """True if any string (key or value) in the parsed JSON holds a lone surrogate."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def load_json_object(raw: str | bytes, what: str = "control message") -> dict[str, Any]:
    """Parse the text of one client message into a JSON object, within the protocol's bounds.

    ``raw`` bytes must be UTF-8 (not the UTF-16/32 that ``json.loads`` would guess).

    Raises:
        BadJson: not UTF-8, nested deeper than :data:`MAX_JSON_DEPTH`, not JSON, a number that is not
            finite or beyond 64 bits, a lone surrogate in a string, or not an object.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadJson(f"{what} is not valid UTF-8") from None
    if _SURROGATE.search(raw):  # a str given directly (websocket text frames are decoded UTF-8 and have none)
        raise BadJson(f"{what} is not valid UTF-8")
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise BadJson(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(raw, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant)
    except _BadNumber:
        raise BadJson(f"{what} has a number that is not finite or does not fit in 64 bits") from None
    except json.JSONDecodeError as exc:
        raise BadJson(f"{what} is not valid JSON: {exc.msg} at character {exc.pos}") from None
    except (ValueError, RecursionError):
        raise BadJson(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadJson(f"{what} must be a JSON object")
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(value):
        raise BadJson(f"{what} has a string that is not valid UTF-8 (a lone surrogate escape)")
    return value


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
    sample_rate_hz: SampleRate = 16000
    barge_in: StrictBool = True
    token: Token | None = None


class Config(_Message):
    """Change session options mid-session; answered by :class:`ConfigApplied`."""

    type: Literal["config"] = "config"
    barge_in: StrictBool | None = None


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


class AudioHeader(_Message):
    """The JSON header of a client's binary audio frame (``seq`` and other fields: the client's own, ignored)."""

    type: Literal["audio-chunk"] = "audio-chunk"


ClientMessage = SessionStart | Config | EndOfTurn | Interrupt | PlaybackStopped | Describe | SessionEnd
CLIENT_MESSAGES: dict[str, type[_Message]] = {
    m.model_fields["type"].default: m for m in (SessionStart, Config, EndOfTurn, Interrupt, PlaybackStopped, Describe, SessionEnd)
}
CLIENT_TYPES = frozenset(CLIENT_MESSAGES)
"""Control messages a client may send (text frames)."""

_FIELD_CODES = {"sample_rate_hz": "invalid-audio"}
"""Fields whose bad values have their own error code (the rest are ``protocol``)."""


_SHOWN_TYPE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
"""A ``type`` harmless to name back in an error message; any other is described, not echoed."""


def _shown_type(kind: object) -> str:
    if isinstance(kind, str):
        return repr(kind) if _SHOWN_TYPE.fullmatch(kind) else f"(a {len(kind)}-character string)"
    return type(kind).__name__


def _validate(model: type[_Message], data: dict[str, Any]) -> _Message:
    """``model.model_validate`` whose failure is a :class:`ProtocolError` naming the type and field only."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        fields = [str(p) for p in first["loc"] if isinstance(p, str) and p in model.model_fields]
        where = fields[0] if fields else "message"
        code = _FIELD_CODES.get(where, "protocol")
        kind = model.model_fields["type"].default
        raise ProtocolError(f"{kind}: {where}: {first['msg']}"[:MAX_REASON_CHARS], code=code) from None


def parse_client_message(data: dict[str, Any]) -> ClientMessage:
    """Validate one decoded client message (its ``type`` must be one of :data:`CLIENT_TYPES`).

    Fields are strict: ``barge_in`` must be a JSON boolean (``"false"`` is refused, not read as
    true or false), integers must be integers (``1.0``, ``true`` are refused), strings must be
    valid UTF-8; numbers have ranges.

    Raises:
        ProtocolError: unknown type (or a ``type`` that is not a string), or a field of the wrong
            type or out of range; the message names the type and the field and never echoes the
            client's input (apart from a short plain ``type``).
    """
    kind = data.get("type")
    model = CLIENT_MESSAGES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError(f"unknown message type {_shown_type(kind)} (expected one of {', '.join(sorted(CLIENT_TYPES))})")
    return _validate(model, data)  # type: ignore[return-value]


def parse_audio_header(data: dict[str, Any]) -> AudioHeader:
    """Validate the header of a client's binary audio frame (``type``, when present, is ``audio-chunk``).

    Raises:
        ProtocolError: another ``type``.
    """
    if data.get("type", "audio-chunk") != "audio-chunk":
        raise ProtocolError(f"binary header type must be 'audio-chunk', not {_shown_type(data.get('type'))}")
    return _validate(AudioHeader, data)  # type: ignore[return-value]


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
