"""Which expected answer a misheard short reply sounds like.

After "What would you like to drink?" the answer is one of a handful of words,
and a recognizer that gets it wrong usually gets it wrong *by sound*: real
speakers' "americano" comes back as "maricano", "mare kano", "the maricano".
A prompt can make the right word likelier but cannot make a wrong one lose,
so the dialog, which knows the question it asked and its possible answers,
compares what was heard with each answer by spelling and by sound (Metaphone
keys from ``jellyfish``, similarity from ``rapidfuzz``) and takes the closest
one only when it is close and clearly closer than the next.

The score of a heard span against a value is the mean of two similarities in
[0, 1]: the letters (spaces removed, so "mare kano" meets "americano") and the
Metaphone keys (so "expresso" meets "espresso"). Either alone over-matches:
letters pair "lot" with "latte" weakly but Metaphone pairs them exactly (both
``LT``); letters keep that from being enough. The thresholds are chosen on
the tune half of the one-word clips (``quickturn bench words``) and checked
against short requests that are not answers (docs/experiments/one-word-answers.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import jellyfish
from rapidfuzz import fuzz

MAX_WORDS = 4
"""Longer replies are not a one-word answer misheard; they go through the NLU as they are."""
THRESHOLD = 0.7
"""Lowest score accepted (tune split: see the module doc)."""
MARGIN = 0.15
"""The best value must beat the runner-up by this much, or the reply is ambiguous."""


@dataclass(frozen=True, slots=True)
class SoundAlike:
    """The closest value, its score, the runner-up's score and the span of the reply it matched."""

    value: str
    score: float
    runner_up: float
    span: str


_NOT_LETTER = re.compile(r"[^a-z]")


@lru_cache(maxsize=8192)
def _squash(text: str) -> str:
    """Letters only: the same spans and values are compared many times (domains.lexicon)."""
    return _NOT_LETTER.sub("", text.lower())


@lru_cache(maxsize=4096)
def _key(text: str) -> str:
    squashed = _squash(text)
    return jellyfish.metaphone(squashed) if squashed else ""


def similarity(heard: str, value: str) -> float:
    """Mean of the letter and the Metaphone similarity of two phrases, in [0, 1]."""
    a, b = _squash(heard), _squash(value)
    if not a or not b:
        return 0.0
    ka, kb = _key(heard), _key(value)
    sound = fuzz.ratio(ka, kb) / 100 if ka and kb else 0.0
    return (fuzz.ratio(a, b) / 100 + sound) / 2


AROUND = frozenset({"a", "an", "the", "uh", "um", "er", "oh", "please", "it's", "its", "just", "i", "guess",
                    "maybe", "like", "some", "one", "make", "it", "have", "i'll", "i'd"})
"""The only words a reply may hold around the matched span ("it's a maricano", "uh mocha please"):
a reply with any other word ("check my mail", "largest animal") says something else."""


def _spans(words: Sequence[str]) -> list[str]:
    """Contiguous spans whose outside is only :data:`AROUND` words."""
    out = []
    for i in range(len(words)):
        if i and words[i - 1] not in AROUND:
            break
        for j in range(len(words), i, -1):
            out.append(" ".join(words[i:j]))
            if words[j - 1] not in AROUND:
                break
    return out


def closest(heard: str, values: Sequence[str], *, threshold: float = THRESHOLD, margin: float = MARGIN,
            max_words: int = MAX_WORDS) -> SoundAlike | None:
    """The value a short reply sounds like, or None when none is close and clearly closest.

    Spans of the reply are compared ("it's a maricano" → "maricano"), so a filler or an
    article around the answer does not hide it; any other word outside the span rules the
    span out (:data:`AROUND`).
    """
    words = re.findall(r"[a-z']+", heard.lower())
    if not words or len(words) > max_words or not values:
        return None
    best: dict[str, tuple[float, str]] = {}
    for span in _spans(words):
        for value in values:
            score = similarity(span, value)
            if score > best.get(value, (-1.0, ""))[0]:
                best[value] = (score, span)
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
    value, (score, span) = ranked[0]
    runner_up = ranked[1][1][0] if len(ranked) > 1 else 0.0
    if score < threshold or score - runner_up < margin:
        return None
    return SoundAlike(value, round(score, 3), round(runner_up, 3), span)
