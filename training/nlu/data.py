"""Training and evaluation data for the joint NLU model (no torch needed).

Sources, all read at run time (nothing is copied into the repository):

* the built-in domains under ``domains/builtin`` (examples + templates expanded, seeded);
* the SNIPS benchmark training files in ``<shared>/data/snips-train``, minus a seeded
  dev split of ``dev_per_intent`` utterances per intent;
* Disfl-QA questions in ``<shared>/data/disfl-qa`` as extra out-of-scope negatives.

Augmentations imitate what the ASR and disfluency stages let through: filler
words, a repeated word, a dropped function word and dropped apostrophes or
homophones. They never touch words inside a slot span except by shifting it.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InvalidInput
from core.text import words as split_words
from core.types import OUT_OF_SCOPE
from domains import BUILTIN_DIR, Domain, Example, Span, import_snips, load_domains

DEV_PER_INTENT = 100
SPLIT_SEED = 13
# The second dev split (see snips_split) is carved with this seed from what split 1 leaves.
SPLIT2_SEED = 2611
# The third (see snips_split) is carved with this seed from what neither split 1 nor split 2 scored.
SPLIT3_SEED = 1126
# The fourth, with this seed, from what none of splits 1-3 scored.
SPLIT4_SEED = 2026
# The fifth, with this seed, from what none of splits 1-4 scored.
SPLIT5_SEED = 527
# The sixth, with this seed, from what none of splits 1-5 scored.
SPLIT6_SEED = 3001
# The seventh, with this seed, from what none of splits 1-6 scored.
SPLIT7_SEED = 1127
# The eighth, with this seed, from what none of splits 1-7 scored.
SPLIT8_SEED = 2711
# The ninth, with this seed, from what none of splits 1-8 scored.
SPLIT9_SEED = 3112
SPLIT_SEEDS = (SPLIT_SEED, SPLIT2_SEED, SPLIT3_SEED, SPLIT4_SEED, SPLIT5_SEED, SPLIT6_SEED, SPLIT7_SEED,
               SPLIT8_SEED, SPLIT9_SEED)
DEV_SPLITS = tuple(range(1, len(SPLIT_SEEDS) + 1))
# Title slots whose intents SNIPS tells apart by the carrier words, not the title
# (see swap_titles).
TITLE_SLOTS = {"SearchCreativeWork": "object_name", "SearchScreeningEvent": "movie_name"}

_FILLERS = ["um", "uh", "er", "erm", "like", "you know", "i mean", "so", "well", "please", "okay", "hmm"]
_HOMOPHONES = {
    "for": "four", "to": "too", "two": "to", "four": "for", "i'd": "id", "what's": "whats", "it's": "its",
    "i'm": "im", "don't": "dont", "can't": "cant", "that's": "thats", "the": "a", "a": "the", "an": "a",
    "there": "their", "right": "write", "know": "no", "here": "hear", "weather": "whether", "would": "wood",
}
_DROPPABLE = {"the", "a", "an", "please", "me", "my", "to", "for", "of", "can", "you", "i", "is", "some"}


@dataclass(slots=True)
class NluData:
    train: list[Example]
    dev: list[Example]
    intents: list[str]
    slot_labels: list[str]
    slot_kinds: dict[str, str]
    dev_split: int = 1
    # SNIPS intents whose training utterances appear this many times (build's snips_repeat).
    snips_repeat: dict[str, int] = field(default_factory=dict)
    # Real requests from the tune part of SLURP devel / CLINC150 (training.nlu.household): how many distinct ones.
    household: dict[str, int] = field(default_factory=dict)


def snips_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "snips-train"
    if not path.is_dir():
        raise InvalidInput(f"SNIPS training data not found at {path} (set QUICKTURN_SHARED_DIR)")
    return path


def snips_split(shared_dir: Path, split: int = 1, dev_per_intent: int = DEV_PER_INTENT) -> tuple[list[Example], list[Example]]:
    """SNIPS train minus a seeded dev split of ``dev_per_intent`` utterances per intent.

    Split 1 is the original carve (``SPLIT_SEED``). Split 2 is a fresh one: ``dev_per_intent``
    per intent drawn (``SPLIT2_SEED``) from the utterances split 1 trains on, so none of them
    was ever scored; split 1's dev utterances go back into training. Why a second split: split
    1 was looked at for every model choice made so far, so its figures are optimistic; a model
    trained for split 2 gets an estimate no choice was fitted to. Split 3 repeats the step once
    more (``SPLIT3_SEED``, drawn from what split 2 trains on minus split 1's dev), for choices
    made after split 2's errors were read; splits 1 and 2 both go back into training. Split 4
    (``SPLIT4_SEED``) is drawn the same way from what none of splits 1-3 scored, for a choice
    made after split 3's errors were read; splits 1-3 go back into training. Splits 5 to 9
    (``SPLIT5_SEED`` ... ``SPLIT9_SEED``) repeat the step, each once more.
    """
    if split not in DEV_SPLITS:
        raise InvalidInput(f"unknown SNIPS dev split {split}: choose one of {', '.join(map(str, DEV_SPLITS))}")
    domain = import_snips(snips_dir(shared_dir))
    by_intent: dict[str, list[Example]] = {}
    for ex in domain.examples:
        by_intent.setdefault(ex.intent, []).append(ex)
    rngs = [random.Random(seed) for seed in SPLIT_SEEDS[:split]]
    train: list[Example] = []
    dev: list[Example] = []
    for intent in sorted(by_intent):
        rest = list(by_intent[intent])
        earlier: list[Example] = []
        for k, rng in enumerate(rngs, start=1):
            rng.shuffle(rest)
            carved, rest = rest[:dev_per_intent], rest[dev_per_intent:]
            if k == split:
                dev.extend(carved)
                train.extend(rest + earlier)
            earlier.extend(carved)
    return train, dev


def title_pool(examples: list[Example]) -> list[tuple[str, ...]]:
    """Every distinct title (the words of a :data:`TITLE_SLOTS` span) in ``examples``, sorted."""
    titles: set[tuple[str, ...]] = set()
    for ex in examples:
        slot = TITLE_SLOTS.get(ex.intent)
        for s in ex.spans:
            if s.slot == slot:
                titles.add(ex.words[s.start : s.end])
    return sorted(titles)


def swap_titles(ex: Example, pool: list[tuple[str, ...]], rng: random.Random) -> Example:
    """Replace the title of a title search with one drawn from both intents' titles.

    Why: most SNIPS intent errors left are SearchCreativeWork <-> SearchScreeningEvent on a
    bare title ("find flesh and bullets"); the model reads the intent off the title's words
    (does it sound like a film?) against what the carrier says. Drawing the title from both
    intents' pools makes the title carry no intent, so the carrier ("find", "i want to go see",
    "at the cinema") has to. Examples without exactly one title span are returned unchanged.
    A control on a fresh split did not confirm that it helps (docs/nlu.md), so it is off by default.
    """
    slot = TITLE_SLOTS.get(ex.intent)
    spans = [s for s in ex.spans if s.slot == slot]
    if slot is None or len(spans) != 1 or not pool:
        return ex
    old = spans[0]
    new = rng.choice(pool)
    words = ex.words[: old.start] + new + ex.words[old.end :]
    delta = len(new) - (old.end - old.start)
    out: list[Span] = []
    for s in ex.spans:
        if s is old:
            out.append(Span(s.slot, s.start, s.start + len(new)))
        elif s.start >= old.end:
            out.append(Span(s.slot, s.start + delta, s.end + delta, s.value))
        else:
            out.append(s)
    return Example(ex.intent, words, tuple(out), ex.file, ex.line, ex.slots_known)


def disflqa_questions(shared_dir: Path, limit: int, seed: int) -> list[Example]:
    """Wikipedia questions (fluent and disfluent) as out-of-scope negatives."""
    path = shared_dir / "data" / "disfl-qa" / "train.json"
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    keys = sorted(data)
    rng.shuffle(keys)
    out = []
    for key in keys[:limit]:
        item = data[key]
        text = item["disfluent"] if rng.random() < 0.3 else item["original"]
        ws = tuple(split_words(text))
        if 0 < len(ws) <= 30:
            out.append(Example(OUT_OF_SCOPE, ws, (), str(path), 0))
    return out


def label_space(domains: list[Domain]) -> tuple[list[str], list[str], dict[str, str]]:
    """Intent names, BIO slot labels and slot kinds, in a stable order."""
    intents = sorted({i for d in domains for i in d.intents} | {OUT_OF_SCOPE})
    kinds: dict[str, str] = {}
    for d in domains:
        for s in d.slots.values():
            kinds.setdefault(s.name, s.kind)
    labels = ["O"] + [f"{p}-{s}" for s in sorted(kinds) for p in ("B", "I")]
    return intents, labels, kinds


def build(
    shared_dir: Path,
    domains_dir: Path = BUILTIN_DIR,
    seed: int = SPLIT_SEED,
    per_template: int = 30,
    coffee_per_template: int = 15,
    min_per_intent: int = 250,
    oos_questions: int = 800,
    dev_split: int = 1,
    snips_repeat: dict[str, int] | None = None,
    household: bool = True,
) -> NluData:
    """Assemble the training set and the SNIPS dev split.

    ``seed`` drives the sampling of templates, out-of-scope questions and
    oversampling only. The dev split is ``dev_split`` (see :func:`snips_split`),
    never ``seed``: a run trained with another seed (for a seed ensemble or soup)
    must not train on the utterances every model is evaluated on.

    ``snips_repeat`` (``{"PlayMusic": 2}``) puts every SNIPS training utterance of those
    intents in the set that many times (the copies are augmented independently later): it
    weights the benchmark's own annotation of the slots a model confuses most (album, track,
    artist, entity_name, playlist) without changing the dev split.
    """
    repeat = dict(snips_repeat or {})
    bad = {k: v for k, v in repeat.items() if not 1 <= v <= 5}
    if bad:  # before any file is read
        raise InvalidInput(f"snips_repeat counts must be 1 to 5, got {bad}")
    domains = load_domains(domains_dir)
    snips_train, dev = snips_split(shared_dir, dev_split)
    unknown_repeat = sorted(set(repeat) - {e.intent for e in snips_train})
    if unknown_repeat:
        raise InvalidInput(f"snips_repeat names intents SNIPS does not have: {', '.join(unknown_repeat)}")
    train: list[Example] = [e for e in snips_train for _ in range(repeat.get(e.intent, 1))]
    for d in domains:
        train.extend(d.examples)
        train.extend(d.expand(coffee_per_template if d.name == "coffee" else per_template, seed))
    train.extend(disflqa_questions(shared_dir, oos_questions, seed))
    real: dict[str, int] = {}
    if household:
        from training.nlu.household import household_examples

        examples, counts = household_examples(shared_dir)
        train.extend(examples)
        real = {"household": counts.household, "out_of_scope": counts.out_of_scope}
    # Oversample small intents (with augmentation later making the copies differ).
    rng = random.Random(seed)
    counts = Counter(e.intent for e in train)
    for intent, n in sorted(counts.items()):
        if n < min_per_intent:
            pool = [e for e in train if e.intent == intent]
            train.extend(rng.choice(pool) for _ in range(min_per_intent - n))
    intents, labels, kinds = label_space(domains)
    unknown = {e.intent for e in train} - set(intents)
    if unknown:
        raise InvalidInput(f"training data has intents no domain declares: {sorted(unknown)}")
    return NluData(train, dev, intents, labels, kinds, dev_split, {k: v for k, v in sorted(repeat.items()) if v > 1}, real)


def augment(ex: Example, rng: random.Random) -> Example:
    """One random ASR/disfluency-style perturbation of ``ex`` (spans kept consistent)."""
    words = list(ex.words)
    spans = list(ex.spans)
    inside = set()
    for s in spans:
        inside.update(range(s.start, s.end))
    op = rng.random()
    if op < 0.35:  # insert a filler at a boundary outside any span
        cuts = [p for p in range(len(words) + 1) if not any(s.start < p < s.end for s in spans)]
        pos = rng.choice(cuts)
        filler = rng.choice(_FILLERS).split()
        words[pos:pos] = filler
        spans = [_shift(s, pos, len(filler)) for s in spans]
    elif op < 0.55:  # repeat a word outside spans (a stutter)
        outside = [i for i in range(len(words)) if i not in inside]
        if outside:
            i = rng.choice(outside)
            words.insert(i, words[i])
            spans = [_shift(s, i, 1) for s in spans]
    elif op < 0.75:  # drop a function word
        cand = [i for i in range(len(words)) if i not in inside and words[i] in _DROPPABLE]
        if cand and len(words) > 3:
            i = rng.choice(cand)
            del words[i]
            spans = [_shift(s, i + 1, -1) for s in spans]
    else:  # homophones / dropped apostrophes outside spans
        for i in range(len(words)):
            if i not in inside and words[i] in _HOMOPHONES and rng.random() < 0.5:
                words[i] = _HOMOPHONES[words[i]]
    return Example(ex.intent, tuple(words), tuple(spans), ex.file, ex.line, ex.slots_known)


def _shift(span: Span, pos: int, delta: int) -> Span:
    if span.start >= pos:
        return Span(span.slot, span.start + delta, span.end + delta, span.value)
    return span
