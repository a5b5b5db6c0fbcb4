"""Snap misheard phrases of a transcript to a closed domain vocabulary (Sans-I/O).

Why: on real coffee orders most whole-order errors are one slot value misheard as a
sound-alike that the NLU cannot read as that slot: "light rose" (light roast), "small
marker" (mocha), "lat" (latte), "to maricano" (americano), "skin milk" (skim milk),
"ca patino" (cappuccino). The domain's categorical slot values are the whole vocabulary
of those slots, so a span of the transcript that sounds like one of them, and is not
already made of the domain's own words, is most likely that value.

This module only proposes the corrected transcript; the NLU decides whether it wins
(``services.nlu.guard``): the corrected text is parsed too and taken only when its intent
belongs to the domain, so a request from another domain that happens to sound like a
coffee word ("play the marker song") keeps its words. The threshold was chosen on the
tune half of ``barista-dev`` (``quickturn eval ... --lexicon-threshold``, see
docs/experiments/domain-lexicon.md).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from core.sound_alike import similarity
from domains.model import Domain

DEFAULT_THRESHOLD = 0.75
"""Lowest sound-alike score (letters + Metaphone, :func:`core.sound_alike.similarity`) accepted."""

RESIDUE_FLOOR = 0.6
"""The words that change must sound alike on their own too, not only inside the span."""

FUNCTION_WORDS = frozenset({"a", "an", "and", "the", "of", "to", "with", "for", "in", "on", "at", "or", "some", "me",
                            "i", "it", "is", "be", "my", "your", "please"})
"""Words a misheard span may hold, but never only: "and milk" is not a misheard "almond milk"."""

MIN_LETTERS = 3
"""Spans shorter than this (letters) are never snapped: "a", "to" and "of" sound like too much."""


_NOT_LETTER = re.compile(r"[^a-z]")
_FINAL_ER = re.compile(r"er$")
_SILENT_R = re.compile(r"r(?![aeiouy])")


@lru_cache(maxsize=8192)
def _accent_key(text: str) -> str:
    """Letters as a non-rhotic speaker says them, the way Whisper then spells them: "mocha" and
    "marker", "moker", "mocker" all become ``moka``/``maka`` (ch/ck → k, a final "er" → "a", an
    "r" not before a vowel is silent)."""
    out = []
    for word in text.lower().split():
        w = _NOT_LETTER.sub("", word)
        w = w.replace("ch", "k").replace("ck", "k")
        w = _FINAL_ER.sub("a", w)
        w = _SILENT_R.sub("", w)
        out.append(w)
    return "".join(out)


def sounds_like(heard: str, value: str) -> float:
    """:func:`core.sound_alike.similarity`, or the letters of both as a non-rhotic accent says them
    when those agree more (real orders: "marker" for mocha, "light rose" for light roast)."""
    a, b = _accent_key(heard), _accent_key(value)
    accent = fuzz.ratio(a, b) / 100 if a and b else 0.0
    return max(similarity(heard, value), accent)


def _residue(span: list[str], phrase: list[str]) -> tuple[str, str] | None:
    """What differs between a span and a phrase once their common words are aligned, or None.

    None when snapping would only insert or delete words (one side's residue is empty:
    "with brown sugar" is not "brown sugar" misheard) or would change a word of the
    vocabulary ("soy milk" never becomes "whole milk": the vocabulary word differs).
    """
    matcher = difflib.SequenceMatcher(None, span, phrase, autojunk=False)
    heard: list[str] = []
    meant: list[str] = []
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            continue
        heard += span[a0:a1]
        meant += phrase[b0:b1]
    if not heard or not meant:
        return None
    return " ".join(heard), " ".join(meant)


@dataclass(frozen=True, slots=True)
class Correction:
    """One snapped span: word positions ``[start, end)`` of the input, what was heard, the value."""

    start: int
    end: int
    heard: str
    value: str
    score: float
    anchors: int = 0
    """Words of the span that are the phrase's own (aligned, unchanged)."""


@dataclass(frozen=True, slots=True)
class DomainLexicon:
    """The closed vocabulary of some domains: their categorical slot values and synonyms."""

    phrases: tuple[str, ...]
    words: frozenset[str]
    intents: frozenset[str]
    threshold: float = DEFAULT_THRESHOLD

    def knows(self, value: str) -> bool:
        """Whether ``value`` is one of the vocabulary's phrases (a slot value the domain has)."""
        return value.lower() in self.phrases

    @classmethod
    def of(cls, domains: Iterable[Domain], threshold: float = DEFAULT_THRESHOLD) -> DomainLexicon:
        """The lexicon of ``domains`` (their categorical slots only: an open slot has no vocabulary)."""
        phrases: dict[str, None] = {}
        intents: set[str] = set()
        for domain in domains:
            intents.update(domain.intents)
            for slot in domain.slots.values():
                if slot.kind == "categorical":
                    phrases.update(dict.fromkeys(p.lower() for p in slot.phrases()))
        words = frozenset(w for p in phrases for w in p.split())
        return cls(tuple(phrases), words, frozenset(intents), threshold)

    def correct(self, words: Sequence[str]) -> tuple[list[str], list[Correction]]:
        """The words with sound-alike spans replaced by vocabulary phrases, and the replacements.

        A span is a candidate when it has one word more, the same number or one fewer than the
        phrase; holds a word outside the vocabulary (so "medium roast" never becomes "dark
        roast"); sounds like the phrase (:func:`sounds_like` ≥ ``threshold``); and the words that
        would change (:func:`_residue`) exist on both sides, hold no vocabulary word, are not only
        function words, have at least :data:`MIN_LETTERS` letters and sound alike on their own
        (≥ :data:`RESIDUE_FLOOR`). Of overlapping candidates the anchored ones win, then the
        higher score.

        The checks are independent, so their order changes nothing but the cost: the whole-span
        score, cached keys and C-speed ratios, rejects nearly every span before the alignment
        (difflib, the slow part) runs; an 18-word order costs ~54 ms the other way round.
        """
        candidates: list[Correction] = []
        for phrase in self.phrases:
            target = phrase.split()
            n = len(target)
            for size in {max(1, n - 1), n, n + 1}:
                for start in range(len(words) - size + 1):
                    span = list(words[start:start + size])
                    if all(w in self.words for w in span):
                        continue
                    # The whole span against the whole phrase: the words they share are the
                    # context that makes "light rose" light roast and a lone "rose" a flower.
                    text = " ".join(span)
                    score = sounds_like(text, phrase)
                    if score < self.threshold:
                        continue
                    residue = _residue(span, target)
                    if residue is None:
                        continue
                    heard, meant = residue
                    if any(w in self.words for w in heard.split()):
                        continue  # a vocabulary word would move or change ("sweetener and lots of")
                    if all(w in FUNCTION_WORDS for w in heard.split()):
                        continue
                    if sum(c.isalpha() for c in heard) < MIN_LETTERS or sounds_like(heard, meant) < RESIDUE_FLOOR:
                        continue  # what changes must itself sound alike: "with" is not a misheard "some"
                    anchors = len(span) - len(heard.split())
                    candidates.append(Correction(start, start + size, text, phrase, round(score, 3), anchors))
        taken: list[Correction] = []
        used: set[int] = set()
        # Anchored first: a candidate that keeps some of the phrase's own words around the misheard
        # ones ("late roast" → light roast) has context that a lone word ("late" → latte) lacks.
        for c in sorted(candidates, key=lambda c: (-c.anchors, -c.score, c.start, c.value)):
            if used.isdisjoint(range(c.start, c.end)):
                taken.append(c)
                used.update(range(c.start, c.end))
        taken.sort(key=lambda c: c.start)
        out: list[str] = []
        pos = 0
        for c in taken:
            out += words[pos:c.start]
            out += c.value.split()
            pos = c.end
        out += words[pos:]
        return out, taken
