"""LARD-style synthetic disfluencies for the assistant's domain.

In the spirit of LARD (Passali et al. 2022), disfluencies are injected into
fluent text and labelled by construction:

* **filler**: "uh", "um", … inserted between words;
* **repetition**: one to three words said twice ("turn on the the lights"),
  sometimes with a filler between the copies;
* **repair** (correction): a span said first with a wrong word, an optional
  editing phrase ("no", "sorry", "i mean", "no wait", …) and then the right
  span ("set an alarm for seven no sorry for eight"), the repair restarting at
  the span or only at the changed word;
* **restart**: an abandoned beginning (a fragment of another command, or of
  the same one) before the full command ("what's the uh set a timer for ten").

Fluent sources are the SNIPS training utterances (``shared_dir/data/
snips-train``), the assistant commands below, built from templates, and
(optionally) the built-in dialog domains' examples and template expansions
(:func:`domain_texts`; e.g. the coffee grammar's stacked attributes, "an eight
ounce dark roast double shot espresso with lots of soy milk"). A
share of the examples stays fluent, including fluent uses of "no", "sorry",
"wait" and "like", so that the tagger learns to leave clean commands alone.
Everything is driven by one ``random.Random(seed)``.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

from core.text import words as words_of
from core.types import DisfluencyKind
from domains import load_domains
from training.disfluency.align import Labelled

FILLER_WORDS = ["uh", "um", "uh", "um", "er", "ah", "hmm", "erm", "uhm"]
EDIT_PHRASES = [
    "no", "sorry", "i mean", "no wait", "no sorry", "wait", "actually", "make that", "scratch that",
    "or rather", "sorry i mean", "no no", "oops", "wait no", "i meant", "uh no", "no make that",
]

NUMBERS = (
    "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty "
    "forty five fifty sixty ninety".split()
)
TIMES = [
    "seven", "eight thirty", "six am", "seven fifteen", "noon", "nine pm", "ten thirty", "five",
    "six forty five", "midnight", "eleven", "quarter past eight", "half past six", "four o'clock",
]
CITIES = [
    "paris", "london", "berlin", "tokyo", "new york", "boston", "denver", "chicago", "madrid", "rome",
    "seattle", "sydney", "toronto", "dublin", "austin", "lisbon", "oslo", "prague",
]
ROOMS = ["kitchen", "living room", "bedroom", "bathroom", "office", "hallway", "garage", "dining room"]
DRINKS = ["latte", "cappuccino", "espresso", "americano", "flat white", "mocha", "tea", "hot chocolate"]
SIZES = ["small", "medium", "large", "tall", "grande"]
MILKS = ["oat milk", "almond milk", "soy milk", "whole milk", "skim milk"]
DAYS = ["today", "tomorrow", "tonight", "this weekend", "on monday", "on friday", "next week", "this evening"]
PEOPLE = ["mom", "dad", "alice", "bob", "john", "sarah", "the office", "my sister", "david", "emma"]
ARTISTS = ["the beatles", "taylor swift", "miles davis", "adele", "queen", "radiohead", "beyonce", "bach"]
GENRES = ["jazz", "rock", "classical music", "pop", "hip hop", "something relaxing", "the news"]
DEVICES = ["lights", "lamp", "fan", "heater", "tv", "radio", "air conditioner"]
THINGS = ["milk", "eggs", "bread", "coffee", "bananas", "batteries", "dog food", "paper towels"]

TEMPLATES = [
    "set an alarm for {time}", "set an alarm for {time} {day}", "wake me up at {time}",
    "set a timer for {num} minutes", "start a {num} minute timer", "cancel my {time} alarm",
    "what's the weather in {city}", "what's the weather {day}", "will it rain in {city} {day}",
    "how hot is it in {city}", "do i need an umbrella {day}", "what's the temperature outside",
    "turn on the {room} lights", "turn off the {room} {device}", "dim the {room} lights to {num} percent",
    "switch off the {device} in the {room}", "set the thermostat to {num} degrees", "turn the {device} on",
    "can i get a {size} {drink}", "can i get a {size} {drink} with {milk}", "i'd like a {size} {drink}",
    "make me a {drink}", "order a {size} {drink} please", "i want a {drink} with {milk}",
    "brew a {size} {drink}", "add an extra shot to my {drink}",
    "play {artist}", "play some {genre}", "play {genre} in the {room}", "skip this song", "turn the volume up",
    "turn it down to {num}", "pause the music", "play the next track",
    "call {person}", "send a message to {person}", "text {person} that i'm running late",
    "remind me to buy {thing} {day}", "add {thing} to my shopping list", "remind me to call {person} at {time}",
    "what time is it", "what's on my calendar {day}", "book a table for {num} at {time}",
    "how long will it take to get to {city}", "navigate to {city}", "set a reminder for {time}",
    "what's the news", "tell me a joke", "read my messages", "how do you say hello in french",
    "no thanks", "no i don't need anything else", "sorry what did you say", "wait for {num} minutes",
    "i like {artist}", "play something like {artist}", "no milk please", "actually i'd like a {drink}",
    "i mean it", "set it for {time} please", "that's all thanks", "yes please", "no that's fine",
    "is there no coffee left", "i'm sorry i'm late", "wait until {time} then turn on the {room} lights",
]

SLOTS: dict[str, list[str]] = {
    "time": TIMES, "day": DAYS, "num": NUMBERS, "city": CITIES, "room": ROOMS, "device": DEVICES,
    "size": SIZES, "drink": DRINKS, "milk": MILKS, "person": PEOPLE, "artist": ARTISTS, "genre": GENRES,
    "thing": THINGS,
}
#: Held out from training: the fluent-command evaluation set is built from these.
EVAL_TEMPLATES = [
    "set my alarm for {time} {day}", "please wake me at {time}", "could you set a {num} minute timer",
    "what will the weather be like in {city} {day}", "is it going to snow in {city}",
    "switch on the {device} in the {room}", "turn down the {room} lights", "make the {room} warmer",
    "i'd like a {size} {drink} with {milk} please", "could i have a {drink}", "get me a {size} {drink}",
    "put on some {genre}", "play the latest album by {artist}", "stop the music in the {room}",
    "ring {person}", "tell {person} i'll be home at {time}", "remind me {day} to pick up {thing}",
    "how far is {city} from here", "what's the forecast for {city} {day}", "lock the front door",
    "turn off all the lights", "what's my next meeting", "no that's all", "sorry can you repeat that",
    "wait a second", "like the last one", "set the {room} temperature to {num} degrees",
    "cancel the timer", "snooze the alarm for {num} minutes", "order more {thing}",
]


def assistant_commands(
    rng: random.Random, count: int, templates: Sequence[str] = TEMPLATES
) -> list[str]:
    """``count`` commands from ``templates`` with random slot values."""
    out = []
    for _ in range(count):
        template = rng.choice(templates)
        text = template
        while "{" in text:
            start = text.index("{")
            end = text.index("}", start)
            name = text[start + 1 : end]
            text = text[:start] + rng.choice(SLOTS[name]) + text[end + 1 :]
        out.append(text)
    return out


#: Expansions per template of the built-in domains for the training-side pool.
DOMAIN_PER_TEMPLATE = 40
#: One distinct domain sentence in this many (by a hash of its text) is held out.
DOMAIN_HELDOUT_MODULUS = 5


def domain_heldout(text: str) -> bool:
    """Whether a domain sentence belongs to the held-out side (a fixed hash split, seed-free).

    Training and evaluation draw expansions with different seeds; the split by
    text keeps the two sides disjoint whatever seeds and counts are used.
    """
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) % DOMAIN_HELDOUT_MODULUS == 0


_GROUP_STOPWORDS = frozenset(
    "a an the and of to at in on for by with some lots lot bit little my me is it".split()
)


def slot_word_groups(examples: Iterable) -> list[list[str]]:
    """Same-slot-type alternatives, from the slot spans of domain examples.

    For every slot, the words at the same position of its phrases of the same
    length form one group ("eight|twelve|sixteen" ounce, "dark|medium" roast,
    "single|double|triple" shot). Function words (:data:`_GROUP_STOPWORDS`: "a",
    "of", …, which phrases of different shapes put at the same position) are left
    out, and groups of one word dropped. Sorted, so the result does not depend on
    the order of the examples.
    """
    by_key: dict[tuple[str, int, int], set[str]] = {}
    for ex in examples:
        for span in ex.spans:
            phrase = ex.words[span.start : span.end]
            for k, word in enumerate(phrase):
                if word not in _GROUP_STOPWORDS:
                    by_key.setdefault((span.slot, len(phrase), k), set()).add(word)
    groups = {tuple(sorted(ws)) for ws in by_key.values() if len(ws) > 1}
    return [list(g) for g in sorted(groups)]


def domain_texts(
    seed: int, per_template: int = DOMAIN_PER_TEMPLATE, *, heldout: bool = False
) -> tuple[list[str], list[list[str]]]:
    """Fluent sentences of the built-in dialog domains, and their same-slot word groups.

    The domains' examples and ``per_template`` seeded expansions of each of their
    templates (:meth:`domains.Domain.expand`), normalised like ASR text,
    deduplicated and sorted; only the training side of :func:`domain_heldout`, or
    only the held-out side with ``heldout``.
    """
    examples = []
    for domain in load_domains():
        examples += [*domain.examples, *domain.expand(per_template, seed)]
    texts = {" ".join(words_of(" ".join(ex.words))) for ex in examples}
    side = sorted(t for t in texts if t and domain_heldout(t) == heldout)
    return side, slot_word_groups(examples)


def snips_utterances(snips_dir: Path) -> list[str]:
    """All SNIPS training utterances, normalised, in file order."""
    out = []
    for path in sorted(snips_dir.glob("train_*_full.json")):
        data = json.loads(path.read_bytes().decode("utf-8", errors="ignore"))  # a few latin-1 bytes
        for items in data.values():
            for item in items:
                text = "".join(chunk["text"] for chunk in item["data"])
                cleaned = " ".join(words_of(text))
                if cleaned:
                    out.append(cleaned)
    return out


Token = tuple[str, "DisfluencyKind | None"]


class Injector:
    """Injects disfluencies into fluent word lists; labels are known by construction."""

    def __init__(
        self, rng: random.Random, vocabulary: Sequence[str], groups: Sequence[Sequence[str]] = ()
    ) -> None:
        self.rng = rng
        self.vocabulary = list(vocabulary)
        # Same-slot alternatives for a repair's wrong word, checked in this order: the one-word
        # values of the command slots, then the ``groups`` (domain slots).
        self._alternatives = [
            *([v for v in values if " " not in v]
              for values in (NUMBERS, CITIES, ROOMS, DRINKS, SIZES, DEVICES, PEOPLE, THINGS)),
            *(list(g) for g in groups),
        ]

    def _replacement(self, word: str) -> str:
        """A different word for a repair's wrong first attempt."""
        rng = self.rng
        for flat in self._alternatives:
            if word in flat and rng.random() < 0.8:
                return rng.choice([v for v in flat if v != word])
        while True:
            cand = rng.choice(self.vocabulary)
            if cand != word:
                return cand

    def filler(self, toks: list[Token]) -> list[Token]:
        pos = self.rng.randint(0, len(toks))
        fill: list[Token] = [(self.rng.choice(FILLER_WORDS), "filler")]
        if self.rng.random() < 0.1:
            fill.append((self.rng.choice(FILLER_WORDS), "filler"))
        return toks[:pos] + fill + toks[pos:]

    def repetition(self, toks: list[Token]) -> list[Token]:
        fluent = [i for i, t in enumerate(toks) if t[1] is None]
        if not fluent:
            return toks
        i = self.rng.choice(fluent)
        k = self.rng.choice([1, 1, 1, 2, 2, 3])
        span = [t for t in toks[i : i + k] if t[1] is None]
        if not span:
            return toks
        copies: list[Token] = [(w, "repetition") for w, _ in span]
        if self.rng.random() < 0.25:
            copies += [(self.rng.choice(FILLER_WORDS), "filler")]
        if self.rng.random() < 0.1:  # a stutter said three times
            copies = [(w, "repetition") for w, _ in span] + copies
        return toks[:i] + copies + toks[i:]

    def repair(self, toks: list[Token]) -> list[Token]:
        fluent = [i for i, t in enumerate(toks) if t[1] is None]
        if len(fluent) < 2:
            return toks
        rng = self.rng
        j = rng.choice(fluent[1:]) if rng.random() < 0.7 else rng.choice(fluent)  # the changed word
        back = rng.choice([0, 0, 1, 1, 2])  # how far the repair restarts before it
        i = max(j - back, 0)
        span = toks[i : j + 1]
        if any(k is not None for _, k in span):
            return toks
        wrong = [(w, "repair") for w, _ in span[:-1]] + [(self._replacement(span[-1][0]), "repair")]
        if rng.random() < 0.3 and j + 1 < len(toks) and toks[j + 1][1] is None:
            wrong.append((toks[j + 1][0], "repair"))  # the wrong attempt ran one word further
        # Without an editing phrase a repair is only recognisable by its repeated
        # context ("for seven for eight"), so a bare replacement always gets one.
        edit: list[Token] = []
        if rng.random() < 0.85 or back == 0 or i == j:
            edit = [(w, "interregnum") for w in rng.choice(EDIT_PHRASES).split()]
        if rng.random() < 0.15:
            edit = [(rng.choice(FILLER_WORDS), "filler"), *edit]
        # The repair restarts at the span (most often) or only at the changed word.
        if rng.random() < 0.6 or not edit:
            return toks[:i] + wrong + edit + toks[i:]
        return toks[:j] + wrong[len(span) - 1 :] + edit + toks[j:]

    def restart(self, toks: list[Token], other: Sequence[str]) -> list[Token]:
        rng = self.rng
        if rng.random() < 0.5 and other:
            frag = list(other[: rng.randint(1, min(4, len(other)))])
        else:
            frag = [w for w, _ in toks[: rng.randint(1, max(1, min(4, len(toks) - 1)))]]
            if len(frag) < len(toks):
                frag[-1:] = [rng.choice(self.vocabulary)] if rng.random() < 0.5 else frag[-1:]
        start: list[Token] = [(w, "restart") for w in frag]
        if rng.random() < 0.5:
            start += [(w, "interregnum") for w in rng.choice(EDIT_PHRASES + ["uh", "um"]).split()]
        return start + toks

    def inject(self, words: Sequence[str], other: Sequence[str]) -> list[Token]:
        """One to three disfluencies of random kinds."""
        toks: list[Token] = [(w, None) for w in words]
        n_events = self.rng.choices([1, 2, 3], weights=[0.65, 0.28, 0.07])[0]
        for _ in range(n_events):
            kind = self.rng.choices(
                ["filler", "repetition", "repair", "restart"], weights=[0.3, 0.25, 0.33, 0.12]
            )[0]
            if kind == "filler":
                toks = self.filler(toks)
            elif kind == "repetition":
                toks = self.repetition(toks)
            elif kind == "repair":
                toks = self.repair(toks)
            else:
                toks = self.restart(toks, other)
        # Editing phrase words that are also fillers keep the filler kind.
        return [(w, "filler" if k == "interregnum" and w in {"uh", "um", "er"} else k) for w, k in toks]


def to_labelled(toks: Sequence[Token], source: str) -> Labelled:
    return Labelled([w for w, _ in toks], [k is not None for _, k in toks], [k for _, k in toks], source)


def generate(
    fluent: Sequence[str],
    rng: random.Random,
    *,
    fluent_share: float,
    source: str,
    groups: Sequence[Sequence[str]] = (),
) -> list[Labelled]:
    """Label every fluent sentence: kept fluent with ``fluent_share``, else disfluent.

    ``groups``: further same-slot word alternatives for repairs (:func:`slot_word_groups`).
    """
    vocabulary = sorted({w for s in fluent for w in s.split()})
    injector = Injector(rng, vocabulary, groups)
    out = []
    for sentence in fluent:
        words = sentence.split()
        if not words:
            continue
        if rng.random() < fluent_share:
            out.append(to_labelled([(w, None) for w in words], source + ":fluent"))
        else:
            other = rng.choice(fluent).split()
            out.append(to_labelled(injector.inject(words, other), source))
    return out
