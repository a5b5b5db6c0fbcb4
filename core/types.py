"""Value types that pass between stages: what one stage hands the next.

They live on the ground floor so that the stages, the dialog, the event
vocabulary and the evaluation all name the same thing the same way, without
importing each other: an ASR :class:`Hypothesis`, the tagger's
:class:`TaggedToken` words, the NLU's :class:`NluResult` with its
:class:`SlotValue` spans, and the dialog's :class:`NluHints` for the next turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

# --------------------------------------------------------------------------- ASR


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """A decoded window: normalized text, raw text and mean token log-probability."""

    text: str
    raw_text: str
    avg_logprob: float
    loop_cut: bool = False
    fallback: bool = False
    fallback_window_s: float = 0.0
    """Window of the re-decode that produced this result (0: the short window's own result)."""
    alternatives: tuple[str, ...] = ()
    """The beam's other hypotheses, normalized, best first, each different from ``text``: what a
    domain may prefer when ``text`` holds a value it does not know (``services.nlu.guard``).
    Empty from partials and from backends that do not return an n-best list."""


# --------------------------------------------------------------------------- disfluency


DisfluencyKind = Literal["filler", "repetition", "repair", "restart", "interregnum"]

#: Triton wire format: the KIND string of a ``pending`` word (the label tensors have
#: no pending flag).
PENDING_KIND = "pending"


@dataclass(frozen=True, slots=True)
class TaggedToken:
    """One word with its keep/remove decision."""

    word: str
    remove: bool
    kind: DisfluencyKind | None = None
    #: Streaming only: the word's label is not committed yet (a later word's
    #: already is); ``remove`` means nothing until it is.
    pending: bool = False


def clean_text(tokens: Sequence[TaggedToken]) -> str:
    """The transcript with removed words (and words whose label is still pending) dropped."""
    return " ".join(t.word for t in tokens if not t.remove and not t.pending)


# --------------------------------------------------------------------------- NLU


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
    guessed: tuple[str, ...] = ()
    """Slots whose value is a guess: words the ASR misheard, snapped to the domain's vocabulary by
    sound (``domains/lexicon.py``). The dialog confirms them before acting ("did you say mocha?")."""

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
            **({"guessed": list(self.guessed)} if self.guessed else {}),
        }


@dataclass(frozen=True, slots=True)
class NluHints:
    """What the dialog expects next (biases NLU toward the active frame)."""

    active_intent: str | None = None
    expected_slot: str | None = None
