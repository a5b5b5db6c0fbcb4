"""The NLU's second opinion on the disfluency tagger's removals.

Why this exists: the tagger learned disfluencies from questions, SNIPS commands and the
assistant's own command templates. A domain phrased in a way it never saw (a user's imported
grammar: "brew a double shot twelve ounce drip coffee") can look like a string of repairs to it,
and the words it removes take their slots with them: the order loses its size and shots, and no
later stage can get them back. The NLU knows the domains, so when the tagger removed words the
transcript is parsed as heard as well, and the parse as heard wins only when everything says the
removal cut content rather than a mistake:

* both parses have the same in-scope intent;
* the parse as heard fills strictly more slots, each at most once: a real repair repeats the slot
  it corrects ("a large no a small latte" has two sizes), so a repeated slot keeps the tagger's
  decision;
* every slot of the cleaned parse is also filled as heard;
* at least one removed word lies inside a slot the parse as heard found;
* no editing phrase was removed ("no", "sorry", "i mean", "scratch that", ...): an explicit
  correction is the speaker's word, and the tagger's reading of it is trusted.

It costs one more NLU call, and only on turns where the tagger removed something.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.disfluency.base import TaggedToken, clean_text
from services.disfluency.rules import FILLERS, INTERREGNA
from services.nlu.base import OUT_OF_SCOPE, NluBackend, NluHints, NluResult

#: Removed words that mark an explicit self-correction: the interregna of
#: ``services.disfluency.rules`` ("no", "sorry", "i mean", "make that", ...) and a few more.
EDIT_PHRASES: tuple[tuple[str, ...], ...] = (
    *INTERREGNA, ("no",), ("nope",), ("wait",), ("actually",), ("instead",), ("rather",),
)


@dataclass(frozen=True, slots=True)
class GuardedParse:
    """The parse the dialog gets and the labels it was made from.

    Attributes:
        result: intent and slots; slot indices refer to ``clean_text(tokens)``.
        tokens: the tagger's labels, or, when ``restored``, the same words all kept.
        restored: the removal was overruled and the transcript was parsed as heard.
    """

    result: NluResult
    tokens: tuple[TaggedToken, ...]
    restored: bool = False

    @property
    def text(self) -> str:
        return clean_text(self.tokens)


def _removed_runs(tokens: Sequence[TaggedToken]) -> list[tuple[int, int]]:
    """Maximal runs ``[start, end)`` of removed words."""
    runs: list[tuple[int, int]] = []
    for i, t in enumerate(tokens):
        if not t.remove:
            continue
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _has_phrase(words: Sequence[str], phrases: Sequence[tuple[str, ...]]) -> bool:
    return any(tuple(words[i:i + len(p)]) == p for p in phrases for i in range(len(words) - len(p) + 1))


def _looks_like_repair(tokens: Sequence[TaggedToken], start: int, end: int) -> bool:
    """A removed run followed by its own first word again ("[play a] play a tune", "[table] table")
    or holding an editing phrase: the shape of a repetition, repair or restart."""
    words = [t.word for t in tokens[start:end] if t.word not in FILLERS]
    if not words or _has_phrase(words, EDIT_PHRASES):
        return True
    after = [t.word for t in tokens[end:] if not t.remove and t.word not in FILLERS][:2]
    return words[0] in after


def cut_slot_runs(tokens: Sequence[TaggedToken], cleaned: NluResult, heard: NluResult) -> list[tuple[int, int]] | None:
    """The removed runs that hold slot words of the parse as heard, when nothing else speaks
    against that parse (see the module doc); ``None`` keeps the tagger's decision."""
    if heard.intent == OUT_OF_SCOPE or heard.intent != cleaned.intent:
        return None
    heard_names = [s.slot for s in heard.slots]
    if len(set(heard_names)) != len(heard_names):
        return None
    if not {s.slot for s in cleaned.slots} <= set(heard_names):
        return None
    words = [t.word for t in tokens]
    if any(w in FILLERS for s in heard.slots for w in words[s.start:s.end]):
        return None  # a filler inside a slot: the parse as heard is the confused one
    runs = _removed_runs(tokens)
    if any(_looks_like_repair(tokens, a, b) for a, b in runs):
        return None
    cut = [(a, b) for a, b in runs if any(s.start < b and a < s.end for s in heard.slots)]
    return cut or None


def parse_tagged(nlu: NluBackend, tokens: Sequence[TaggedToken], hints: NluHints | None = None,
                 *, guard: bool = True) -> GuardedParse:
    """Parse the cleaned transcript; with ``guard``, overrule removals that cut slots (see module doc)."""
    tokens = tuple(tokens)
    cleaned = nlu.parse(clean_text(tokens), hints)
    if not guard or not any(t.remove for t in tokens):
        return GuardedParse(cleaned, tokens)
    kept = tuple(TaggedToken(t.word, False) for t in tokens)
    heard = nlu.parse(clean_text(kept), hints)
    cut = cut_slot_runs(tokens, cleaned, heard)
    if cut is None:
        return GuardedParse(cleaned, tokens)
    # A restart of another command ("[rate the bourne deception] play me music by whip") brings
    # that command's carrier words, and on its own has that command's intent. A run of nothing but
    # slot words ("a [small] single [shot dark roast] mocha") carries no other command.
    in_slot = {i for s in heard.slots for i in range(s.start, s.end)}
    for a, b in cut:
        if all(i in in_slot or tokens[i].word in FILLERS for i in range(a, b)):
            continue
        fragment = " ".join(t.word for t in tokens[a:b] if t.word not in FILLERS)
        if nlu.parse(fragment).intent not in (heard.intent, OUT_OF_SCOPE):
            return GuardedParse(cleaned, tokens)
    return GuardedParse(heard, kept, restored=True)
