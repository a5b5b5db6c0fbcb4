"""A misheard short answer is matched to the option it sounds like, and only then."""

from __future__ import annotations

import pytest

from core.sound_alike import closest, similarity

DRINKS = ["americano", "cappuccino", "espresso", "iced mocha", "latte", "mocha", "coffee", "drip coffee",
          "house coffee", "iced coffee"]
SIZES = ["small", "medium", "large", "eight ounce", "twelve ounce", "sixteen ounce", "twenty ounce"]


@pytest.mark.parametrize(("heard", "options", "value"), [
    # Heard by tiny.en from real speakers in barista-dev (quickturn bench words, tune split).
    ("maricano", DRINKS, "americano"),
    ("mare kano", DRINKS, "americano"),
    ("it's a maricano", DRINKS, "americano"),
    ("expresso", DRINKS, "espresso"),
    ("mocha", DRINKS, "mocha"),  # an exact answer is its own closest
    ("large", SIZES, "large"),
])
def test_a_short_reply_is_taken_as_the_option_it_sounds_like(heard: str, options: list[str], value: str) -> None:
    match = closest(heard, options)
    assert match is not None and match.value == value, match


@pytest.mark.parametrize(("heard", "options"), [
    ("check my mail", SIZES),  # "mail" sounds like "small", but the reply says something else
    ("largest animal", SIZES),
    ("switch off the light", DRINKS),  # "light" ~ "latte"
    ("oka", DRINKS),  # too far from "mocha" to say
    ("much", SIZES),  # neither "medium" nor anything else clearly
    ("i would like a large latte with oat milk", DRINKS),  # a sentence, not a misheard word
    ("", DRINKS),
])
def test_no_option_when_nothing_is_close_and_clearly_closest(heard: str, options: list[str]) -> None:
    assert closest(heard, options) is None


def test_two_options_equally_close_are_ambiguous() -> None:
    assert closest("lat", ["latte", "latta"]) is None  # as close to one as to the other


def test_similarity_is_symmetric_and_bounded() -> None:
    for a, b in [("maricano", "americano"), ("lot", "latte"), ("", "latte")]:
        assert similarity(a, b) == similarity(b, a)
        assert 0.0 <= similarity(a, b) <= 1.0
    assert similarity("latte", "latte") == 1.0
