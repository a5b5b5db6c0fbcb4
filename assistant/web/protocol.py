"""The QuickTurn websocket wire format (spec: ``docs/protocol.md``), both directions.

Two kinds of websocket message:

* **text**: one JSON object with a ``type`` (Wyoming-style kebab name) —
  control messages from the client, events from the server;
* **binary**: an audio frame — a 4-byte big-endian length ``N``, ``N`` bytes
  of UTF-8 JSON header (``type`` = ``audio-chunk`` plus, from the server,
  ``turn_id``, ``seq``, ``chunk_index``, ``sample_rate_hz``, ``final``), then
  little-endian PCM16 mono samples.

The codec is Sans-I/O: pure functions from bytes/str to values, so it is
tested without a socket and reused by the bench client and the tests.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import MessageTooLarge
from core.events import AudioChunk, ErrorEvent, Event, TokensTagged, to_json
from core.messages import (
    BadJson,
    ClientMessage,
    ProtocolError,
    load_json_object,
    parse_audio_header,
    parse_client_message,
)

HEADER_LEN = struct.Struct(">I")
MAX_HEADER_BYTES = 1024

#: Close codes used by the server (RFC 6455 section 7.4.1).
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL = 1002
CLOSE_BAD_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_LATER = 1013
MAX_CLOSE_REASON_BYTES = 123
"""A close frame's payload is at most 125 bytes, 2 of which are the code (RFC 6455 section 5.5)."""

__all__ = ["BadJson", "ProtocolError"]  # re-exported: the server catches them as ``proto.BadJson`` etc.


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A decoded binary message.

    Attributes:
        header: the JSON header (``type`` is ``audio-chunk``).
        pcm: int16 mono samples.
    """

    header: dict[str, Any]
    pcm: np.ndarray


def encode_audio(header: dict[str, Any], pcm: np.ndarray) -> bytes:
    """Binary message: length-prefixed JSON header, then PCM16 LE samples."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return HEADER_LEN.pack(len(head)) + head + np.asarray(pcm, dtype="<i2").tobytes()


def decode_audio(data: bytes, *, max_bytes: int | None = None) -> AudioFrame:
    """Parse a binary message.

    Raises:
        MessageTooLarge: over ``max_bytes``.
        ProtocolError: truncated, bad header, odd sample bytes or a header ``type`` other than ``audio-chunk``.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise MessageTooLarge(f"binary message of {len(data)} bytes is over the {max_bytes}-byte frame limit")
    if len(data) < HEADER_LEN.size:
        raise ProtocolError("binary message shorter than its 4-byte header length")
    (n,) = HEADER_LEN.unpack_from(data)
    if n > MAX_HEADER_BYTES or HEADER_LEN.size + n > len(data):
        raise ProtocolError(f"binary header length {n} is invalid")
    try:
        header = load_json_object(data[HEADER_LEN.size : HEADER_LEN.size + n], "binary header") if n else {}
    except BadJson as exc:  # a binary frame's header is part of the frame: a protocol error (close 1007)
        raise ProtocolError(str(exc)) from None
    parse_audio_header(header)
    header.setdefault("type", "audio-chunk")
    body = data[HEADER_LEN.size + n :]
    if len(body) % 2:
        raise ProtocolError("audio payload has an odd number of bytes (PCM16 expected)")
    return AudioFrame(header=header, pcm=np.frombuffer(body, dtype="<i2").astype(np.int16))


def decode_control(text: str, *, max_bytes: int | None = None) -> ClientMessage:
    """Parse and validate a client control message: bounded JSON, then the schema (:mod:`core.messages`).

    Raises:
        MessageTooLarge: over ``max_bytes`` (UTF-8 bytes).
        BadJson: not one bounded, valid JSON object (:func:`core.messages.load_json_object`).
        ProtocolError: no or unknown ``type``, or a field that does not fit its type.
    """
    size = len(text.encode("utf-8", "replace"))
    if max_bytes is not None and size > max_bytes:
        raise MessageTooLarge(f"text message of {size} bytes is over the {max_bytes}-byte control limit")
    return parse_client_message(load_json_object(text))


def decode_client(message: str | bytes, *, max_control_bytes: int | None = None,
                  max_frame_bytes: int | None = None) -> ClientMessage | AudioFrame:
    """Any client websocket message: a text frame is a control message, a binary frame an audio frame.

    The one way in for what a client sends; every failure is one of the documented exceptions.

    Raises:
        MessageTooLarge: over the size limit of its kind.
        BadJson: a text frame that is not one bounded JSON object.
        ProtocolError: a schema violation, or a malformed binary frame.
    """
    if isinstance(message, bytes):
        return decode_audio(message, max_bytes=max_frame_bytes)
    return decode_control(message, max_bytes=max_control_bytes)


def close_reason(text: str) -> str:
    """``text`` cut to :data:`MAX_CLOSE_REASON_BYTES` UTF-8 bytes without splitting a character.

    Characters that cannot be encoded (lone surrogates) become ``?``, so the close frame can
    always be built.
    """
    data = text.encode("utf-8", "replace")[:MAX_CLOSE_REASON_BYTES]
    return data.decode("utf-8", "ignore")


def event_message(event: Event) -> dict[str, Any]:
    """The JSON of a non-audio pipeline event as sent to clients.

    ``tokens-tagged`` also carries ``clean_text`` and ``removed`` so clients need not recompute them;
    pipeline ``error`` events carry ``fatal: false``.
    """
    out = to_json(event)
    if isinstance(event, TokensTagged):
        out["clean_text"] = event.clean_text
        out["removed"] = event.removed
    elif isinstance(event, ErrorEvent):
        out["fatal"] = False  # a stage failed for one turn; the session goes on
    return out


def audio_message(event: AudioChunk) -> bytes:
    """The binary message of a reply audio chunk; the header makes it attributable to its turn."""
    header = {
        "type": "audio-chunk",
        "session_id": event.session_id,
        "turn_id": event.turn_id,
        "seq": event.seq,
        "t_ns": event.t_ns,
        "stage": event.stage,
        "chunk_index": event.chunk_index,
        "sample_rate_hz": event.sample_rate_hz,
        "samples": int(event.pcm.size),
        "final": event.final,
    }
    return encode_audio(header, event.pcm)


def error_message(code: str, message: str, *, session_id: str = "", turn_id: str = "", fatal: bool = True) -> str:
    """An ``error`` event built at the transport edge (same shape as :class:`core.events.ErrorEvent`).

    ``message`` is made encodable first (a lone surrogate would make the frame unsendable).
    """
    safe = message.encode("utf-8", "replace").decode("utf-8")
    data = to_json(ErrorEvent(session_id=session_id, turn_id=turn_id, stage="web", code=code, message=safe))
    data["fatal"] = fatal
    return json.dumps(data)


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
