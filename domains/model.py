"""The domain data model: intents, typed slots, examples and templates.

A :class:`Domain` is what the assistant understands in one area (coffee,
timers, smart home...). The NLU trains on its examples and templates, the
dialog manager asks for its slots, the ASR primes on its values. The loader
(:mod:`domains.loader`) builds it from YAML; :mod:`domains.convert` imports and
exports other formats.
"""

from __future__ import annotations

import difflib
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import DomainError
from core.text import normalize_text
from core.text import words as split_words

SlotKind = Literal["text", "categorical", "number", "time", "duration", "date"]
SLOT_KINDS: tuple[str, ...] = ("text", "categorical", "number", "time", "duration", "date")
FORMAT_VERSION = "1"

_TEMPLATE_TOKEN = re.compile(r"\(([^()]*)\)|\{([A-Za-z_][A-Za-z0-9_]*)\}|([^(){}]+)")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Span:
    """A slot span in word indices (``end`` exclusive); ``value`` is set for synonyms."""

    slot: str
    start: int
    end: int
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Example:
    """One annotated utterance (cleaned words) and where it came from."""

    intent: str
    words: tuple[str, ...]
    spans: tuple[Span, ...] = ()
    file: str = ""
    line: int = 0
    # False for requests annotated with an intent only (real SLURP requests: their slot labels are
    # another scheme's, and list items are not marked at all). Training learns their intent and
    # leaves their words' slot labels unscored instead of teaching "every word is O".
    slots_known: bool = True

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def bio(self) -> list[str]:
        """One BIO tag per word."""
        tags = ["O"] * len(self.words)
        for span in self.spans:
            tags[span.start] = f"B-{span.slot}"
            for i in range(span.start + 1, span.end):
                tags[i] = f"I-{span.slot}"
        return tags

    def annotated(self) -> str:
        """The example in inline-annotation form (``[large](size) latte``)."""
        out: list[str] = []
        i = 0
        for span in sorted(self.spans, key=lambda s: s.start):
            out.extend(self.words[i : span.start])
            phrase = " ".join(self.words[span.start : span.end])
            target = f"{span.slot}:{span.value}" if span.value and span.value != phrase else span.slot
            out.append(f"[{phrase}]({target})")
            i = span.end
        out.extend(self.words[i:])
        return " ".join(out)


@dataclass(frozen=True, slots=True)
class Template:
    """A generator of examples: ``(can i get|i want) a {size} {coffeeDrink}``."""

    intent: str
    pattern: str
    file: str = ""
    line: int = 0

    def parts(self) -> list[tuple[str, Any]]:
        """Parsed pattern: ``("text", str)``, ``("alt", [options])`` or ``("slot", name)``."""
        parts: list[tuple[str, Any]] = []
        pos = 0
        for m in _TEMPLATE_TOKEN.finditer(self.pattern):
            if m.start() != pos:
                break
            pos = m.end()
            if m.group(1) is not None:
                parts.append(("alt", [normalize_text(o) for o in m.group(1).split("|")]))
            elif m.group(2) is not None:
                parts.append(("slot", m.group(2)))
            else:
                parts.append(("text", normalize_text(m.group(3))))
        if pos != len(self.pattern):
            raise DomainError(
                f"{self.file}:{self.line}: cannot parse template {self.pattern!r} near column {pos + 1}"
                " (use (a|b|) for alternatives and {slot} for slots; no nesting)"
            )
        return parts


@dataclass(slots=True)
class SlotDef:
    """A slot: its kind, known values, synonyms (spoken -> canonical) and regex patterns."""

    name: str
    kind: str = "text"
    values: list[str] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)
    patterns: list[str] = field(default_factory=list)

    def phrases(self) -> list[str]:
        """Every phrase that fills this slot in a template (values, then synonyms)."""
        seen = dict.fromkeys([*self.values, *self.synonyms])
        return [p for p in seen if p]

    def canonical(self, phrase: str) -> str | None:
        """The canonical value for a spoken phrase, or None when it is not a known one."""
        phrase = normalize_text(phrase)
        if phrase in self.synonyms:
            return self.synonyms[phrase]
        return phrase if phrase in self.values else None

    def closest(self, phrase: str, cutoff: float = 0.8) -> str | None:
        """The canonical value of the known phrase spelled most like ``phrase``, or None.

        For misheard values: Whisper writes "dark rose" for "dark roast", "largest" for
        "large", "americana" for "americano". A character similarity of ``cutoff``
        (difflib's ratio) accepts those one-sound slips and rejects different words
        ("tall" vs "small": 0.67). Only for categorical slots, whose value list is the
        whole vocabulary: a city or song title near a known one may still be another.
        """
        if self.kind != "categorical" or not self.values:
            return None
        phrase = normalize_text(phrase)
        match = difflib.get_close_matches(phrase, self.phrases(), n=1, cutoff=cutoff)
        return self.canonical(match[0]) if match else None


@dataclass(slots=True)
class IntentDef:
    name: str
    description: str = ""
    confirm: bool = False


@dataclass(slots=True)
class Domain:
    """A loaded, validated domain."""

    name: str
    intents: dict[str, IntentDef] = field(default_factory=dict)
    slots: dict[str, SlotDef] = field(default_factory=dict)
    responses: dict[str, list[str]] = field(default_factory=dict)
    examples: list[Example] = field(default_factory=list)
    templates: list[Template] = field(default_factory=list)
    description: str = ""
    source: str = ""
    path: Path | None = None

    def expand(self, per_template: int = 20, seed: int = 0) -> list[Example]:
        """Sample up to ``per_template`` distinct examples from every template (seeded)."""
        rng = random.Random(f"{self.name}:{seed}")
        out: list[Example] = []
        for template in self.templates:
            parts = template.parts()
            seen: set[tuple[str, ...]] = set()
            for _ in range(per_template * 4):
                if len(seen) >= per_template:
                    break
                example = _fill(template, parts, self.slots, rng)
                if example.words and example.words not in seen:
                    seen.add(example.words)
                    out.append(example)
        return out

    def all_examples(self, per_template: int = 20, seed: int = 0) -> list[Example]:
        return [*self.examples, *self.expand(per_template, seed)]


def _fill(template: Template, parts: list[tuple[str, Any]], slots: dict[str, SlotDef], rng: random.Random) -> Example:
    words: list[str] = []
    spans: list[Span] = []
    for kind, value in parts:
        if kind == "text":
            words.extend(value.split())
        elif kind == "alt":
            words.extend(rng.choice(value).split())
        else:
            phrase = rng.choice(slots[value].phrases())
            ws = split_words(phrase)
            canon = slots[value].synonyms.get(phrase)
            spans.append(Span(value, len(words), len(words) + len(ws), canon))
            words.extend(ws)
    return Example(template.intent, tuple(words), tuple(spans), template.file, template.line)




def intents_of(domains: Iterable[Domain]) -> list[str]:
    return [i for d in domains for i in d.intents]
