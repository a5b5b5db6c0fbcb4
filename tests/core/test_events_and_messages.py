"""The event vocabulary and the session messages parse both ways, and refuse what does not fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import messages as msgs
from core.errors import InvalidInput
from core.events import (
    EVENT_TYPES,
    AudioChunk,
    DialogAction,
    ErrorEvent,
    NluResultEvent,
    SpeechEnded,
    SpeechStarted,
    StageMetrics,
    TokensTagged,
    TranscriptFinal,
    TranscriptPartial,
    TurnCancelled,
    TurnDecision,
    from_json,
    to_json,
)
from core.types import NluResult, SlotValue, TaggedToken

H = {"session_id": "s", "turn_id": "s-t1", "stage": "x"}
EVENTS = [
    SpeechStarted(**H, audio_ms=120.0),
    SpeechEnded(**H, audio_ms=900.0, endpoint_delay_ms=416.0),
    TurnDecision(**H, decision="incomplete", reason='trailing function word "for"', silence_ms=160.0, audio_ms=900.0,
                 signals={"smart_turn": 0.12, "lexical": "trailing-function-word", "transcript": "set a timer for"}),
    TranscriptPartial(**H, text="set a", stable_words=1),
    TranscriptFinal(**H, text="set a timer", raw_text="Set a timer."),
    TokensTagged(**H, tokens=(TaggedToken("um", True, "filler"), TaggedToken("set", False), TaggedToken("a", False, None, True)),
                 final=False),
    NluResultEvent(**H, result=NluResult("SetTimer", 0.97, (SlotValue("duration", "five minutes", "PT5M", 3, 5),)),
                   text="set a timer for five minutes", restored=True),
    NluResultEvent(**H, result=NluResult("orderDrink", 0.99, (SlotValue("roast", "light roast", "light roast", 1, 3),),
                                         guessed=("roast",)),
                   text="a light roast latte", snapped=(("light rose", "light roast"),)),
    DialogAction(**H, text="Okay. Five minutes.", phrases=("Okay.", "Five minutes."), action="respond"),
    TurnCancelled(**H, reason="interrupt"),
    StageMetrics(**H, latency_ms={"asr": 12.5, "total": 80.0}),
    ErrorEvent(**H, code="backend-unavailable", message="Triton is down"),
]


def test_every_event_type_is_covered() -> None:
    assert {e.type for e in EVENTS} | {"audio-chunk"} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_events_round_trip_through_json(event) -> None:  # type: ignore[no-untyped-def]
    wire = json.loads(json.dumps(to_json(event)))
    assert from_json(wire) == event


def test_audio_chunks_need_their_samples() -> None:
    pcm = np.arange(8, dtype=np.int16)
    chunk = AudioChunk(**H, pcm=pcm, sample_rate_hz=22050, chunk_index=2, final=True)
    wire = to_json(chunk)
    assert wire["pcm"] == {"samples": 8}
    back = from_json(wire, pcm)
    assert isinstance(back, AudioChunk) and back.chunk_index == 2 and back.final and np.array_equal(back.pcm, pcm)
    with pytest.raises(InvalidInput, match="needs its samples"):
        from_json(wire)


def test_malformed_events_are_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown event type"):
        from_json({"type": "nope"})
    with pytest.raises(InvalidInput, match="nlu-result: malformed"):
        from_json({"type": "nlu-result", "session_id": "s", "turn_id": "t", "result": {"intent": "x"}})


# ------------------------------------------------------------------ session messages


def test_client_messages_parse_to_their_types() -> None:
    start = msgs.parse_client_message({"type": "session-start", "sample_rate_hz": 48000, "token": "t", "client": "page"})
    assert start == msgs.SessionStart(sample_rate_hz=48000, token="t")
    assert msgs.parse_client_message({"type": "config", "barge_in": False}) == msgs.Config(barge_in=False)
    stopped = msgs.parse_client_message({"type": "playback-stopped", "turn_id": "web-1-t2", "played_ms": 420})
    assert stopped == msgs.PlaybackStopped(turn_id="web-1-t2", played_ms=420)
    assert msgs.parse_client_message({"type": "interrupt"}) == msgs.Interrupt()


@pytest.mark.parametrize(
    ("message", "code", "text"),
    [
        ({"type": []}, "protocol", "unknown message type list"),
        ({"type": "😀😀😀"}, "protocol", "unknown message type"),
        ({"type": "session-start", "sample_rate_hz": "16000"}, "invalid-audio", "sample_rate_hz"),
        ({"type": "session-start", "sample_rate_hz": True}, "invalid-audio", "sample_rate_hz"),
        ({"type": "config", "barge_in": "perhaps"}, "protocol", "barge_in"),
        ({"type": "config", "barge_in": "false"}, "protocol", "barge_in"),  # strict: never bool("false")
        ({"type": "playback-stopped", "turn_id": "t"}, "protocol", "played_ms"),
        ({"type": "playback-stopped", "turn_id": "t", "played_ms": 10**30}, "protocol", "played_ms"),
        ({"type": "playback-stopped", "turn_id": "t", "played_ms": -1}, "protocol", "played_ms"),
        ({"type": "interrupt", "turn_id": "x" * 500}, "protocol", "turn_id"),
    ],
)
def test_bad_client_messages_get_a_short_coded_error(message, code, text) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(msgs.ProtocolError) as err:
        msgs.parse_client_message(message)
    assert err.value.code == code and text in str(err.value) and len(str(err.value)) < 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(msgs.CLIENT_TYPES)) | st.text(max_size=12),
       fields=st.dictionaries(st.sampled_from(["sample_rate_hz", "barge_in", "token", "turn_id", "played_ms", "x"]),
                              json_values, max_size=4))
def test_any_client_message_parses_or_is_refused_with_a_protocol_error(kind: str, fields: dict) -> None:  # type: ignore[type-arg]
    try:
        parsed = msgs.parse_client_message({"type": kind, **fields})
    except msgs.ProtocolError as exc:
        assert exc.code in ("protocol", "invalid-audio")
    else:
        assert parsed.type == kind


def test_server_session_messages_round_trip() -> None:
    limits = msgs.Limits(max_frame_bytes=65536, max_control_bytes=8192, rate_messages_per_s=100.0,
                         rate_bytes_per_s=1e6, idle_timeout_s=300.0)
    started = msgs.SessionStarted(session_id="web-1", input_sample_rate_hz=48000, pipeline_sample_rate_hz=16000,
                                  reply_sample_rate_hz=22050, barge_in=True, limits=limits)
    wire = json.loads(json.dumps(started.to_json()))
    assert wire["type"] == "session-started" and wire["protocol"] == msgs.PROTOCOL_VERSION
    assert msgs.parse_server_message(wire) == started
    with pytest.raises(msgs.ProtocolError):
        msgs.parse_server_message({"type": "session-started", "session_id": "x"})
