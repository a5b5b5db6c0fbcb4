"""The end-of-turn decision: is the user done, given what was said, how, and what was asked?

A fixed silence timeout makes the assistant slow for everyone (it waits the
whole timeout after every complete request) and rude to anyone who hesitates
("set a timer for … ten minutes" is cut in two). People decide that a turn is
over from three things, and the pipeline already has all of them when a
silence starts:

* **what was said** (lexical and semantic): the speculative transcript, its
  disfluency labels and its parse. A trailing filler ("um") or function word
  ("for", "the", "and"), or a word the streaming tagger still holds, means the
  sentence is not finished; a request the dialog could act on means it is; an
  intent still missing a slot it needs means "probably not yet";
* **what the conversation expects** (dialog context): an answer that fills the
  slot the assistant just asked for ("large" after "what size?") is complete
  as soon as it is heard;
* **how it was said** (acoustic): Smart Turn's probability that the speaker
  has finished, from the intonation and rhythm of the last seconds of audio.

:func:`decide` combines them with a few explainable rules whose thresholds are
settings (:class:`core.settings.TurnSettings`), chosen on the tuning part of
the turn-taking clips (``quickturn bench turns --split tune``). It is pure
(values in, decision out), so the rules are tested without audio or models;
the orchestrator (:mod:`assistant.pipeline`) gathers the signals and calls it
after ``eval_silence_ms`` of silence and again as the silence grows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from core.settings import TurnSettings
from core.types import OUT_OF_SCOPE, NluHints, NluResult, TaggedToken

Decision = Literal["complete", "incomplete", "max-hold", "max-length", "fixed"]
Semantic = Literal["complete", "answered", "missing-slot", "unknown"]

FILLERS = frozenset({"um", "uh", "er", "erm", "hmm", "mm", "uhm", "umm", "ah", "eh"})
"""Filled pauses: a turn that stops on one is a speaker thinking, not done."""

FUNCTION_WORDS = frozenset({
    "a", "an", "the", "for", "to", "with", "and", "or", "but", "of", "in", "at", "from", "by", "into",
    "my", "your", "our", "their", "his", "her", "its", "some", "is", "are", "was", "be", "i'd", "i'm", "i",
    "can", "could", "would", "will", "like", "about", "than", "if", "because", "until", "till", "as",
})  # fmt: skip
"""Words a finished English request does not end on: articles, prepositions, conjunctions,
possessives, auxiliaries and subject pronouns ("set a timer for", "turn off the", "i'd like").
Words that can end one are left out: "on"/"off"/"up" ("turn it on"), demonstratives
("play that"), "no" (an answer), "me" ("call me")."""

META_INTENTS = frozenset({"Affirm", "Deny", "Cancel", "Greet", "Goodbye", "Repeat", "Help"})
"""Short social and control intents. Heard with no question open they are weak evidence of a finished
turn: on the tuning clips most early ends on them were the ASR's guess at a cut-off fragment ("i'd
like a …" heard as "i like it", Affirm; "turn off the …" as "turn that", Cancel)."""

INCOMPLETE_ACTIONS = frozenset({"ask_slot"})
"""Dialog actions that mean the request still lacks something the skill needs."""
UNKNOWN_ACTIONS = frozenset({"fallback"})
"""Dialog actions that mean the request was not understood."""


@dataclass(frozen=True, slots=True)
class TurnSignals:
    """Everything the decision looks at, gathered when a silence starts.

    Attributes:
        words: the speculative transcript's words, as heard.
        tokens: their disfluency labels (``pending`` ones are not committed yet).
        nlu: the parse of the cleaned transcript.
        plan_action: what the dialog would do (``ask_slot``, ``done``, ``fallback``...; None when the
            dialog backend cannot plan).
        expected: what the previous reply asked for (the open question), if anything.
        smart_turn: Smart Turn's probability that the speaker has finished (None: not available).
        speech_ms: how much speech the turn holds so far (milliseconds).
        held_words: words before the newest whose label the streaming tagger's wait head still
            holds back, waiting for what comes next (0 for taggers that hold by a fixed lookahead,
            not by doubt).
    """

    words: tuple[str, ...]
    tokens: tuple[TaggedToken, ...] = ()
    nlu: NluResult | None = None
    plan_action: str | None = None
    expected: NluHints | None = None
    smart_turn: float | None = None
    speech_ms: float = 0.0
    held_words: int = 0
    speculation_ms: dict[str, float] = field(default_factory=dict)
    """How long each step of the speculation took (wall milliseconds; reported, not decided on)."""


@dataclass(frozen=True, slots=True)
class TurnVerdict:
    """A decision, a one-line reason and the signal values behind it (for the event stream)."""

    decision: Decision
    reason: str
    signals: dict[str, object] = field(default_factory=dict)


def lexical_hold(words: Sequence[str], tokens: Sequence[TaggedToken], held_words: int = 0) -> str | None:
    """Why the words themselves say "not finished" (None: they do not).

    The last word heard is a filler; or the last word the tagger keeps is a function word;
    or the tagger still holds a word's label (it waits for what comes next to decide).
    """
    if not words:
        return "no words yet"
    last = words[-1]
    if last in FILLERS:
        return f'trailing filler "{last}"'
    kept = [t.word for t in tokens if not t.remove and not t.pending] if tokens else list(words)
    kept = [w for w in kept if w not in FILLERS]
    if kept and kept[-1] in FUNCTION_WORDS:
        return f'trailing function word "{kept[-1]}"'
    pending = max(held_words, sum(1 for t in tokens if t.pending))
    if pending:
        return f"the tagger holds {pending} word(s)"
    return None


def semantic_state(nlu: NluResult | None, plan_action: str | None, expected: NluHints | None) -> tuple[Semantic, str]:
    """What the parse and the dialog say about the request: complete, an answer, missing a slot, or unknown."""
    if nlu is None:
        return "unknown", "no parse"
    if expected is not None and expected.expected_slot and any(s.slot == expected.expected_slot for s in nlu.slots):
        return "answered", f"answers the open question ({expected.expected_slot})"
    if nlu.intent == OUT_OF_SCOPE or plan_action in UNKNOWN_ACTIONS:
        return "unknown", f"not understood ({nlu.intent})"
    if nlu.intent in META_INTENTS and (expected is None or not expected.active_intent):
        return "unknown", f"{nlu.intent} with no question open"
    if plan_action in INCOMPLETE_ACTIONS:
        return "missing-slot", f"{nlu.intent} still needs a slot"
    return "complete", f"{nlu.intent} can be acted on"


def acoustic_needed(signals: TurnSignals, settings: TurnSettings) -> bool:
    """Whether :func:`decide` will look at Smart Turn for these words: only when what was said
    does not settle it (not held by the words, not a complete request or an answer), so the audio
    model costs nothing on the fast path."""
    if signals.speech_ms < settings.min_speech_ms or lexical_hold(signals.words, signals.tokens, signals.held_words):
        return False
    return semantic_state(signals.nlu, signals.plan_action, signals.expected)[0] not in ("complete", "answered")


def decide(signals: TurnSignals, silence_ms: float, settings: TurnSettings) -> TurnVerdict:
    """The end-of-turn decision after ``silence_ms`` of silence.

    Rules, first match wins:

    1. ``max_hold_ms`` of silence ends the turn whatever the signals say (``max-hold``);
    2. a turn with less than ``min_speech_ms`` of speech (a cough, a click) waits for rule 1;
    3. words that stop mid-sentence (:func:`lexical_hold`) hold the turn;
    4. a complete request, or an answer to the open question, ends it;
    5. a request missing a slot, or one the NLU cannot judge, ends when Smart Turn is sure the
       speaker is done (``unknown_threshold``), after ``doubt_silence_ms`` when Smart Turn
       thinks they are not (below ``doubt_threshold``), else after ``unknown_silence_ms``.
    """
    lexical = lexical_hold(signals.words, signals.tokens, signals.held_words)
    semantic, why = semantic_state(signals.nlu, signals.plan_action, signals.expected)
    p = signals.smart_turn
    values: dict[str, object] = {
        "transcript": " ".join(signals.words),
        "lexical": lexical or "ends on a content word",
        "semantic": semantic,
        "smart_turn": None if p is None else round(p, 3),
        "intent": signals.nlu.intent if signals.nlu else None,
        "confidence": round(signals.nlu.confidence, 3) if signals.nlu else None,
        "plan_action": signals.plan_action,
        "expected_slot": signals.expected.expected_slot if signals.expected else None,
        "speech_ms": round(signals.speech_ms, 1),
        "speculation_ms": dict(signals.speculation_ms),
    }
    s = settings
    if silence_ms >= s.max_hold_ms:
        return TurnVerdict("max-hold", f"{silence_ms:.0f} ms of silence", values)
    if signals.speech_ms < s.min_speech_ms:
        return TurnVerdict("incomplete", f"only {signals.speech_ms:.0f} ms of speech", values)
    if lexical is not None:
        return TurnVerdict("incomplete", lexical, values)
    if semantic in ("complete", "answered"):
        return TurnVerdict("complete", why, values)
    if p is not None and p >= s.unknown_threshold:
        return TurnVerdict("complete", f"{why}; smart turn {p:.2f}", values)
    doubt = p is not None and p < s.doubt_threshold
    wait_ms = s.doubt_silence_ms if doubt else s.unknown_silence_ms
    if silence_ms >= wait_ms:
        return TurnVerdict("complete", f"{why}; {silence_ms:.0f} ms of silence", values)
    tail = "" if p is None else f"; smart turn {p:.2f}" + (" (not done)" if doubt else "")
    return TurnVerdict("incomplete", why + tail, values)
