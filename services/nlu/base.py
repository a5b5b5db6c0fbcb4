"""The NLU stage's interface: text in, intent + slots out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

OUT_OF_SCOPE = "out_of_scope"
"""Intent name for utterances that no domain covers (rejected, not forced)."""


@dataclass(frozen=True, slots=True)
class SlotValue:
    """A filled slot.

    Attributes:
        slot: slot name (e.g. ``size``).
        value: the words as spoken (e.g. ``eight thirty``).
        normalized: a canonical value for the dialog manager (e.g. ``08:30``), or the value itself.
        start: index of the first word of the span in the cleaned transcript.
        end: index one past the last word (Python slice convention).
    """

    slot: str
    value: str
    normalized: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class NluResult:
    """Intent, confidence in [0, 1] and slots of one utterance."""

    intent: str
    confidence: float
    slots: tuple[SlotValue, ...] = field(default_factory=tuple)

    def slot_dict(self) -> dict[str, str]:
        """slot -> value as spoken (the last one wins when a slot repeats)."""
        return {s.slot: s.value for s in self.slots}

    def to_json(self) -> dict[str, object]:
        return {
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "slots": [
                {"slot": s.slot, "value": s.value, "normalized": s.normalized, "start": s.start, "end": s.end}
                for s in self.slots
            ],
        }


@dataclass(frozen=True, slots=True)
class NluHints:
    """What the dialog expects next (biases NLU toward the active frame)."""

    active_intent: str | None = None
    expected_slot: str | None = None


class NluBackend(Protocol):
    """An NLU backend."""

    name: str

    def parse(self, text: str, hints: NluHints | None = None) -> NluResult:
        """Classify the intent and extract slots from a cleaned transcript."""
        ...
