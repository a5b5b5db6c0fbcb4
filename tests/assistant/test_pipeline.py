"""The embedded pipeline end to end on generated and real speech."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from assistant.metrics import wer
from assistant.pipeline import Conversation
from assistant.speech_samples import speech_samples
from assistant.turn_result import run_audio, run_text
from core.audio import load_audio
from core.events import (
    AudioChunk,
    DialogAction,
    NluResultEvent,
    SpeechEnded,
    SpeechStarted,
    StageMetrics,
    TokensTagged,
    TranscriptFinal,
    TranscriptPartial,
    TurnCancelled,
)
from tests.conftest import utterance

LATENCY_FIELDS = ["endpoint", "asr", "disfluency", "nlu", "dialog", "tts_first_audio", "total"]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_generated_utterance_end_to_end(components, utterances) -> None:  # type: ignore[no-untyped-def]
    row = utterance(utterances, "set a timer for five minutes")
    pcm = load_audio(row["path"])
    result = run(run_audio(Conversation(components, "t-gen", barge_in=False), pcm, realtime=True))
    assert wer([str(row["text"])], [result.transcript]) <= 0.2, result.transcript
    assert result.intent == "SetTimer"
    assert result.reply
    assert result.reply_audio is not None and len(result.reply_audio) > result.reply_rate_hz * 0.3
    for key in LATENCY_FIELDS:
        assert key in result.latency_ms, key
        assert result.latency_ms[key] > 0, (key, result.latency_ms)
    # Events flow one way, in order, all tagged with this session and one turn id.
    kinds = [type(e) for e in result.events]
    order = [SpeechStarted, SpeechEnded, TranscriptFinal, TokensTagged, NluResultEvent, DialogAction, AudioChunk, StageMetrics]
    ended = kinds.index(SpeechEnded)
    # Partial transcripts (and their partial tags) come before the endpoint; the final chain after it.
    positions = [kinds.index(k) if k in (SpeechStarted, SpeechEnded) else kinds.index(k, ended) for k in order]
    assert positions == sorted(positions), [k.__name__ for k in kinds]
    assert TranscriptPartial in kinds, "partials are emitted while the user speaks"
    assert kinds.index(TranscriptPartial) < kinds.index(SpeechEnded)
    assert {e.session_id for e in result.events} == {"t-gen"}
    turn_ids = {e.turn_id for e in result.events}
    assert len(turn_ids) == 1 and "" not in turn_ids
    stamps = [e.t_ns for e in result.events]
    assert stamps == sorted(stamps)


def test_real_recording_transcript(components, shared_dir) -> None:  # type: ignore[no-untyped-def]
    samples = dict((p.name, (p, t)) for p, t in speech_samples(shared_dir))
    path, text = samples["goforward.wav"]
    result = run(run_audio(Conversation(components, "t-real", barge_in=False), load_audio(path), realtime=False))
    assert result.transcript == text


def test_partials_have_monotonic_stable_prefix(components, utterances) -> None:  # type: ignore[no-untyped-def]
    row = utterance(utterances, "book a table for four at an italian restaurant")
    result = run(run_audio(Conversation(components, "t-partial", barge_in=False), load_audio(row["path"]), realtime=True))
    partials = [e for e in result.events if isinstance(e, TranscriptPartial)]
    assert len(partials) >= 2
    stable_prefixes = [p.text.split()[: p.stable_words] for p in partials]
    for earlier, later in zip(stable_prefixes, stable_prefixes[1:], strict=False):
        if later:
            assert later[: len(earlier)] == earlier


def test_text_turn_skips_asr(components) -> None:  # type: ignore[no-untyped-def]
    result = run(run_text(Conversation(components, "t-text", barge_in=False), "what time is it"))
    assert result.transcript == "what time is it"
    assert result.intent == "GetTime"
    assert result.reply and result.reply_audio is not None
    assert result.latency_ms["total"] > 0


def test_fluent_coffee_order_keeps_every_slot(components) -> None:  # type: ignore[no-untyped-def]
    """A grammar-style order keeps all its slots through disfluency removal and the NLU guard
    (the shipped tagger once cut "brew a double shot twelve ounce" from it)."""
    text = "brew a double shot twelve ounce drip coffee with lots of skim milk"
    result = run(run_text(Conversation(components, "t-coffee", barge_in=False), text))
    if result.intent != "orderDrink":
        pytest.skip(f"needs the BERT NLU (got {result.intent})")
    assert result.slots == {"numberOfShots": "double shot", "size": "twelve ounce", "coffeeDrink": "drip coffee",
                            "milkAmount": "lots of skim milk"}
    assert result.nlu_text.split()[result.slot_details[0]["start"]] == "double"


def test_first_phrase_plays_while_later_phrases_synthesize(components) -> None:  # type: ignore[no-untyped-def]
    """Overlap: the first audio chunk is out before the last phrase finished synthesizing."""
    tts = components.tts
    calls: list[tuple[str, float, float]] = []
    original = tts.synthesize

    def traced(text: str) -> np.ndarray:
        t0 = time.monotonic_ns()
        audio = original(text)
        calls.append((text, t0, time.monotonic_ns()))
        return audio

    tts.synthesize = traced  # type: ignore[method-assign]
    try:
        conv = Conversation(components, "t-overlap", barge_in=False)
        result = run(run_text(conv, "what can you do"))
    finally:
        tts.synthesize = original  # type: ignore[method-assign]
    phrases = next(e for e in result.events if isinstance(e, DialogAction)).phrases
    assert len(phrases) >= 2, phrases
    first_chunk = next(e for e in result.events if isinstance(e, AudioChunk))
    assert first_chunk.t_ns < calls[-1][2], "first audio must be emitted before the last phrase is synthesized"


def test_barge_in_cancels_reply(components, utterances) -> None:  # type: ignore[no-untyped-def]
    """Speech starting during a reply cancels it; no audio of that turn follows the cancel."""
    first = load_audio(utterance(utterances, "what can you do")["path"])
    second = load_audio(utterance(utterances, "cancel that")["path"])

    async def go():  # type: ignore[no-untyped-def]
        conv = Conversation(components, "t-barge", barge_in=True)
        from assistant.pipeline import feed_paced

        step = 512
        for i in range(0, len(first), step):
            await conv.feed(first[i : i + step])
        silence = np.zeros(512, np.int16)
        # Feed silence until the reply starts producing audio, then speak again.
        for _ in range(200):
            await conv.feed(silence)
            await asyncio.sleep(0.01)
            if any(isinstance(e, AudioChunk) for e in list(conv.events._queue)):  # type: ignore[attr-defined]
                break
        await feed_paced(conv, second, realtime=False)
        events = []
        while not conv.events.empty():
            events.append(conv.events.get_nowait())
        return events

    events = run(go())
    cancels = [e for e in events if isinstance(e, TurnCancelled)]
    assert cancels, [type(e).__name__ for e in events]
    cancelled = cancels[0].turn_id
    idx = events.index(cancels[0])
    assert not [e for e in events[idx:] if isinstance(e, AudioChunk) and e.turn_id == cancelled]
    finals = [e for e in events if isinstance(e, TranscriptFinal)]
    assert len(finals) == 2


@pytest.mark.parametrize("silence_ms", [300, 600])
def test_silence_timeout_is_configurable(settings, silence_ms) -> None:  # type: ignore[no-untyped-def]
    from services.vad.endpointing import Endpointer

    ep = Endpointer(silence_ms=silence_ms)
    decisions = []
    for p in [0.9] * 10 + [0.0] * 40:
        decisions += ep.push(p)
    end = next(d for d in decisions if d.kind == "end")
    assert end.audio_ms == pytest.approx(320.0)
    assert ep.pos_ms - end.audio_ms >= silence_ms


def test_timer_fires_and_is_spoken_after_the_users_turn(components) -> None:  # type: ignore[no-untyped-def]
    """A real timer set by voice fires from the dialog scheduler; the conversation speaks it."""
    scheduler = getattr(components.dialog, "run_scheduler", None)
    if scheduler is None:
        pytest.skip("the templated baseline dialog has no scheduler")

    async def go():  # type: ignore[no-untyped-def]
        conv = Conversation(components, "t-timer", barge_in=False)

        async def notify(session_id: str, text: str) -> None:
            if session_id == conv.session_id:
                await conv.notify(text)

        task = asyncio.create_task(scheduler(notify))
        try:
            await conv.say("set a timer for two seconds")
            deadline = time.monotonic() + 15
            events = []
            while time.monotonic() < deadline:
                ev = await asyncio.wait_for(conv.events.get(), timeout=15)
                events.append(ev)
                if isinstance(ev, DialogAction) and ev.action == "notify":
                    break
            while True:
                try:
                    events.append(await asyncio.wait_for(conv.events.get(), timeout=2))
                except TimeoutError:
                    break
            return events
        finally:
            task.cancel()

    events = run(go())
    notes = [e for e in events if isinstance(e, DialogAction) and e.action == "notify"]
    assert notes, [getattr(e, "text", e.type) for e in events]
    assert any(isinstance(e, AudioChunk) and e.turn_id == notes[0].turn_id for e in events)


class RecordingAsr:
    """Wraps the real ASR backend and keeps the audio each turn's stream received and its hint words."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.received: list[np.ndarray] = []
        self.hints: list[list[str] | None] = []

    def open_stream(self, session_id: str, turn_id: str, hint_words=None):  # type: ignore[no-untyped-def]
        self.hints.append(list(hint_words) if hint_words else None)
        stream = self.inner.open_stream(session_id, turn_id, hint_words)
        received = self.received
        accept = stream.accept

        async def recording_accept(pcm: np.ndarray) -> None:
            received.append(pcm.copy())
            await accept(pcm)

        stream.accept = recording_accept
        return stream


def test_asr_receives_pre_roll_before_the_speech_run(components, shared_dir) -> None:  # type: ignore[no-untyped-def]
    """The start decision comes min_speech_ms into the speech: the ASR must still get pre_roll_ms before it.

    Regression: the pre-roll buffer once held only pre_roll_ms in total, so the frames of the
    triggering speech run used it up and soft onsets were clipped ("set a timer" → "to timer").
    """
    import dataclasses

    rate = 16000
    rec = RecordingAsr(components.asr)
    comps = dataclasses.replace(components, asr=rec)
    speech = load_audio(next(p for p, _ in speech_samples(shared_dir) if p.name == "goforward.wav"))
    # A second of faint noise (unique samples, so the received audio can be located in the input).
    lead = np.random.default_rng(0).integers(-40, 40, rate).astype(np.int16)
    pcm = np.concatenate([lead, speech])
    conv = Conversation(comps, "t-preroll", barge_in=False)
    result = run(run_audio(conv, pcm, realtime=False))
    assert result.turns == 1
    start = next(e for e in result.events if isinstance(e, SpeechStarted))
    first = rec.received[0]
    offsets = [i for i in range(0, len(pcm) - len(first) + 1, 512) if np.array_equal(pcm[i : i + len(first)], first)]
    assert len(offsets) == 1
    first_ms = offsets[0] / rate * 1000
    # The ASR's audio begins at least the configured pre-roll before the detected speech start.
    assert first_ms <= start.audio_ms - components.settings.vad.pre_roll_ms + 1, (first_ms, start.audio_ms)


def test_soft_onset_first_word_is_kept(components, utterances) -> None:  # type: ignore[no-untyped-def]
    """espeak-ng starts "set" with a soft /s/ that Silero scores late; the first word must survive."""
    row = utterance(utterances, "set a timer for five minutes", voice="espeak-us")
    result = run(run_audio(Conversation(components, "t-onset", barge_in=False), load_audio(row["path"]), realtime=False))
    assert result.transcript.split()[:2] == ["set", "a"], result.transcript
