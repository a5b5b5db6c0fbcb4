"""Sans-I/O parts of the web transport: the wire codec and the rate limiter (no sockets)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.web import protocol as proto
from assistant.web.server import TokenBucket
from assistant.web.settings import WebSettings, web_settings
from core.errors import MessageTooLarge
from core.events import AudioChunk, TokensTagged, TranscriptPartial
from core.messages import EndOfTurn
from core.types import TaggedToken


def test_audio_frame_round_trip_carries_the_turn_id() -> None:
    pcm = (np.arange(-500, 500) * 30).astype(np.int16)
    chunk = AudioChunk(session_id="s", turn_id="s-t7", stage="tts", pcm=pcm, sample_rate_hz=22050, chunk_index=3, final=True)
    frame = proto.decode_audio(proto.audio_message(chunk))
    assert frame.header["turn_id"] == "s-t7" and frame.header["chunk_index"] == 3 and frame.header["final"] is True
    assert frame.header["sample_rate_hz"] == 22050 and frame.header["samples"] == pcm.size
    assert np.array_equal(frame.pcm, pcm)
    # An empty header means a bare audio chunk.
    bare = proto.decode_audio(b"\x00\x00\x00\x00" + pcm.astype("<i2").tobytes())
    assert bare.header == {"type": "audio-chunk"} and np.array_equal(bare.pcm, pcm)


@pytest.mark.parametrize(
    "data",
    [b"\x00\x00", b"\x00\x00\x00\x09{}", b"\x00\x00\x10\x00" + b" " * 5000, b"\x00\x00\x00\x02[]", b"\x00\x00\x00\x02{}\x01",
     b'\x00\x00\x00\x11{"type":"hello"}'],
)
def test_malformed_audio_frames_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(proto.ProtocolError):
        proto.decode_audio(data)


def test_size_limits_and_control_messages() -> None:
    with pytest.raises(MessageTooLarge):
        proto.decode_audio(b"\x00" * 100, max_bytes=99)
    with pytest.raises(MessageTooLarge):
        proto.decode_control(json.dumps({"type": "config", "x": "é" * 60}), max_bytes=100)
    with pytest.raises(proto.BadJson):
        proto.decode_control("{nope")
    with pytest.raises(proto.BadJson):
        proto.decode_control('"a string"')
    with pytest.raises(proto.ProtocolError, match="unknown message type"):
        proto.decode_control('{"type": "reboot"}')
    assert proto.decode_control('{"type": "end-of-turn"}') == EndOfTurn()


def test_event_messages_are_json_with_the_common_header() -> None:
    tokens = (TaggedToken(word="uh", remove=True), TaggedToken(word="hello", remove=False))
    msg = proto.event_message(TokensTagged(session_id="s", turn_id="s-t1", stage="disfluency", tokens=tokens))
    assert msg["clean_text"] == "hello" and msg["removed"] == ["uh"]
    partial = json.loads(proto.dumps(proto.event_message(TranscriptPartial(session_id="s", turn_id="s-t1", stage="asr", text="hi"))))
    assert {"type", "session_id", "turn_id", "seq", "t_ns", "stage", "text"} <= set(partial)
    err = json.loads(proto.error_message("rate-limited", "slow down", session_id="s"))
    assert err["type"] == "error" and err["code"] == "rate-limited" and err["fatal"] is True


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    t = bucket.t
    assert all(bucket.take(1, t) for _ in range(5))
    assert not bucket.take(1, t)
    assert bucket.take(1, t + 0.15)  # one token back after 100 ms at 10/s
    assert not bucket.take(1, t + 0.15)


def test_web_settings_defaults_are_limited_and_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    s = WebSettings()
    assert s.token is None and s.max_sessions > 0 and s.max_frame_bytes <= 1 << 20 and s.rate_messages_per_s > 0
    monkeypatch.delenv("QUICKTURN_CONFIG", raising=False)
    monkeypatch.setenv("QUICKTURN_WEB__MAX_SESSIONS", "3")
    monkeypatch.setenv("QUICKTURN_WEB__ALLOWED_ORIGINS", '["https://phone.example:8765"]')
    s = web_settings(None, {"port": 0})
    assert s.max_sessions == 3 and s.allowed_origins == ["https://phone.example:8765"] and s.port == 0
