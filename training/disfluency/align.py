"""Word labels for Disfl-QA by aligning a disfluent question with its original.

Disfl-QA (Gupta et al. 2021) gives pairs ``{original, disfluent}`` and no
token labels. Both sides are normalised like ASR output, then aligned with a
longest common subsequence. The backtrace runs from the end and takes a match
whenever the words agree, so when a word repeats ("what do petrologists no
what do unstable …") the *later* copy is kept and the earlier one becomes the
reparandum, as in Switchboard-style annotation.

A pair is **labelled** when every original word is matched, i.e. the original
is a subsequence of the disfluent text; every unmatched disfluent word is then
"remove". Otherwise the annotator paraphrased the fluent part ("can remember"
vs. "are capable of remembering") and no exact labelling exists: the pair is
counted as **unlabelable** and left out of training (eval reports it
separately). :func:`align_pairs` returns the counts.

Kinds of removed words are derived from the span shape (see :func:`span_kinds`):
fillers and editing phrases by word list, a reparandum equal to the words that
follow it is a repetition, one at the very start whose first word is not the
repair's first word is a restart, and anything else is a repair.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from core.text import words as words_of
from core.types import DisfluencyKind
from services.disfluency.rules import FILLERS

#: Editing phrases recognised at the end of a removed span (longest first).
INTERREGNUM_PHRASES: tuple[tuple[str, ...], ...] = tuple(
    sorted(
        (
            tuple(p.split())
            for p in (
                "no", "sorry", "i mean", "i meant", "no wait", "wait", "no sorry", "sorry no",
                "scratch that", "make that", "or rather", "rather", "actually", "actually no",
                "oops", "oh", "no no", "i'm sorry", "my bad", "well", "let me see", "i guess",
                "or", "uh no", "no make that", "or make that", "what i mean is", "no i mean",
                "wait no", "hold on", "rather make that", "correction", "nope", "i meant to say",
                "let me rephrase", "or should i say", "sorry i mean", "that is", "no wow", "um no",
                "you know", "like", "er", "uh", "um", "i'm mean",
            )
        ),
        key=len,
        reverse=True,
    )
)


def lcs_keep_mask(disfluent: Sequence[str], original: Sequence[str]) -> tuple[list[bool], int]:
    """Which disfluent words align to the original, and how many original words are unmatched.

    Returns:
        ``(keep, unmatched)``: ``keep[i]`` is true when disfluent word ``i``
        is matched; ``unmatched`` counts original words left without a match.
    """
    n, m = len(disfluent), len(original)
    # dp[i][j] = LCS length of disfluent[:i] and original[:j].
    dp = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        di = disfluent[i - 1]
        row, prev = dp[i], dp[i - 1]
        for j in range(1, m + 1):
            if di == original[j - 1]:
                row[j] = prev[j - 1] + 1
            else:
                row[j] = row[j - 1] if row[j - 1] >= prev[j] else prev[j]
    keep = [False] * n
    i, j = n, m
    while i > 0 and j > 0:
        if disfluent[i - 1] == original[j - 1]:
            keep[i - 1] = True
            i -= 1
            j -= 1
        elif dp[i - 1][j] >= dp[i][j - 1]:
            i -= 1  # prefer dropping a disfluent word: the later copy stays
        else:
            j -= 1
    return keep, m - dp[n][m]


def span_kinds(words: Sequence[str], remove: Sequence[bool]) -> list[DisfluencyKind | None]:
    """Kinds for the removed words of one labelled utterance (None for kept words)."""
    n = len(words)
    kinds: list[DisfluencyKind | None] = [None] * n
    i = 0
    while i < n:
        if not remove[i]:
            i += 1
            continue
        j = i
        while j < n and remove[j]:
            j += 1
        # span = words[i:j]; strip editing phrases and fillers from its end.
        end = j
        while end > i:
            if words[end - 1] in FILLERS:
                kinds[end - 1] = "filler"
                end -= 1
                continue
            for phrase in INTERREGNUM_PHRASES:
                k = len(phrase)
                if end - k >= i and tuple(words[end - k : end]) == phrase:
                    for q in range(end - k, end):
                        kinds[q] = "interregnum"
                    end -= k
                    break
            else:
                break
        rep = [q for q in range(i, end)]
        for q in rep:
            if words[q] in FILLERS:
                kinds[q] = "filler"
        rep = [q for q in rep if kinds[q] is None]
        if rep:
            following = [q for q in range(j, n) if not remove[q]][: len(rep)]
            rep_words = [words[q] for q in rep]
            if rep_words == [words[q] for q in following]:
                kind: DisfluencyKind = "repetition"
            elif rep[0] == 0 and (not following or words[following[0]] != rep_words[0]):
                kind = "restart"
            else:
                kind = "repair"
            for q in rep:
                kinds[q] = kind
        i = j
    return kinds


@dataclass(slots=True)
class Labelled:
    """One utterance with gold labels."""

    words: list[str]
    remove: list[bool]
    kinds: list[DisfluencyKind | None]
    source: str = ""


@dataclass(slots=True)
class AlignStats:
    """What the aligner did with a set of pairs."""

    pairs: int = 0
    labelled: int = 0
    unlabelable: int = 0
    identical: int = 0
    unlabelable_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "pairs": self.pairs,
            "labelled": self.labelled,
            "unlabelable": self.unlabelable,
            "identical": self.identical,
        }


def align_pair(disfluent: str, original: str) -> tuple[Labelled, int]:
    """Label one pair; returns the labels and the number of unmatched original words."""
    d, o = words_of(disfluent), words_of(original)
    keep, unmatched = lcs_keep_mask(d, o)
    remove = [not k for k in keep]
    return Labelled(d, remove, span_kinds(d, remove)), unmatched


def align_pairs(
    pairs: Iterable[tuple[str, str, str]], *, keep_unlabelable: bool = False
) -> tuple[list[Labelled], AlignStats]:
    """Label ``(pair_id, disfluent, original)`` triples.

    Args:
        keep_unlabelable: also return pairs whose original is not a subsequence
            of the disfluent text (approximate labels from the partial LCS).
    """
    stats = AlignStats()
    out: list[Labelled] = []
    for pair_id, disfluent, original in pairs:
        stats.pairs += 1
        item, unmatched = align_pair(disfluent, original)
        item.source = pair_id
        if not item.words:
            stats.unlabelable += 1
            stats.unlabelable_ids.append(pair_id)
            continue
        if unmatched:
            stats.unlabelable += 1
            stats.unlabelable_ids.append(pair_id)
            if keep_unlabelable:
                out.append(item)
            continue
        stats.labelled += 1
        if not any(item.remove):
            stats.identical += 1
        out.append(item)
    return out, stats
