"""Snapping misheard words to a closed domain vocabulary (domains/lexicon.py).

The heard phrases are Whisper tiny.en's real mishearings of barista-dev orders.
"""

from __future__ import annotations

import pytest

from domains.lexicon import DomainLexicon
from domains.loader import load_domains


@pytest.fixture(scope="module")
def coffee() -> DomainLexicon:
    return DomainLexicon.of(load_domains(names=["coffee"]))


@pytest.mark.parametrize("heard, meant", [
    ("can i get a light rose iced mocha", "can i get a light roast iced mocha"),
    ("can i have a medium rose coffee with sugar", "can i have a medium roast coffee with sugar"),
    ("can i get a small triple shot cappuccino with a bit of skin milk",
     "can i get a small triple shot cappuccino with a bit of skim milk"),
    ("brew a small ice coffee with cream", "brew a small iced coffee with cream"),
    ("give me a double shat mocha with almond milk", "give me a double shot mocha with almond milk"),
    ("i want a single shot maricano", "i want a single shot americano"),
])
def test_misheard_values_are_snapped(coffee: DomainLexicon, heard: str, meant: str) -> None:
    words, corrections = coffee.correct(heard.split())
    assert " ".join(words) == meant
    assert corrections and all(c.score >= coffee.threshold for c in corrections)
    assert all(" ".join(heard.split()[c.start:c.end]) == c.heard for c in corrections)


@pytest.mark.parametrize("text", [
    "may i have a medium roast latte with lots of sweetener and lots of soy milk",  # already right
    "give me a twelve ounce mocha with soy milk",  # "with soy milk" is not "whole milk"
    "i'd like a latte with brown sugar",  # "with" is not a misheard "some"
    "set a timer for ten minutes",  # another domain, no sound-alike
    "",
])
def test_right_words_and_other_requests_stay(coffee: DomainLexicon, text: str) -> None:
    words, corrections = coffee.correct(text.split())
    assert corrections == []
    assert words == text.split()


def test_vocabulary_words_never_move_or_change(coffee: DomainLexicon) -> None:
    words, corrections = coffee.correct("brew a cappuccino with a little bit of sweetener and lots of cream".split())
    assert corrections == []
    assert words[-2:] == ["of", "cream"]


def test_threshold_and_open_slots() -> None:
    strict = DomainLexicon.of(load_domains(names=["coffee"]), threshold=0.99)
    assert strict.correct("can i get a light rose iced mocha".split())[1] == []
    timers = DomainLexicon.of(load_domains(names=["timers"]))
    assert "orderDrink" not in timers.intents
    assert all(" " in p or p.isalpha() for p in timers.phrases)  # categorical values only (none open)


def test_the_lexicon_only_proposes(coffee: DomainLexicon) -> None:
    """"lights" sounds enough like "light roast" to be proposed; the NLU's parse decides, and
    "turn off the kitchen light roast" is no coffee order (tests/services/nlu/test_nlu_guard.py)."""
    words, corrections = coffee.correct("turn off the kitchen lights".split())
    assert [(c.heard, c.value) for c in corrections] == [("lights", "light roast")]
