"""The rule-based disfluency tagger: the fallback when no model is installed.

Three plain rules, applied in this order to a lower-case, punctuation-free
word list:

1. **Fillers**: ``uh``, ``um``, ``er``, ``ah``, ``hmm`` and their spellings
   are removed wherever they occur.
2. **Interregnum + repair**: an editing phrase (``i mean``, ``sorry``,
   ``no wait``, ``scratch that``, …) with words after it is removed together
   with its reparandum. The reparandum starts at the last earlier occurrence of
   the repair's first word ("for seven no sorry *for* eight" removes
   "for seven"); without one, the one word before the phrase is replaced
   ("seven no sorry eight" removes "seven"). A bare ``no`` only counts between
   two number words ("seven no eight"), because "no" is usually meant.
3. **Repetitions**: an immediately repeated word or bigram (fillers skipped,
   so "for uh for" counts) loses its first copy, except for a few words that
   are fluent when doubled ("had had", "that that", "bye bye").

It is deliberately conservative: a fluent command should come out unchanged.
The streaming session waits for a fixed lookahead of words, enough for every
rule to have seen its right context.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.text import normalize_text
from core.types import DisfluencyKind, TaggedToken
from services.disfluency.base import StreamingTagger, Tagger
from services.disfluency.streaming import LookaheadSession

FILLERS = frozenset({"uh", "um", "uhm", "umm", "uhh", "er", "erm", "ah", "hmm", "hm", "mm", "mmm", "eh"})

INTERREGNA: tuple[tuple[str, ...], ...] = tuple(
    tuple(p.split())
    for p in (
        "no no wait",
        "no sorry",
        "no wait",
        "wait no",
        "sorry no",
        "i mean",
        "i meant",
        "scratch that",
        "make that",
        "or rather",
        "actually no",
        "no actually",
        "oops",
        "sorry",
    )
)

NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
    "half quarter noon midnight".split()
)

FLUENT_DOUBLES = frozenset({"had", "that", "bye", "very", "really", "ha", "no", "so"})

#: Words the streaming session waits before committing a label: the longest
#: rule (bigram repetition, "w1 w2 w1 w2") needs two words of right context
#: plus an interregnum's length.
RULE_LOOKAHEAD_WORDS = 3


def _is_number(word: str) -> bool:
    return word in NUMBER_WORDS or word.isdigit()


def repetition_indices(words: Sequence[str], skip: Sequence[bool]) -> list[int]:
    """First copies of immediately repeated words or bigrams, ignoring ``skip`` words.

    ``words`` are normalised; "for uh for" counts when "uh" is skipped. Words
    in :data:`FLUENT_DOUBLES` may be doubled ("had had"). The BERT tagger uses
    this as a backstop for exact repetitions.
    """
    kept = [k for k in range(len(words)) if not skip[k]]
    out: list[int] = []
    j = 0
    while j < len(kept):
        a = kept[j]
        if j + 3 < len(kept):
            b, c, d = kept[j + 1], kept[j + 2], kept[j + 3]
            if words[a] == words[c] and words[b] == words[d] and words[a] != words[b]:
                out += [a, b]
                j += 2
                continue
        if j + 1 < len(kept):
            b = kept[j + 1]
            if words[a] == words[b] and words[a] not in FLUENT_DOUBLES:
                out.append(a)
        j += 1
    return out


class RuleTagger(Tagger):
    """Filler list, editing phrases and repetitions; see the module docstring."""

    name = "rules"

    def tag(self, words: Sequence[str]) -> list[TaggedToken]:
        given = list(words)
        words = [normalize_text(w) for w in given]
        n = len(words)
        kinds: list[DisfluencyKind | None] = [None] * n

        for i, w in enumerate(words):
            if w in FILLERS:
                kinds[i] = "filler"

        # Interregnum + repair, scanned left to right.
        i = 1
        while i < n:
            phrase = self._interregnum_at(words, kinds, i)
            if phrase == 0:
                i += 1
                continue
            repair_at = i + phrase
            # Skip fillers between the phrase and the repair onset.
            while repair_at < n and kinds[repair_at] == "filler":
                repair_at += 1
            if repair_at >= n:
                break
            for k in range(i, i + phrase):
                kinds[k] = "interregnum"
            onset = words[repair_at]
            start = None
            for k in range(i - 1, -1, -1):
                if words[k] == onset and kinds[k] is None:
                    start = k
                    break
            if start is None:
                start = i - 1
                while start >= 0 and kinds[start] is not None:
                    start -= 1
                start = max(start, 0)
            for k in range(start, i):
                if kinds[k] is None:
                    kinds[k] = "repair"
            i = repair_at

        # Repetitions among the words still kept (fillers skipped).
        for k in repetition_indices(words, [kind is not None for kind in kinds]):
            kinds[k] = "repetition"

        return [TaggedToken(w, k is not None, k) for w, k in zip(given, kinds, strict=True)]

    @staticmethod
    def _interregnum_at(words: Sequence[str], kinds: Sequence[DisfluencyKind | None], i: int) -> int:
        """Length of the editing phrase starting at ``i`` (0 if none)."""
        for phrase in INTERREGNA:
            if tuple(words[i : i + len(phrase)]) == phrase and i + len(phrase) < len(words):
                return len(phrase)
        if words[i] == "no" and i + 1 < len(words):
            prev = next((words[k] for k in range(i - 1, -1, -1) if kinds[k] is None), "")
            if _is_number(prev) and _is_number(words[i + 1]):
                return 1
        return 0

    def stream(self) -> StreamingTagger:
        return LookaheadSession(self, RULE_LOOKAHEAD_WORDS)
