"""The end-of-turn rules on hand-made signals (no audio, no models)."""

from __future__ import annotations

import pytest

from core.settings import TurnSettings
from core.types import NluHints, NluResult, SlotValue, TaggedToken
from services.turn.policy import TurnSignals, acoustic_needed, decide, lexical_hold, semantic_state

S = TurnSettings()
TIMER = NluResult("SetTimer", 0.99, (SlotValue("duration", "ten minutes", "PT10M", 4, 6),))


def signals(text: str, nlu: NluResult | None = TIMER, plan: str | None = "done", p: float | None = 0.9,
            expected: NluHints | None = None, speech_ms: float = 1500.0, held: int = 0) -> TurnSignals:
    words = tuple(text.split())
    return TurnSignals(words, tuple(TaggedToken(w, w in ("um", "uh")) for w in words), nlu, plan, expected, p, speech_ms,
                       held)


@pytest.mark.parametrize(
    ("text", "hold"),
    [
        ("set a timer for", 'trailing function word "for"'),
        ("turn off the", 'trailing function word "the"'),
        ("i'd like a um", 'trailing filler "um"'),
        ("add milk and", 'trailing function word "and"'),
        ("set a timer for ten minutes", None),
        ("turn the lights on", None),
        ("no", None),
    ],
)
def test_lexical_hold(text: str, hold: str | None) -> None:
    words = text.split()
    assert lexical_hold(words, [TaggedToken(w, w in ("um", "uh")) for w in words]) == hold


def test_a_filler_the_tagger_removed_still_shows_where_the_sentence_stopped() -> None:
    words = "i'd like a uh".split()
    tokens = [TaggedToken("i'd", False), TaggedToken("like", False), TaggedToken("a", False), TaggedToken("uh", True)]
    assert lexical_hold(words, tokens) == 'trailing filler "uh"'
    assert lexical_hold(words[:3], tokens[:3]) == 'trailing function word "a"'


def test_held_words_hold_the_turn() -> None:
    assert lexical_hold(["book", "seven"], [], held_words=1) == "the tagger holds 1 word(s)"


def test_semantic_state() -> None:
    assert semantic_state(TIMER, "done", None)[0] == "complete"
    assert semantic_state(NluResult("orderDrink", 0.9), "ask_slot", None)[0] == "missing-slot"
    assert semantic_state(NluResult("out_of_scope", 0.9), "fallback", None)[0] == "unknown"
    large = NluResult("orderDrink", 0.9, (SlotValue("size", "large", "large", 0, 1),))
    # an answer to the open question is complete even when the dialog will ask for the next slot
    assert semantic_state(large, "ask_slot", NluHints("orderDrink", "size"))[0] == "answered"
    yes = NluResult("Affirm", 1.0)
    assert semantic_state(yes, "done", NluHints("orderDrink", None))[0] == "complete"  # answers a confirmation
    assert semantic_state(yes, "done", None)[0] == "unknown"  # "i like it": likely a guess at a fragment


def test_a_complete_request_ends_at_the_first_decision() -> None:
    verdict = decide(signals("set a timer for ten minutes"), S.eval_silence_ms, S)
    assert verdict.decision == "complete" and "SetTimer" in verdict.reason
    assert verdict.signals["smart_turn"] == 0.9 and verdict.signals["semantic"] == "complete"


def test_a_hesitation_holds_until_the_max_hold() -> None:
    s = signals("set a timer for", nlu=NluResult("SetTimer", 0.8), plan="ask_slot", p=0.99)
    for silence in (S.eval_silence_ms, 600, 1200, 1500, S.max_hold_ms - 1):
        assert decide(s, silence, S).decision == "incomplete"
    assert decide(s, S.max_hold_ms, S).decision == "max-hold"


def test_a_complete_parse_needs_no_audio_model() -> None:
    s = signals("set a timer for ten minutes", p=None)
    assert decide(s, S.eval_silence_ms, S).decision == "complete"
    assert not acoustic_needed(s, S)


def test_missing_slot_or_unknown_waits_for_the_audio_model_or_a_longer_silence() -> None:
    latte = signals("i'd like a latte please", nlu=NluResult("orderDrink", 0.95), plan="ask_slot", p=0.5)
    assert acoustic_needed(latte, S)
    assert decide(latte, S.eval_silence_ms, S).decision == "incomplete"
    assert decide(latte, S.unknown_silence_ms, S).decision == "complete"
    sure = signals("i'd like a latte please", nlu=NluResult("orderDrink", 0.95), plan="ask_slot", p=0.95)
    assert decide(sure, S.eval_silence_ms, S).decision == "complete"
    doubt = signals("turn off the arm", nlu=NluResult("DeviceOff", 0.9), plan="ask_slot", p=0.05)
    assert decide(doubt, S.unknown_silence_ms, S).decision == "incomplete"
    assert "(not done)" in decide(doubt, S.unknown_silence_ms, S).reason
    assert decide(doubt, S.doubt_silence_ms, S).decision == "complete"


def test_a_noise_burst_never_ends_early() -> None:
    s = signals("set a timer for ten minutes", speech_ms=100.0)
    assert decide(s, S.eval_silence_ms, S).decision == "incomplete"
    assert decide(s, S.max_hold_ms, S).decision == "max-hold"
