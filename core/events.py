"""The event vocabulary: every message that flows through the pipeline.

Events are frozen, slotted dataclasses. Each carries a common header
(``session_id``, ``turn_id``, ``seq``, ``t_ns`` monotonic nanoseconds and the
``stage`` that produced it) and a Wyoming-style kebab ``type``. Data flows one
way (audio in → reply audio out); urgent events (``turn-cancelled``, ``error``,
``stage-metrics``) never wait behind audio.

The JSON codec is generated from the dataclass fields, both ways
(:func:`to_json`, :func:`from_json`), so the websocket protocol, eval records
and CLI output all share one shape.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from core.errors import InvalidInput
from core.types import NluResult, SlotValue, TaggedToken, clean_text

_seq = itertools.count()


def now_ns() -> int:
    """Monotonic clock used for every event timestamp (nanoseconds)."""
    return time.monotonic_ns()


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Common header of every event.

    Attributes:
        session_id: the conversation this event belongs to.
        turn_id: the user turn (minted at speech start); "" for session-level events.
        seq: process-wide increasing sequence number (orders events with equal ``t_ns``).
        t_ns: monotonic time the event was created, nanoseconds.
        stage: the stage that produced it (``vad``, ``asr``, ``disfluency``, ``nlu``, ``dialog``, ``tts``...).
    """

    type: ClassVar[str] = "event"
    session_id: str
    turn_id: str
    stage: str = ""
    seq: int = field(default_factory=lambda: next(_seq))
    t_ns: int = field(default_factory=now_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioChunk(Event):
    """PCM16 mono audio. Inbound from the user or outbound from the TTS.

    Attributes:
        pcm: int16 samples.
        sample_rate_hz: samples per second.
        chunk_index: index of this chunk within its stream (reply audio: within the turn).
        final: last chunk of a reply stream.
    """

    type: ClassVar[str] = "audio-chunk"
    pcm: np.ndarray
    sample_rate_hz: int = 16000
    chunk_index: int = 0
    final: bool = False

    @property
    def duration_ms(self) -> float:
        return 1000.0 * len(self.pcm) / self.sample_rate_hz


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStarted(Event):
    """VAD detected the start of speech; a new turn begins.

    Attributes:
        audio_ms: position in the input stream where speech starts (milliseconds).
    """

    type: ClassVar[str] = "speech-started"
    audio_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechEnded(Event):
    """The endpointer decided the turn is over.

    Attributes:
        audio_ms: position where speech actually stopped (milliseconds).
        endpoint_delay_ms: audio time between the last speech and this decision (the silence timeout).
    """

    type: ClassVar[str] = "speech-ended"
    audio_ms: float
    endpoint_delay_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnDecision(Event):
    """The end-of-turn policy's decision after a silence, with the signals it used.

    Attributes:
        decision: ``complete`` (the turn ends now), ``incomplete`` (the assistant holds and keeps
            listening), ``max-hold`` (ended by the longest allowed silence), ``max-length`` (ended by the
            longest allowed turn, ``turn.max_turn_s``) or ``fixed`` (ended by the fixed silence timeout
            of the ``fixed`` policy).
        reason: one short readable line, e.g. ``trailing function word "for"``.
        silence_ms: audio time since the last speech when the decision was taken (milliseconds).
        audio_ms: position of the last speech in the input stream (milliseconds).
        signals: the values the policy looked at (``transcript``, ``smart_turn``, ``lexical``,
            ``semantic``, ``intent``, ``confidence``, ``expected_slot``...).
    """

    type: ClassVar[str] = "turn-decision"
    decision: str
    reason: str = ""
    silence_ms: float = 0.0
    audio_ms: float = 0.0
    signals: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptPartial(Event):
    """Unstable ASR hypothesis; the first ``stable_words`` words will not change."""

    type: ClassVar[str] = "transcript-partial"
    text: str
    stable_words: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptFinal(Event):
    """The final transcript of a turn (lower case, no punctuation)."""

    type: ClassVar[str] = "transcript-final"
    text: str
    raw_text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TokensTagged(Event):
    """Words of the transcript with keep/remove labels.

    Attributes:
        tokens: the labelled words.
        final: labels for the final transcript (else: committed labels of a partial;
            a word whose label is not committed yet has ``pending=True`` and is left
            out of ``clean_text``).
    """

    type: ClassVar[str] = "tokens-tagged"
    tokens: tuple[TaggedToken, ...]
    final: bool = True

    @property
    def clean_text(self) -> str:
        return clean_text(self.tokens)

    @property
    def removed(self) -> list[str]:
        return [t.word for t in self.tokens if t.remove]


@dataclass(frozen=True, slots=True, kw_only=True)
class NluResultEvent(Event):
    """Intent and slots of the cleaned transcript.

    Attributes:
        result: the parse; its slot indices are word indices into ``text``.
        text: the words parsed: the cleaned transcript, or the transcript as heard when the
            removal guard (``services.nlu.guard``) overruled the disfluency tagger.
        restored: the guard overruled the tagger's removals.
        snapped: (heard, value) pairs: misheard spans of the transcript that were snapped to a
            domain's vocabulary (``domains.lexicon``) because that domain's parse won; ``text`` holds
            the values.
        hypothesis: 0, or k when the ASR's k-th alternative (``Hypothesis.alternatives``) was parsed
            instead of the transcript, because the domain knows its values (``text`` holds its words).
    """

    type: ClassVar[str] = "nlu-result"
    result: NluResult
    text: str = ""
    restored: bool = False
    snapped: tuple[tuple[str, str], ...] = ()
    hypothesis: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogAction(Event):
    """What the dialog manager decided: the reply and its phrases (first one short).

    Attributes:
        intent: the intent the reply is about (the task's, or a meta intent); ``None`` when the
            dialog backend does not say.
        frame: slot -> value as heard of the task this turn was about (the active one, or the one
            just finished): what the dialog acts on, which a turn's own parse need not show (an
            add-on "with sugar" said after a pause joins the order the previous turn placed);
            ``None`` when the dialog backend does not report its task (Rasa).
    """

    type: ClassVar[str] = "dialog-action"
    text: str
    phrases: tuple[str, ...]
    action: str = "respond"
    end_session: bool = False
    intent: str | None = None
    frame: dict[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnCancelled(Event):
    """Barge-in or abort: drop everything of ``turn_id``."""

    type: ClassVar[str] = "turn-cancelled"
    reason: str = "barge-in"


@dataclass(frozen=True, slots=True, kw_only=True)
class StageMetrics(Event):
    """Per-stage latencies of one turn, milliseconds.

    Keys: ``endpoint``, ``asr``, ``disfluency``, ``nlu``, ``dialog``, ``tts_first_audio``, ``total``.
    ``total`` is end of speech detected → first reply audio; ``endpoint`` is reported apart.
    """

    type: ClassVar[str] = "stage-metrics"
    latency_ms: dict[str, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent(Event):
    """Something went wrong; ``code`` is stable, ``message`` readable.

    ``recovered``: the turn went on regardless (a stage failed and its local fallback answered),
    so a client may show it as a warning rather than a failed turn.
    """

    type: ClassVar[str] = "error"
    code: str
    message: str
    recovered: bool = False


def _jsonable(value: object) -> object:
    if isinstance(value, np.ndarray):
        return {"samples": int(value.size)}
    if isinstance(value, NluResult):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def to_json(event: Event) -> dict[str, object]:
    """A JSON-ready dict of any event (audio replaced by its sample count)."""
    out: dict[str, object] = {"type": event.type}
    for f in dataclasses.fields(event):
        out[f.name] = _jsonable(getattr(event, f.name))
    return out


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (AudioChunk, SpeechStarted, SpeechEnded, TurnDecision, TranscriptPartial, TranscriptFinal, TokensTagged,
                NluResultEvent, DialogAction, TurnCancelled, StageMetrics, ErrorEvent)
}
"""Every event class by its wire ``type``."""


def _nlu_result(data: dict[str, Any]) -> NluResult:
    slots = tuple(SlotValue(s["slot"], s["value"], s["normalized"], int(s["start"]), int(s["end"])) for s in data["slots"])
    return NluResult(data["intent"], float(data["confidence"]), slots, tuple(str(g) for g in data.get("guessed", ())))


def from_json(data: dict[str, Any], pcm: np.ndarray | None = None) -> Event:
    """The event a :func:`to_json` dict (or a websocket message) describes.

    Fields the event class does not have (``fatal``, ``clean_text``... added at the transport
    edge) are ignored. An ``audio-chunk`` needs its samples as ``pcm`` (JSON carries only their
    count).

    Raises:
        InvalidInput: an unknown ``type``, a missing field, or audio without ``pcm``.
    """
    cls = EVENT_TYPES.get(str(data.get("type")))
    if cls is None:
        raise InvalidInput(f"unknown event type {str(data.get('type'))[:40]!r}")
    kwargs: dict[str, Any] = {}
    try:
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name == "pcm":
                continue
            if f.name == "tokens":
                value = tuple(TaggedToken(t["word"], bool(t["remove"]), t.get("kind"), bool(t.get("pending", False)))
                              for t in value)
            elif f.name == "result":
                value = _nlu_result(value)
            elif f.name == "phrases":
                value = tuple(value)
            elif f.name == "snapped":
                value = tuple((str(heard), str(meant)) for heard, meant in value)
            kwargs[f.name] = value
        if cls is AudioChunk:
            if pcm is None:
                raise InvalidInput("an audio-chunk event needs its samples (pcm)")
            kwargs["pcm"] = pcm
        return cls(**kwargs)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"{cls.type}: malformed event ({type(exc).__name__}: {exc})") from exc
