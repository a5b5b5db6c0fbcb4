"""Run one utterance through a conversation and collect what happened.

Shared by ``chat``, ``say``, ``bench`` and ``eval``: they differ in how they
present a :class:`TurnResult`, not in how they obtain it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.pipeline import Conversation, feed_paced
from core.audio import write_wav
from core.events import (
    AudioChunk,
    DialogAction,
    ErrorEvent,
    Event,
    NluResultEvent,
    SpeechEnded,
    StageMetrics,
    TokensTagged,
    TranscriptFinal,
    TranscriptPartial,
    TurnDecision,
)


@dataclass
class TurnResult:
    """Everything one user turn produced (the last turn if the audio held several)."""

    events: list[Event] = field(default_factory=list)
    transcript: str = ""
    clean_transcript: str = ""
    removed: list[str] = field(default_factory=list)
    #: The words the NLU parsed (slot indices refer to them) and whether the removal guard
    #: overruled the tagger (then they are the transcript as heard).
    nlu_text: str = ""
    restored: bool = False
    #: Misheard spans snapped to a domain's vocabulary, as (heard, value) pairs.
    snapped: list[tuple[str, str]] = field(default_factory=list)
    #: 0, or k when the ASR's k-th alternative was parsed instead of the transcript (its values known).
    hypothesis: int = 0
    intent: str | None = None
    confidence: float | None = None
    slots: dict[str, str] = field(default_factory=dict)
    slot_details: list[dict[str, object]] = field(default_factory=list)
    reply: str = ""
    reply_audio: np.ndarray | None = None
    reply_rate_hz: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    partials: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Faults the turn recovered from (a remote stage failed, its local fallback answered)."""
    turns: int = 0
    #: How the turn was ended (the last ``turn-decision``: decision, reason, silence_ms, signals),
    #: and the hesitations the assistant held through before (``incomplete`` decisions).
    decision: dict[str, object] = field(default_factory=dict)
    holds: list[dict[str, object]] = field(default_factory=list)

    @classmethod
    def from_events(cls, events: list[Event]) -> TurnResult:
        r = cls(events=events)
        audio: list[np.ndarray] = []
        last_turn = None
        for ev in events:
            if isinstance(ev, SpeechEnded):
                r.turns += 1
                last_turn = ev.turn_id
        for ev in events:
            if last_turn is not None and ev.turn_id and ev.turn_id != last_turn and not isinstance(ev, ErrorEvent):
                continue
            if isinstance(ev, TranscriptPartial):
                r.partials.append(ev.text)
            elif isinstance(ev, TranscriptFinal):
                r.transcript = ev.text
            elif isinstance(ev, TokensTagged) and ev.final:
                r.clean_transcript = ev.clean_text
                r.removed = ev.removed
            elif isinstance(ev, NluResultEvent):
                r.intent = ev.result.intent
                r.confidence = ev.result.confidence
                r.slots = ev.result.slot_dict()
                r.slot_details = list(ev.result.to_json()["slots"])  # type: ignore[arg-type]
                r.nlu_text = ev.text
                r.restored = ev.restored
                r.snapped = list(ev.snapped)
                r.hypothesis = ev.hypothesis
            elif isinstance(ev, DialogAction):
                r.reply = ev.text
            elif isinstance(ev, AudioChunk) and ev.stage == "tts":
                audio.append(ev.pcm)
                r.reply_rate_hz = ev.sample_rate_hz
            elif isinstance(ev, StageMetrics):
                r.latency_ms = dict(ev.latency_ms)
            elif isinstance(ev, ErrorEvent) and ev.recovered:
                r.warnings.append(f"{ev.code}: {ev.message}")
            elif isinstance(ev, ErrorEvent):
                r.errors.append(f"{ev.code}: {ev.message}")
            elif isinstance(ev, TurnDecision):
                summary = {"decision": ev.decision, "reason": ev.reason, "silence_ms": ev.silence_ms}
                if ev.decision == "incomplete":
                    r.holds.append(summary)
                else:
                    r.decision = {**summary, "signals": dict(ev.signals)}
        if audio:
            r.reply_audio = np.concatenate(audio)
        return r

    def save_audio(self, path: Path) -> Path | None:
        if self.reply_audio is None:
            return None
        return write_wav(path, self.reply_audio, self.reply_rate_hz)

    def to_json(self, reply_audio_path: Path | None = None) -> dict[str, object]:
        return {
            "transcript": self.transcript,
            "clean_transcript": self.clean_transcript,
            "removed": self.removed,
            "nlu_text": self.nlu_text,
            "restored": self.restored,
            "snapped": [list(p) for p in self.snapped],
            "hypothesis": self.hypothesis,
            "intent": self.intent,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "slots": self.slots,
            "slot_spans": self.slot_details,
            "reply": self.reply,
            "reply_audio": str(reply_audio_path) if reply_audio_path else None,
            "latency_ms": self.latency_ms,
            "turn_decision": self.decision,
            "holds": self.holds,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def collect(conv: Conversation) -> list[Event]:
    out: list[Event] = []
    while not conv.events.empty():
        out.append(conv.events.get_nowait())
    return out


async def run_audio(conv: Conversation, pcm: np.ndarray, *, realtime: bool = True) -> TurnResult:
    """Feed a recording (paced like a microphone unless ``realtime`` is False) and collect the turn."""
    await feed_paced(conv, pcm, realtime=realtime)
    return TurnResult.from_events(collect(conv))


async def run_text(conv: Conversation, text: str) -> TurnResult:
    await conv.say(text)
    return TurnResult.from_events(collect(conv))
