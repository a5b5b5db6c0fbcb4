"""Domains as data: load, validate, import and export what the assistant understands.

A domain is a folder ``dialog/domains/<name>/`` with two YAML files:

``domain.yml``
    ``intents`` (a list of names, or of ``{name: {description, confirm}}``),
    ``slots`` (``name: {type, values, synonyms, patterns}``), ``responses``.
``nlu.yml``
    ``nlu:`` a list of ``{intent, examples, templates}``. ``examples`` is a
    block of ``- `` lines with inline slots, Rasa style: ``[large](size)``,
    ``[tall](size:small)`` (value with a synonym) or
    ``[tall]{"entity": "size", "value": "small"}``. ``templates`` are lines
    with alternatives ``(a|b|)`` (an empty option makes the group optional) and
    slot references ``{size}``, filled from the slot's values when training.

Everything is checked at load time; a problem raises :class:`DomainError`
naming the file and line and saying how to fix it. Rasa ``nlu.yml``, the SNIPS
benchmark JSON and Picovoice Rhino context YAML are *converted* into this one
format (:func:`import_rasa`, :func:`import_snips`, :func:`import_rhino`), and
:func:`export_rasa` writes Rasa ``nlu.yml`` + ``domain.yml`` back out.
"""

from __future__ import annotations

import difflib
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from assistant.errors import DomainError
from services.nlu.text import clean_text
from services.nlu.text import words as split_words

DOMAINS_DIR = Path(__file__).resolve().parent / "domains"
"""The built-in domains shipped with QuickTurn."""

SlotKind = Literal["text", "categorical", "number", "time", "duration", "date"]
SLOT_KINDS: tuple[str, ...] = ("text", "categorical", "number", "time", "duration", "date")
FORMAT_VERSION = "1"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ANNOTATION = re.compile(r"\[([^\[\]]+)\](?:\(([^()]+)\)|(\{[^{}]*\}))")
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
                parts.append(("alt", [clean_text(o) for o in m.group(1).split("|")]))
            elif m.group(2) is not None:
                parts.append(("slot", m.group(2)))
            else:
                parts.append(("text", clean_text(m.group(3))))
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
        phrase = clean_text(phrase)
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
        phrase = clean_text(phrase)
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


# --------------------------------------------------------------------------- YAML with line numbers


class _LineDict(dict[Any, Any]):
    line: int = 0
    lines: dict[Any, int]
    block: set[Any]


class _LineList(list[Any]):
    line: int = 0
    lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    out = _LineDict()
    out.line = node.start_mark.line + 1
    out.lines = {}
    out.block = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise DomainError(f"{node.start_mark.name}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = value_node.start_mark.line + 1
        if isinstance(value_node, yaml.ScalarNode) and value_node.style in ("|", ">"):
            out.block.add(key)
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DomainError(f"{path}: cannot read ({exc.strerror})") from exc
    loader = _Loader(text)
    loader.name = str(path)  # marks (and so our line numbers) carry the file name
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 0
        raise DomainError(f"{path}:{line}: invalid YAML: {exc.problem}") from exc
    finally:
        loader.dispose()


def _line(container: Any, key: Any) -> int:
    if isinstance(container, _LineDict):
        return container.lines.get(key, container.line)
    if isinstance(container, _LineList) and isinstance(key, int) and key < len(container.lines):
        return container.lines[key]
    return getattr(container, "line", 0)


# --------------------------------------------------------------------------- annotation parsing


def parse_annotated(text: str, intent: str, file: str = "", line: int = 0) -> Example:
    """Parse ``can i get a [large](size) latte`` into words and slot spans.

    Raises:
        DomainError: on an unbalanced bracket or a malformed ``{...}`` annotation.
    """
    words: list[str] = []
    spans: list[Span] = []
    pos = 0
    for m in _ANNOTATION.finditer(text):
        words.extend(split_words(text[pos : m.start()]))
        phrase_words = split_words(m.group(1))
        if m.group(2) is not None:
            slot, _, value = m.group(2).partition(":")
        else:
            try:
                obj = json.loads(m.group(3))
                slot, value = str(obj["entity"]), str(obj.get("value", ""))
            except (ValueError, KeyError, TypeError) as exc:
                raise DomainError(
                    f'{file}:{line}: bad annotation {m.group(0)!r} (write [words](slot) or [words]{{"entity": "slot"}})'
                ) from exc
        slot = slot.strip()
        if not phrase_words:
            raise DomainError(f"{file}:{line}: empty slot value in {m.group(0)!r}")
        value = clean_text(value) if value else None
        spans.append(Span(slot, len(words), len(words) + len(phrase_words), value))
        words.extend(phrase_words)
        pos = m.end()
    rest = text[pos:]
    if "[" in rest or "](" in rest:
        raise DomainError(f"{file}:{line}: unbalanced '[' or ']' in example {text!r} (annotate as [words](slot))")
    words.extend(split_words(rest))
    return Example(intent, tuple(words), tuple(spans), file, line)


def _example_lines(block: Any, container: Any, key: str, file: str) -> list[tuple[str, int]]:
    """``examples: |`` block (Rasa style) or a YAML list -> [(text, line)]."""
    if isinstance(block, str):
        first = _line(container, key) + (1 if key in getattr(container, "block", set()) else 0)
        out = []
        for i, raw in enumerate(block.splitlines()):
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if not stripped.startswith("- "):
                raise DomainError(f"{file}:{first + i}: each example line must start with '- ', got {stripped!r}")
            out.append((stripped[2:].strip(), first + i))
        return out
    if isinstance(block, list):
        out = []
        for i, item in enumerate(block):
            if not isinstance(item, str):
                raise DomainError(f"{file}:{_line(block, i)}: an example must be a string")
            out.append((item, _line(block, i)))
        return out
    raise DomainError(f"{file}:{_line(container, key)}: '{key}' must be a '|' block of '- ' lines or a list")


# --------------------------------------------------------------------------- loading and validation


def load_domain(folder: str | Path) -> Domain:
    """Load and validate one domain folder.

    Raises:
        DomainError: with ``file:line: problem (fix)`` for the first problem found.
    """
    folder = Path(folder)
    domain_file = folder / "domain.yml"
    nlu_file = folder / "nlu.yml"
    if not domain_file.is_file():
        raise DomainError(f"{domain_file}: missing (a domain folder needs domain.yml and nlu.yml)")
    raw = _read_yaml(domain_file)
    df = str(domain_file)
    if not isinstance(raw, dict):
        raise DomainError(f"{df}:1: top level must be a mapping with intents/slots/responses")
    known = {"version", "name", "description", "source", "intents", "slots", "responses"}
    for key in raw:
        if key not in known:
            raise DomainError(f"{df}:{_line(raw, key)}: unknown key {key!r} (expected one of {sorted(known)})")
    domain = Domain(
        name=str(raw.get("name", folder.name)),
        description=str(raw.get("description", "")),
        source=str(raw.get("source", "")),
        path=folder,
    )
    intents = raw.get("intents") or []
    if isinstance(intents, dict):
        intents = _LineList([{k: v} for k, v in intents.items()])
    if not isinstance(intents, list) or not intents:
        raise DomainError(f"{df}:{_line(raw, 'intents')}: 'intents' must be a non-empty list")
    for i, item in enumerate(intents):
        line = _line(intents, i)
        if isinstance(item, str):
            name, opts = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            name, opts = next(iter(item.items()))
            opts = opts or {}
        else:
            raise DomainError(f"{df}:{line}: an intent is a name or {{name: {{description, confirm}}}}")
        if not _NAME.match(str(name)):
            raise DomainError(f"{df}:{line}: bad intent name {name!r} (letters, digits, underscore)")
        if name in domain.intents:
            raise DomainError(f"{df}:{line}: intent {name!r} listed twice")
        domain.intents[name] = IntentDef(name, str(opts.get("description", "")), bool(opts.get("confirm", False)))
    slots = raw.get("slots") or {}
    if not isinstance(slots, dict):
        raise DomainError(f"{df}:{_line(raw, 'slots')}: 'slots' must be a mapping name -> {{type, values}}")
    for name, spec in slots.items():
        line = _line(slots, name)
        if not _NAME.match(str(name)):
            raise DomainError(f"{df}:{line}: bad slot name {name!r} (letters, digits, underscore)")
        spec = spec or {}
        if not isinstance(spec, dict):
            raise DomainError(f"{df}:{line}: slot {name!r} must be a mapping with type/values/synonyms/patterns")
        kind = str(spec.get("type", "text"))
        if kind not in SLOT_KINDS:
            raise DomainError(f"{df}:{_line(spec, 'type')}: slot {name!r} has unknown type {kind!r} (use one of {list(SLOT_KINDS)})")
        values = [clean_text(str(v)) for v in spec.get("values") or []]
        synonyms_raw = spec.get("synonyms") or {}
        if not isinstance(synonyms_raw, dict):
            raise DomainError(f"{df}:{_line(spec, 'synonyms')}: synonyms must map spoken phrase -> value")
        synonyms = {clean_text(str(k)): clean_text(str(v)) for k, v in synonyms_raw.items()}
        patterns = [str(p) for p in spec.get("patterns") or []]
        for j, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                plist = spec.get("patterns")
                raise DomainError(f"{df}:{_line(plist, j)}: bad regex {pattern!r} for slot {name!r}: {exc}") from exc
        domain.slots[name] = SlotDef(name, kind, values, synonyms, patterns)
    responses = raw.get("responses") or {}
    if not isinstance(responses, dict):
        raise DomainError(f"{df}:{_line(raw, 'responses')}: 'responses' must map a name to a list of texts")
    for name, texts in responses.items():
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise DomainError(f"{df}:{_line(responses, name)}: response {name!r} must be a text or a list of texts")
        domain.responses[str(name)] = list(texts)
    if nlu_file.is_file():
        _load_nlu(nlu_file, domain)
    _check(domain)
    return domain


def _load_nlu(nlu_file: Path, domain: Domain) -> None:
    nf = str(nlu_file)
    raw = _read_yaml(nlu_file)
    if not isinstance(raw, dict) or "nlu" not in raw:
        raise DomainError(f"{nf}:1: top level must be a mapping with an 'nlu' list")
    items = raw["nlu"] or []
    if not isinstance(items, list):
        raise DomainError(f"{nf}:{_line(raw, 'nlu')}: 'nlu' must be a list of {{intent, examples, templates}}")
    for i, item in enumerate(items):
        line = _line(items, i)
        if not isinstance(item, dict) or "intent" not in item:
            raise DomainError(f"{nf}:{line}: each 'nlu' entry needs an 'intent' key")
        intent = str(item["intent"])
        if intent not in domain.intents:
            raise DomainError(
                f"{nf}:{_line(item, 'intent')}: intent {intent!r} is not listed in domain.yml (add it under 'intents')"
            )
        for key in item:
            if key not in ("intent", "examples", "templates"):
                raise DomainError(f"{nf}:{_line(item, key)}: unknown key {key!r} (intent, examples, templates)")
        if "examples" in item:
            for text, ln in _example_lines(item["examples"], item, "examples", nf):
                domain.examples.append(parse_annotated(text, intent, nf, ln))
        if "templates" in item:
            for text, ln in _example_lines(item["templates"], item, "templates", nf):
                template = Template(intent, text, nf, ln)
                template.parts()  # syntax check now, with the line
                domain.templates.append(template)


def _check(domain: Domain) -> None:
    """Cross-check names between domain.yml and nlu.yml."""
    for ex in domain.examples:
        for span in ex.spans:
            if span.slot not in domain.slots:
                raise DomainError(
                    f"{ex.file}:{ex.line}: slot {span.slot!r} is not defined in domain.yml (add it under 'slots')"
                )
    for template in domain.templates:
        for kind, value in template.parts():
            if kind != "slot":
                continue
            if value not in domain.slots:
                raise DomainError(
                    f"{template.file}:{template.line}: slot {value!r} is not defined in domain.yml (add it under 'slots')"
                )
            if not domain.slots[value].phrases():
                raise DomainError(
                    f"{template.file}:{template.line}: template uses slot {value!r} which has no values to fill it"
                    " (add 'values' to the slot in domain.yml)"
                )


def load_domains(root: str | Path = DOMAINS_DIR, names: Sequence[str] | None = None) -> list[Domain]:
    """Load every domain folder under ``root`` (sorted), or only ``names``."""
    root = Path(root)
    folders = sorted(p for p in root.iterdir() if (p / "domain.yml").is_file())
    if names is not None:
        wanted = set(names)
        missing = wanted - {p.name for p in folders}
        if missing:
            raise DomainError(f"{root}: no domain folder named {sorted(missing)}")
        folders = [p for p in folders if p.name in wanted]
    domains = [load_domain(p) for p in folders]
    owner: dict[str, str] = {}
    for d in domains:
        for intent in d.intents:
            if intent in owner:
                raise DomainError(f"{d.path}/domain.yml: intent {intent!r} is also defined by domain {owner[intent]!r}")
            owner[intent] = d.name
    return domains


# --------------------------------------------------------------------------- writing our format


class _Block(str):
    """A string written as a YAML literal block."""


def _block_representer(dumper: yaml.SafeDumper, data: _Block) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Block, _block_representer)


def _dump(data: Any, path: Path, header: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
    path.write_text(header + text, encoding="utf-8")


def write_domain(domain: Domain, folder: str | Path, header: str = "") -> None:
    """Write ``domain`` as ``folder/domain.yml`` + ``folder/nlu.yml`` in our format."""
    folder = Path(folder)
    data: dict[str, Any] = {"version": FORMAT_VERSION, "name": domain.name}
    if domain.description:
        data["description"] = domain.description
    if domain.source:
        data["source"] = domain.source
    data["intents"] = [
        {i.name: {k: v for k, v in (("description", i.description), ("confirm", i.confirm)) if v}}
        if (i.description or i.confirm)
        else i.name
        for i in domain.intents.values()
    ]
    slots: dict[str, Any] = {}
    for s in domain.slots.values():
        spec: dict[str, Any] = {"type": s.kind}
        if s.values:
            spec["values"] = list(s.values)
        if s.synonyms:
            spec["synonyms"] = dict(s.synonyms)
        if s.patterns:
            spec["patterns"] = list(s.patterns)
        slots[s.name] = spec
    data["slots"] = slots
    if domain.responses:
        data["responses"] = domain.responses
    _dump(data, folder / "domain.yml", header)
    nlu: list[dict[str, Any]] = []
    for intent in domain.intents:
        entry: dict[str, Any] = {"intent": intent}
        examples = [e.annotated() for e in domain.examples if e.intent == intent]
        templates = [t.pattern for t in domain.templates if t.intent == intent]
        if examples:
            entry["examples"] = _Block("".join(f"- {e}\n" for e in examples))
        if templates:
            entry["templates"] = _Block("".join(f"- {t}\n" for t in templates))
        if len(entry) > 1:
            nlu.append(entry)
    _dump({"version": FORMAT_VERSION, "nlu": nlu}, folder / "nlu.yml", header)


# --------------------------------------------------------------------------- importers


def import_rasa(nlu_path: str | Path, name: str | None = None, domain_path: str | Path | None = None) -> Domain:
    """Convert a Rasa ``nlu.yml`` (and optionally its ``domain.yml``) into a :class:`Domain`.

    Intents and examples come from ``- intent:`` entries; entities become text
    slots; ``synonym`` entries become slot synonyms and ``lookup`` tables slot
    values when their name matches an entity; ``regex`` entries become patterns.
    """
    nlu_path = Path(nlu_path)
    nf = str(nlu_path)
    raw = _read_yaml(nlu_path)
    if not isinstance(raw, dict) or not isinstance(raw.get("nlu"), list):
        raise DomainError(f"{nf}:1: not a Rasa NLU file (expected a top-level 'nlu' list)")
    domain = Domain(name=name or nlu_path.parent.name, source=f"imported from Rasa {nlu_path.name}")
    synonyms: dict[str, str] = {}
    lookups: dict[str, list[str]] = {}
    regexes: dict[str, list[str]] = {}
    for i, item in enumerate(raw["nlu"]):
        if not isinstance(item, dict):
            raise DomainError(f"{nf}:{_line(raw['nlu'], i)}: each 'nlu' entry must be a mapping")
        if "intent" in item:
            intent = str(item["intent"])
            domain.intents.setdefault(intent, IntentDef(intent))
            for text, ln in _example_lines(item.get("examples", ""), item, "examples", nf):
                domain.examples.append(parse_annotated(text, intent, nf, ln))
        elif "synonym" in item:
            for text, _ in _example_lines(item.get("examples", ""), item, "examples", nf):
                synonyms[clean_text(text)] = clean_text(str(item["synonym"]))
        elif "lookup" in item:
            lookups[str(item["lookup"])] = [clean_text(t) for t, _ in _example_lines(item.get("examples", ""), item, "examples", nf)]
        elif "regex" in item:
            regexes[str(item["regex"])] = [t for t, _ in _example_lines(item.get("examples", ""), item, "examples", nf)]
    for ex in domain.examples:
        for span in ex.spans:
            slot = domain.slots.setdefault(span.slot, SlotDef(span.slot))
            if span.value:
                synonyms.setdefault(" ".join(ex.words[span.start : span.end]), span.value)
    for slot in domain.slots.values():
        slot.values = list(lookups.get(slot.name, []))
        slot.patterns = list(regexes.get(slot.name, []))
    # A synonym belongs to the slot whose annotations use its canonical value.
    for ex in domain.examples:
        for span in ex.spans:
            phrase = " ".join(ex.words[span.start : span.end])
            if phrase in synonyms:
                domain.slots[span.slot].synonyms[phrase] = synonyms[phrase]
    if domain_path is not None:
        rd = _read_yaml(Path(domain_path))
        if isinstance(rd, dict):
            for intent in rd.get("intents") or []:
                n = intent if isinstance(intent, str) else next(iter(intent))
                domain.intents.setdefault(str(n), IntentDef(str(n)))
            for rname, texts in (rd.get("responses") or {}).items():
                domain.responses[str(rname)] = [t["text"] if isinstance(t, dict) else str(t) for t in texts]
            for sname, spec in (rd.get("slots") or {}).items():
                slot = domain.slots.setdefault(str(sname), SlotDef(str(sname)))
                if isinstance(spec, dict) and spec.get("type") == "categorical":
                    slot.kind = "categorical"
                    slot.values = list(dict.fromkeys([*slot.values, *[clean_text(str(v)) for v in spec.get("values") or []]]))
                elif isinstance(spec, dict) and spec.get("type") == "float":
                    slot.kind = "number"
    _check(domain)
    return domain


def _read_json_any(path: Path) -> Any:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # one SNIPS benchmark file is Latin-1
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DomainError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc


def import_snips(path: str | Path, name: str = "snips") -> Domain:
    """Convert SNIPS benchmark JSON (a file, or a folder of ``*.json``) into a :class:`Domain`.

    Format: ``{"<Intent>": [{"data": [{"text": ...}, {"text": ..., "entity": slot}]}]}``.
    The line number of an example is its index (1-based) in the intent's list.
    """
    path = Path(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if path.is_dir() and not files:
        # The benchmark's own layout: one folder per intent with train_<I>_full.json and validate_<I>.json.
        files = sorted(path.rglob("*.json"))
        kinds = {f.name.split("_", 1)[0] for f in files if f.name.startswith(("train_", "validate_"))}
        if len(kinds) > 1:
            raise DomainError(
                f"{path}: holds both train_*.json and validate_*.json files in its subfolders; point at one "
                "set (a folder or file holding only it), e.g. the validate files for the test set"
            )
    if not files:
        raise DomainError(f"{path}: no SNIPS *.json files found")
    domain = Domain(name=name, source=f"imported from SNIPS benchmark JSON {path.name}")
    for file in files:
        data = _read_json_any(file)
        if not isinstance(data, dict):
            raise DomainError(f"{file}:1: not SNIPS benchmark JSON (expected {{intent: [utterances]}})")
        for intent, utterances in data.items():
            domain.intents.setdefault(intent, IntentDef(intent))
            for idx, utt in enumerate(utterances):
                words: list[str] = []
                spans: list[Span] = []
                try:
                    chunks = utt["data"]
                except (KeyError, TypeError) as exc:
                    raise DomainError(f"{file}:{idx + 1}: utterance {idx} of {intent} has no 'data' list") from exc
                for chunk in chunks:
                    ws = split_words(str(chunk.get("text", "")))
                    slot = chunk.get("entity")
                    if slot and ws:
                        spans.append(Span(str(slot), len(words), len(words) + len(ws)))
                        domain.slots.setdefault(str(slot), SlotDef(str(slot)))
                    words.extend(ws)
                if words:
                    domain.examples.append(Example(intent, tuple(words), tuple(spans), str(file), idx + 1))
    return domain


def rhino_to_template(expression: str) -> str:
    """``[can I get, I want] (please) $size:size`` -> ``(can i get|i want) (please|) {size}``."""
    out = re.sub(r"\[([^\[\]]*)\]", lambda m: "(" + "|".join(clean_text(o) for o in m.group(1).split(",")) + ")", expression)
    out = re.sub(r"\(([^()|]*)\)", lambda m: f"({clean_text(m.group(1))}|)", out)
    out = re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*):([A-Za-z_][A-Za-z0-9_]*)", r"{\2}", out)
    # Lower-case the literal words only (slot names keep their case).
    return re.sub(r"(\{[^}]*\})|([^{}]+)", lambda m: m.group(1) or m.group(2).lower(), out).strip()


def import_rhino(path: str | Path, name: str | None = None) -> Domain:
    """Convert a Picovoice Rhino context YAML into a :class:`Domain`.

    Each expression becomes a template, keeping the grammar's intent and slot
    names; a slot ``$type:name`` gets the values of the slot type ``type``.
    """
    path = Path(path)
    pf = str(path)
    raw = _read_yaml(path)
    ctx = raw.get("context") if isinstance(raw, dict) else None
    if not isinstance(ctx, dict) or not isinstance(ctx.get("expressions"), dict):
        raise DomainError(f"{pf}:1: not a Rhino context (expected context.expressions)")
    types = ctx.get("slots") or {}
    domain = Domain(name=name or path.stem, source=f"imported from Picovoice Rhino context {path.name}")
    for intent, expressions in ctx["expressions"].items():
        domain.intents[str(intent)] = IntentDef(str(intent))
        for i, expr in enumerate(expressions or []):
            line = _line(expressions, i)
            for m in re.finditer(r"\$([A-Za-z_][A-Za-z0-9_]*):([A-Za-z_][A-Za-z0-9_]*)", expr):
                stype, sname = m.group(1), m.group(2)
                if stype not in types:
                    raise DomainError(f"{pf}:{line}: slot type {stype!r} is not defined under context.slots")
                if sname not in domain.slots:
                    domain.slots[sname] = SlotDef(sname, "categorical", [clean_text(str(v)) for v in types[stype]])
            domain.templates.append(Template(str(intent), rhino_to_template(str(expr)), pf, line))
    _check(domain)
    return domain


# --------------------------------------------------------------------------- exporter


def export_rasa(domain: Domain, folder: str | Path, per_template: int = 20, seed: int = 0) -> tuple[Path, Path]:
    """Write Rasa 3.x ``nlu.yml`` + ``domain.yml`` for ``domain`` into ``folder``.

    Rasa has no templates, so they are expanded (``per_template`` samples each,
    seeded). Slot values become lookup tables, synonyms ``synonym`` entries and
    patterns ``regex`` entries.

    Returns:
        The paths of the written ``nlu.yml`` and ``domain.yml``.
    """
    folder = Path(folder)
    examples = domain.all_examples(per_template, seed)
    nlu: list[dict[str, Any]] = []
    for intent in domain.intents:
        lines = sorted({e.annotated() for e in examples if e.intent == intent})
        if lines:
            nlu.append({"intent": intent, "examples": _Block("".join(f"- {t}\n" for t in lines))})
    by_value: dict[str, list[str]] = {}
    for slot in domain.slots.values():
        for spoken, value in slot.synonyms.items():
            by_value.setdefault(value, []).append(spoken)
    for value, spoken in by_value.items():
        nlu.append({"synonym": value, "examples": _Block("".join(f"- {s}\n" for s in spoken))})
    for slot in domain.slots.values():
        if slot.values:
            nlu.append({"lookup": slot.name, "examples": _Block("".join(f"- {v}\n" for v in slot.values))})
        if slot.patterns:
            nlu.append({"regex": slot.name, "examples": _Block("".join(f"- {p}\n" for p in slot.patterns))})
    nlu_path = folder / "nlu.yml"
    _dump({"version": "3.1", "nlu": nlu}, nlu_path)
    rasa_slots: dict[str, Any] = {}
    for slot in domain.slots.values():
        spec: dict[str, Any] = {"type": {"number": "float", "categorical": "categorical"}.get(slot.kind, "text")}
        if slot.kind == "categorical" and slot.values:
            spec["values"] = list(slot.values)
        spec["mappings"] = [{"type": "from_entity", "entity": slot.name}]
        rasa_slots[slot.name] = spec
    data = {
        "version": "3.1",
        "intents": list(domain.intents),
        "entities": list(domain.slots),
        "slots": rasa_slots,
        "responses": {k: [{"text": t} for t in v] for k, v in domain.responses.items()},
    }
    domain_path = folder / "domain.yml"
    _dump(data, domain_path)
    return nlu_path, domain_path


def intents_of(domains: Iterable[Domain]) -> list[str]:
    return [i for d in domains for i in d.intents]


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dialog.domain check|import|export`` — validate, convert and export domains."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m dialog.domain", description=main.__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="load and validate domain folders (default: the built-in ones)")
    c.add_argument("folders", nargs="*", type=Path)
    i = sub.add_parser("import", help="convert a Rasa nlu.yml, SNIPS JSON or Rhino context into a domain folder")
    i.add_argument("format", choices=["rasa", "snips", "rhino"])
    i.add_argument("source", type=Path)
    i.add_argument("out", type=Path, help="the domain folder to write")
    i.add_argument("--name")
    e = sub.add_parser("export", help="write Rasa nlu.yml + domain.yml for a domain folder")
    e.add_argument("folder", type=Path)
    e.add_argument("out", type=Path)
    e.add_argument("--per-template", type=int, default=20)
    args = p.parse_args(argv)
    try:
        if args.cmd == "check":
            domains = [load_domain(f) for f in args.folders] if args.folders else load_domains()
            for d in domains:
                print(f"ok  {d.name}: {len(d.intents)} intents, {len(d.slots)} slots, "
                      f"{len(d.examples)} examples, {len(d.templates)} templates")
        elif args.cmd == "import":
            name = args.name or args.out.name
            importer = {"rasa": import_rasa, "snips": import_snips, "rhino": import_rhino}[args.format]
            domain = importer(args.source, name)
            write_domain(domain, args.out, header=f"# {domain.source}\n")
            print(f"wrote {args.out}/domain.yml and nlu.yml ({len(domain.intents)} intents)")
        else:
            nlu_path, domain_path = export_rasa(load_domain(args.folder), args.out, args.per_template)
            print(f"wrote {nlu_path} and {domain_path}")
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
