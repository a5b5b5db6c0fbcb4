"""The NLU's second opinion on the disfluency tagger's removals.

Why this exists: the tagger learned disfluencies from questions, SNIPS commands and the
assistant's own command templates. A domain phrased in a way it never saw (a user's imported
grammar: "brew a double shot twelve ounce drip coffee") can look like a string of repairs to it,
and the words it removes take their slots with them: the order loses its size and shots, and no
later stage can get them back. The NLU knows the domains, so when the tagger removed words other than
fillers, the transcript is parsed with those words back as well, and that parse wins only when
everything says the removal cut content rather than a mistake:

* both parses have the same in-scope intent;
* the parse as heard fills every slot of the cleaned parse and fills no slot twice: a real repair
  repeats the slot it corrects ("a large no a small latte" has two sizes);
* a removed run holds words of a slot the parse as heard found;
* no removed run holds an editing phrase ("no", "sorry", "i mean", "make that", ...): an explicit
  correction is the speaker's word; nor is one followed by its own first word ("[play a] play a
  tune", "[table] table"): the shape of a restart or repetition;
* a removed run with words outside the slots (carrier words) has the same intent, or none, on its
  own: "[rate the bourne deception] play me music by whip" restarts another command.

Removed fillers stay removed throughout. It costs one more NLU call on turns where the tagger
removed a word that is not a filler, and a third when a removed run has carrier words.

Last, with a :class:`~domains.lexicon.DomainLexicon`, a transcript with spans that sound like a
closed domain vocabulary ("light rose", "skin milk") is parsed once more with them snapped to it,
and that parse wins when its intent is one of the lexicon's domains and it finds at least as many
slots as the parse as written, whose intent is the same or another domain's: the domain, not the
spelling, decides what the speaker meant (one more NLU call, only on turns with such spans).

And with the ASR's other hypotheses (the beam's n-best, ``Hypothesis.alternatives``): when the
parse is one of the lexicon's domains and a slot of it holds a value the domain does not know, or
only a snapped guess, the alternatives are parsed too (at most :data:`MAX_ALTERNATIVES`, in the
beam's order), and the one with the most slots whose values the domain knows (more than the
parse's own; the earlier on a tie) and no fewer slots wins: "a light rose dye smoker" heard
first, "a light roast ice mocha" lower in the beam. Whisper's prompt can only make a value more
likely; the domain's vocabulary can check it (one NLU call per alternative, only on such turns).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace

from core.types import OUT_OF_SCOPE, NluHints, NluResult, TaggedToken, clean_text
from domains.lexicon import Correction, DomainLexicon
from services.disfluency.rules import FILLERS, INTERREGNA
from services.nlu.base import NluBackend

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
        corrections: spans snapped to a domain vocabulary (their positions count the words of the
            text before snapping); ``tokens`` hold the snapped words.
        hypothesis: 0, or the ASR alternative that won (its words, all kept, are ``tokens``).
    """

    result: NluResult
    tokens: tuple[TaggedToken, ...]
    restored: bool = False
    corrections: tuple[Correction, ...] = ()
    hypothesis: int = 0
    """Which of the ASR's hypotheses ``tokens`` are: 0 the top one, k the k-th alternative."""

    @property
    def text(self) -> str:
        return clean_text(self.tokens)


def _content_runs(tokens: Sequence[TaggedToken]) -> list[tuple[int, int]]:
    """Maximal runs ``[start, end)`` of removed words, bounded by kept words. Removed fillers
    ("um") neither start nor split a run: removing them is always right."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    end = 0
    for i, t in enumerate(tokens):
        if not t.remove:
            if start is not None:
                runs.append((start, end))
                start = None
        elif t.word not in FILLERS:
            start = i if start is None else start
            end = i + 1
    if start is not None:
        runs.append((start, end))
    return runs


def _has_phrase(words: Sequence[str], phrases: Sequence[tuple[str, ...]]) -> bool:
    return any(tuple(words[i:i + len(p)]) == p for p in phrases for i in range(len(words) - len(p) + 1))


def _looks_like_repair(tokens: Sequence[TaggedToken], start: int, end: int) -> bool:
    """A removed run followed by its own first word again ("[play a] play a tune", "[table] table")
    or holding an editing phrase: the shape of a repetition, repair or restart."""
    words = [t.word for t in tokens[start:end] if t.word not in FILLERS]
    if _has_phrase(words, EDIT_PHRASES):
        return True
    after = [t.word for t in tokens[end:] if not t.remove and t.word not in FILLERS][:2]
    return bool(words) and words[0] in after


def _as_heard(tokens: Sequence[TaggedToken]) -> tuple[TaggedToken, ...]:
    """The tagger's labels with every removal undone except the fillers'."""
    return tuple(TaggedToken(t.word, t.remove and t.word in FILLERS) for t in tokens)


def _slot_tokens(tokens: Sequence[TaggedToken], heard: NluResult) -> set[int]:
    """Token indices of the words inside ``heard``'s slots (its indices count the words of
    ``_as_heard(tokens)``, which skips the removed fillers)."""
    return set(_slot_names(tokens, heard))


def _slot_names(tokens: Sequence[TaggedToken], heard: NluResult) -> dict[int, str]:
    """Token index → the name of the ``heard`` slot holding that word (see :func:`_slot_tokens`)."""
    position = [i for i, t in enumerate(_as_heard(tokens)) if not t.remove]
    return {position[k]: s.slot for s in heard.slots for k in range(s.start, min(s.end, len(position)))}


def _two_values(tokens: Sequence[TaggedToken], names: dict[int, str], start: int, end: int) -> bool:
    """A repeated word read as the values of two different slots: "a [medium] medium roast
    americano" is a size and a roast, not a repetition, when the parse as heard says so (its first
    copy inside one slot, the second opening another; ``names``: :func:`_slot_names`)."""
    first = next((i for i in range(start, end) if tokens[i].word not in FILLERS), None)
    again = next((i for i in range(end, len(tokens)) if not tokens[i].remove and tokens[i].word not in FILLERS), None)
    if first is None or again is None or tokens[first].word != tokens[again].word:
        return False
    return names.get(first) is not None and names.get(again) not in (None, names[first])


def cut_slot_runs(tokens: Sequence[TaggedToken], cleaned: NluResult, heard: NluResult) -> list[tuple[int, int]] | None:
    """The removed runs (token indices) that hold slot words of ``heard``, the parse of
    ``_as_heard(tokens)``, when nothing else speaks against that parse (see the module doc);
    ``None`` keeps the tagger's decision."""
    if heard.intent == OUT_OF_SCOPE or heard.intent != cleaned.intent:
        return None
    heard_names = [s.slot for s in heard.slots]
    if len(set(heard_names)) != len(heard_names):
        return None
    if not {s.slot for s in cleaned.slots} <= set(heard_names):
        return None
    runs = _content_runs(tokens)
    names = _slot_names(tokens, heard)
    if any(_looks_like_repair(tokens, a, b) and not _two_values(tokens, names, a, b) for a, b in runs):
        return None
    in_slot = set(names)
    cut = [(a, b) for a, b in runs if any(i in in_slot for i in range(a, b))]
    return cut or None


def _snapped(tokens: Sequence[TaggedToken], corrections: Sequence[Correction]) -> tuple[TaggedToken, ...]:
    """``tokens`` with the corrected spans (positions among the kept words) replaced by their values."""
    starts = {c.start: c for c in corrections}
    inside = {p for c in corrections for p in range(c.start, c.end)}
    out: list[TaggedToken] = []
    kept = 0
    for t in tokens:
        if t.remove:
            out.append(t)
            continue
        if kept in starts:
            out += [TaggedToken(w, False) for w in starts[kept].value.split()]
        elif kept not in inside:
            out.append(t)
        kept += 1
    return tuple(out)


def _with_lexicon(parse: GuardedParse, hints: NluHints | None,
                  lexicon: DomainLexicon) -> Generator[ParseRequest, NluResult, GuardedParse]:
    """``parse``, or the parse of its text snapped to the lexicon when the domain says so (module doc)."""
    words, corrections = lexicon.correct(parse.text.split())
    if not corrections:
        return parse
    snapped = yield " ".join(words), hints
    before = parse.result
    if snapped.intent not in lexicon.intents or len(snapped.slots) < len(before.slots):
        return parse
    if before.intent != snapped.intent and before.intent in lexicon.intents:
        return parse
    guessed = _guessed_slots(snapped, corrections)
    return GuardedParse(replace(snapped, guessed=guessed), _snapped(parse.tokens, corrections),
                        parse.restored, tuple(corrections))


MAX_ALTERNATIVES = 4
"""Most ASR alternatives parsed for one turn (each one NLU call)."""


def _known(result: NluResult, lexicon: DomainLexicon) -> int:
    """Slots whose normalized value the domain has and that are not a snapped guess."""
    return sum(1 for s in result.slots if s.slot not in result.guessed and lexicon.knows(s.normalized))


def _with_alternatives(parse: GuardedParse, alternatives: Sequence[str], hints: NluHints | None,
                       lexicon: DomainLexicon) -> Generator[ParseRequest, NluResult, GuardedParse]:
    """``parse``, or the parse of an ASR alternative that the domain knows better (module doc)."""
    result = parse.result
    if not alternatives or result.intent not in lexicon.intents:
        return parse
    best = _known(result, lexicon)
    if best == len(result.slots):
        return parse  # every value is one the domain has: nothing to rescore
    chosen = parse
    for k, text in enumerate(alternatives[:MAX_ALTERNATIVES], start=1):
        alt = yield text, hints
        if alt.intent not in lexicon.intents or len(alt.slots) < len(result.slots):
            continue
        known = _known(alt, lexicon)
        if known > best:
            chosen, best = GuardedParse(alt, tuple(TaggedToken(w, False) for w in text.split()), hypothesis=k), known
    return chosen


def _guessed_slots(snapped: NluResult, corrections: Sequence[Correction]) -> tuple[str, ...]:
    """The slots of ``snapped`` (the parse of the corrected words) that hold a snapped value: their
    values are the lexicon's guess at what was misheard, which the dialog confirms before acting."""
    spans, shift = [], 0
    for c in sorted(corrections, key=lambda c: c.start):
        start = c.start + shift
        spans.append((start, start + len(c.value.split())))
        shift += len(c.value.split()) - (c.end - c.start)
    return tuple(dict.fromkeys(s.slot for s in snapped.slots if any(s.start < b and a < s.end for a, b in spans)))


ParseRequest = tuple[str, NluHints | None]
"""A text for the NLU to parse, with the hints to parse it with."""


def _guarded(tokens: tuple[TaggedToken, ...], hints: NluHints | None, guard: bool,
             lexicon: DomainLexicon | None = None,
             alternatives: Sequence[str] = ()) -> Generator[ParseRequest, NluResult, GuardedParse]:
    parse = yield from _removal_guard(tokens, hints, guard)
    if lexicon is not None:
        parse = yield from _with_lexicon(parse, hints, lexicon)
        parse = yield from _with_alternatives(parse, alternatives, hints, lexicon)
    return parse


def _removal_guard(tokens: tuple[TaggedToken, ...], hints: NluHints | None,
                   guard: bool) -> Generator[ParseRequest, NluResult, GuardedParse]:
    """The guard's decision as a Sans-I/O generator: it yields each text it needs parsed and is
    sent the parse, so the same logic serves a blocking caller (:func:`parse_tagged`) and one on an
    event loop (:func:`aparse_tagged`)."""
    cleaned = yield clean_text(tokens), hints
    kept = _as_heard(tokens)
    if not guard or kept == tokens:  # nothing removed, or fillers only
        return GuardedParse(cleaned, tokens)
    heard = yield clean_text(kept), hints
    cut = cut_slot_runs(tokens, cleaned, heard)
    if cut is None:
        return GuardedParse(cleaned, tokens)
    # A restart of another command ("[rate the bourne deception] play me music by whip") brings
    # that command's carrier words, and on its own has that command's intent. A run of nothing but
    # slot words ("a [small] single [shot dark roast] mocha") carries no other command.
    in_slot = _slot_tokens(tokens, heard)
    for a, b in cut:
        content = [i for i in range(a, b) if tokens[i].word not in FILLERS]
        if all(i in in_slot for i in content):
            continue
        fragment = " ".join(tokens[i].word for i in content)
        if (yield fragment, None).intent not in (heard.intent, OUT_OF_SCOPE):
            return GuardedParse(cleaned, tokens)
    return GuardedParse(heard, kept, restored=True)


def parse_tagged(nlu: NluBackend, tokens: Sequence[TaggedToken], hints: NluHints | None = None,
                 *, guard: bool = True, lexicon: DomainLexicon | None = None,
                 alternatives: Sequence[str] = ()) -> GuardedParse:
    """Parse the cleaned transcript; with ``guard``, overrule removals that cut slots; with ``lexicon``,
    snap misheard domain words when the domain's parse wins, and prefer an ASR alternative whose
    values the domain knows (see module doc)."""
    steps = _guarded(tuple(tokens), hints, guard, lexicon, alternatives)
    request = next(steps)
    while True:
        try:
            request = steps.send(nlu.parse(*request))
        except StopIteration as done:
            return done.value


async def aparse_tagged(nlu: NluBackend, tokens: Sequence[TaggedToken], hints: NluHints | None = None,
                        *, guard: bool = True, lexicon: DomainLexicon | None = None,
                        alternatives: Sequence[str] = ()) -> GuardedParse:
    """:func:`parse_tagged` through the backend's ``aparse``: never blocks the event loop."""
    steps = _guarded(tuple(tokens), hints, guard, lexicon, alternatives)
    request = next(steps)
    while True:
        try:
            request = steps.send(await nlu.aparse(*request))
        except StopIteration as done:
            return done.value
