"""The removal guard: the NLU overrules disfluency removals that cut slot words out of a command.

The tagger's labels are written out here (the mistakes the shipped tagger made on coffee-grammar
orders, and real repairs) so the tests do not depend on which tagger is installed; the NLU is the
shipped model.
"""

from __future__ import annotations

import pytest

from core.settings import Settings
from core.types import NluResult, SlotValue, TaggedToken
from services.nlu import load_nlu
from services.nlu.guard import cut_slot_runs, parse_tagged


def tagged(marked: str) -> list[TaggedToken]:
    """``"brew [a double] latte"`` → words with the bracketed ones removed."""
    out: list[TaggedToken] = []
    removing = False
    for word in marked.split():
        start, end = word.startswith("["), word.endswith("]")
        removing = removing or start
        out.append(TaggedToken(word.strip("[]"), removing))
        if end:
            removing = False
    return out


@pytest.fixture(scope="module")
def nlu():
    backend = load_nlu(Settings())
    if backend.name != "bert":
        pytest.skip("needs the shipped NLU model")
    return backend


@pytest.mark.parametrize("marked, slots", [
    ("[brew a double shot twelve ounce] drip coffee with lots of skim milk",
     {"numberOfShots": "double shot", "size": "twelve ounce", "coffeeDrink": "drip coffee",
      "milkAmount": "lots of skim milk"}),
    ("i want a small single [shot medium] roast coffee with some soy milk",
     {"size": "small", "numberOfShots": "single shot", "roast": "medium roast", "coffeeDrink": "coffee",
      "milkAmount": "some soy milk"}),
    # A word said twice as two slots' values (a real barista-dev order, tune half): the tagger's
    # repetition backstop removes the size; the parse as heard reads a size and a roast.
    ("i want a [medium] medium roast americano with brown sugar",
     {"size": "medium", "roast": "medium roast", "coffeeDrink": "americano", "sugarAmount": "brown sugar"}),
])
def test_removal_that_cuts_slots_is_overruled(nlu, marked: str, slots: dict[str, str]) -> None:
    tokens = tagged(marked)
    without = parse_tagged(nlu, tokens, guard=False)
    assert without.result.slot_dict() != slots  # the tagger's mistake loses slots
    guarded = parse_tagged(nlu, tokens)
    assert guarded.restored
    assert guarded.result.intent == "orderDrink"
    assert guarded.result.slot_dict() == slots
    assert guarded.text == " ".join(t.word for t in tokens)  # slot indices refer to the words as heard
    words = guarded.text.split()
    assert all(" ".join(words[s.start:s.end]) == s.value for s in guarded.result.slots)


@pytest.mark.parametrize("marked", [
    "i want [a large no] a small latte",                              # explicit correction: two sizes
    "book a table for [two no] three people",
    "[play ah a] play a tune by layne staley",                        # restart: repeated first word
    "can i get a [large] large latte",                                # repetition inside one slot
    "set the lights to [fifty] fifty percent",
    "[rate the bourne deception] play me music by whip with zvooq",   # restart of another command
    "what's the weather in [ah um] paris",                            # fillers only
])
def test_real_disfluencies_keep_the_tagger_decision(nlu, marked: str) -> None:
    tokens = tagged(marked)
    guarded = parse_tagged(nlu, tokens)
    assert not guarded.restored
    assert guarded.result == parse_tagged(nlu, tokens, guard=False).result


def test_a_lone_slot_word_cut_without_any_sign_of_a_repair_is_overruled(nlu) -> None:
    guarded = parse_tagged(nlu, tagged("can i get a [large] latte"))
    assert guarded.restored and guarded.result.slot_dict().get("size") == "large"


def test_removed_fillers_stay_removed_and_do_not_block_the_guard(nlu) -> None:
    from services.nlu.guard import _content_runs

    tokens = tagged("[um] can i get a [large] [uh] latte")
    assert _content_runs(tokens) == [(5, 6)]
    assert _content_runs(tagged("[large um double] latte [er]")) == [(0, 3)]
    guarded = parse_tagged(nlu, tokens)
    assert guarded.restored and guarded.text == "can i get a large latte"
    assert guarded.result.slot_dict() == {"size": "large", "coffeeDrink": "latte"}


def test_no_removal_means_one_parse(nlu) -> None:
    calls: list[str] = []

    class Counting:
        name = "counting"

        def parse(self, text, hints=None):
            calls.append(text)
            return nlu.parse(text, hints)

    parse_tagged(Counting(), tagged("turn on the kitchen lights"))
    parse_tagged(Counting(), tagged("turn on the [um] kitchen lights"))  # fillers only: nothing to check
    assert len(calls) == 2


def _result(intent: str, *slots: tuple[str, int, int]) -> NluResult:
    return NluResult(intent, 0.99, tuple(SlotValue(n, "x", "x", a, b) for n, a, b in slots))


def test_cut_slot_runs_rules() -> None:
    tokens = tagged("get me a [large] latte")
    heard = _result("orderDrink", ("size", 3, 4), ("coffeeDrink", 4, 5))
    assert cut_slot_runs(tokens, _result("orderDrink", ("coffeeDrink", 3, 4)), heard) == [(3, 4)]
    # another intent, out of scope, a slot filled twice, a cleaned slot the heard parse lacks: keep
    assert cut_slot_runs(tokens, _result("PlayMusic", ("coffeeDrink", 3, 4)), heard) is None
    assert cut_slot_runs(tokens, _result("out_of_scope"), _result("out_of_scope")) is None
    twice = _result("orderDrink", ("size", 3, 4), ("size", 4, 5))
    assert cut_slot_runs(tokens, _result("orderDrink"), twice) is None
    assert cut_slot_runs(tokens, _result("orderDrink", ("milkAmount", 3, 4)), heard) is None
    # the removed words are outside every slot: nothing was cut
    outside = tagged("[please] get me a large latte")
    heard_outside = _result("orderDrink", ("size", 4, 5), ("coffeeDrink", 5, 6))
    assert cut_slot_runs(outside, _result("orderDrink", ("size", 3, 4), ("coffeeDrink", 4, 5)), heard_outside) is None


def test_settings_switch_turns_it_off() -> None:
    assert Settings().nlu_guard is True
    assert Settings(nlu_guard=False).nlu_guard is False


def test_guard_eval_counts(nlu) -> None:
    """The measuring command's counts on two hand-labelled utterances (real tagger and NLU)."""
    from services.disfluency import load_tagger
    from training.nlu.guard_eval import _key, score

    class Fixed:  # the tagger's labels written out, as above
        def tag(self, words):
            return tagged(" ".join(words)) if "[" in " ".join(words) else [TaggedToken(w, False) for w in words]

    pairs = [("i want a small single [shot medium] roast coffee".split(), "i want a small single shot medium roast coffee"),
             ("turn on the lights".split(), "turn on the lights")]
    s = score("x", pairs, Fixed(), nlu)
    assert (s.utterances, s.with_removal, s.overruled, s.agree_off, s.agree_on) == (2, 1, 1, 1, 2)
    assert "1 overruled" in s.row()
    real = score("real", [(["turn", "on", "the", "lights"], "turn on the lights")], load_tagger(Settings()), nlu)
    assert real.agree_on == 1 and _key(nlu.parse("turn on the lights"))[0] == "DeviceOn"


# ----------------------------------------------------------------- domain lexicon


@pytest.fixture(scope="module")
def coffee_lexicon():
    from domains.lexicon import DomainLexicon
    from domains.loader import load_domains

    return DomainLexicon.of(load_domains(names=["coffee"]))


def test_misheard_coffee_words_are_snapped_when_the_domain_parse_wins(nlu, coffee_lexicon) -> None:
    tokens = tagged("[um] can i get a light rose iced mocha with skin milk")
    plain = parse_tagged(nlu, tokens)
    assert plain.result.slot_dict().get("roast") != "light roast"  # what the order loses without it
    snapped = parse_tagged(nlu, tokens, lexicon=coffee_lexicon)
    assert snapped.result.intent == "orderDrink"
    assert snapped.result.slot_dict()["roast"] == "light roast"
    assert snapped.result.slot_dict()["milkAmount"] == "skim milk"
    assert [(c.heard, c.value) for c in snapped.corrections] == [("light rose", "light roast"), ("skin milk", "skim milk")]
    assert snapped.tokens[0] == TaggedToken("um", True)  # removed fillers stay, and stay removed
    assert snapped.text == "can i get a light roast iced mocha with skim milk"
    assert snapped.result.guessed == ("roast", "milkAmount")  # the snapped values are guesses to confirm
    assert plain.result.guessed == ()
    words = snapped.text.split()
    assert all(" ".join(words[s.start:s.end]) == s.value for s in snapped.result.slots)


@pytest.mark.parametrize("text", ["play the album dark rose by the killers", "turn off the kitchen lights"])
def test_other_domains_keep_their_words(nlu, coffee_lexicon, text: str) -> None:
    tokens = tagged(text)
    with_lexicon = parse_tagged(nlu, tokens, lexicon=coffee_lexicon)
    assert with_lexicon.corrections == ()
    assert with_lexicon.text == text
    assert with_lexicon.result == parse_tagged(nlu, tokens).result


def test_lexicon_setting_defaults_and_off() -> None:
    assert Settings().lexicon_domains == ["coffee"]
    assert Settings(lexicon_domains=[]).lexicon_domains == []


# ----------------------------------------------------------------- ASR alternatives


def test_an_alternative_whose_values_the_domain_knows_wins(nlu, coffee_lexicon) -> None:
    """The beam's top "a light roast dye smoker" holds a drink the menu lacks; its third hypothesis
    names one: that parse goes to the dialog, and says which hypothesis it is."""
    tokens = tagged("can i get a light roast dye smoker with some sugar")
    alternatives = ("can i get a light roast dye smoke with some sugar", "can i get a light roast iced mocha with some sugar")
    top = parse_tagged(nlu, tokens, lexicon=coffee_lexicon)
    assert top.result.slot_dict().get("coffeeDrink") != "iced mocha"
    chosen = parse_tagged(nlu, tokens, lexicon=coffee_lexicon, alternatives=alternatives)
    assert chosen.hypothesis == 2 and chosen.text == alternatives[1]
    assert chosen.result.slot_dict() == {"roast": "light roast", "coffeeDrink": "iced mocha", "sugarAmount": "some sugar"}
    assert top.hypothesis == 0


@pytest.mark.parametrize(("text", "alternative"), [
    ("can i get a large latte with some sugar", "can i get a large lot with some sugar"),  # every value known: not parsed
    ("play the album dark rose by the killers", "play the album dark roast by the killers"),  # not the domain's request
])
def test_alternatives_do_not_replace_a_transcript_the_domain_has_no_doubt_about(nlu, coffee_lexicon, text: str,
                                                                               alternative: str) -> None:
    chosen = parse_tagged(nlu, tagged(text), lexicon=coffee_lexicon, alternatives=(alternative,))
    assert chosen.hypothesis == 0 and chosen.text == text


def test_the_decoder_returns_the_beams_other_hypotheses(utterances) -> None:  # type: ignore[no-untyped-def]
    from core.audio import load_audio
    from core.settings import load_settings
    from services.asr.embedded import EmbeddedAsr

    a = load_settings().asr
    asr = EmbeddedAsr(a.model, 1, a.min_window_s, a.tokens_per_second, a.beam_size, a.fallback_window_s,
                      a.final_beam_size, n_best=5)
    clips = [load_audio(r["path"]) for r in utterances[:8]]
    finals = [asr.decoder.decode(pcm, final=True) for pcm in clips]
    assert any(f.alternatives for f in finals)  # most beams differ only in case and punctuation, not all
    for f in finals:
        assert f.text not in f.alternatives and len(set(f.alternatives)) == len(f.alternatives) <= 4
    assert asr.decoder.decode(clips[0], final=False).alternatives == ()  # greedy partials have none
    asr.decoder.n_best = 1
    top = [asr.decoder.decode(pcm, final=True) for pcm in clips]
    assert [t.text for t in top] == [f.text for f in finals]  # the top hypothesis does not change
    assert all(t.alternatives == () for t in top)
