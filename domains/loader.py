"""Load and validate domain folders (``domain.yml`` + ``nlu.yml``).

Everything is checked at load time; a problem raises :class:`~core.errors.DomainError`
naming the file and line and saying how to fix it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import DomainError
from core.text import normalize_text
from core.text import words as split_words
from domains.model import SLOT_KINDS, Domain, Example, IntentDef, SlotDef, Span, Template
from domains.yaml_io import LineList, line_of, read_yaml

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
"""The built-in domains shipped with QuickTurn."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ANNOTATION = re.compile(r"\[([^\[\]]+)\](?:\(([^()]+)\)|(\{[^{}]*\}))")


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
        value = normalize_text(value) if value else None
        spans.append(Span(slot, len(words), len(words) + len(phrase_words), value))
        words.extend(phrase_words)
        pos = m.end()
    rest = text[pos:]
    if "[" in rest or "](" in rest:
        raise DomainError(f"{file}:{line}: unbalanced '[' or ']' in example {text!r} (annotate as [words](slot))")
    words.extend(split_words(rest))
    return Example(intent, tuple(words), tuple(spans), file, line)


def example_lines(block: Any, container: Any, key: str, file: str) -> list[tuple[str, int]]:
    """``examples: |`` block (Rasa style) or a YAML list -> [(text, line)]."""
    if isinstance(block, str):
        first = line_of(container, key) + (1 if key in getattr(container, "block", set()) else 0)
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
                raise DomainError(f"{file}:{line_of(block, i)}: an example must be a string")
            out.append((item, line_of(block, i)))
        return out
    raise DomainError(f"{file}:{line_of(container, key)}: '{key}' must be a '|' block of '- ' lines or a list")


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
    raw = read_yaml(domain_file)
    df = str(domain_file)
    if not isinstance(raw, dict):
        raise DomainError(f"{df}:1: top level must be a mapping with intents/slots/responses")
    known = {"version", "name", "description", "source", "intents", "slots", "responses"}
    for key in raw:
        if key not in known:
            raise DomainError(f"{df}:{line_of(raw, key)}: unknown key {key!r} (expected one of {sorted(known)})")
    domain = Domain(
        name=str(raw.get("name", folder.name)),
        description=str(raw.get("description", "")),
        source=str(raw.get("source", "")),
        path=folder,
    )
    intents = raw.get("intents") or []
    if isinstance(intents, dict):
        intents = LineList([{k: v} for k, v in intents.items()])
    if not isinstance(intents, list) or not intents:
        raise DomainError(f"{df}:{line_of(raw, 'intents')}: 'intents' must be a non-empty list")
    for i, item in enumerate(intents):
        line = line_of(intents, i)
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
        raise DomainError(f"{df}:{line_of(raw, 'slots')}: 'slots' must be a mapping name -> {{type, values}}")
    for name, spec in slots.items():
        line = line_of(slots, name)
        if not _NAME.match(str(name)):
            raise DomainError(f"{df}:{line}: bad slot name {name!r} (letters, digits, underscore)")
        spec = spec or {}
        if not isinstance(spec, dict):
            raise DomainError(f"{df}:{line}: slot {name!r} must be a mapping with type/values/synonyms/patterns")
        kind = str(spec.get("type", "text"))
        if kind not in SLOT_KINDS:
            raise DomainError(f"{df}:{line_of(spec, 'type')}: slot {name!r} has unknown type {kind!r} (use one of {list(SLOT_KINDS)})")
        values = [normalize_text(str(v)) for v in spec.get("values") or []]
        synonyms_raw = spec.get("synonyms") or {}
        if not isinstance(synonyms_raw, dict):
            raise DomainError(f"{df}:{line_of(spec, 'synonyms')}: synonyms must map spoken phrase -> value")
        synonyms = {normalize_text(str(k)): normalize_text(str(v)) for k, v in synonyms_raw.items()}
        patterns = [str(p) for p in spec.get("patterns") or []]
        for j, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                plist = spec.get("patterns")
                raise DomainError(f"{df}:{line_of(plist, j)}: bad regex {pattern!r} for slot {name!r}: {exc}") from exc
        domain.slots[name] = SlotDef(name, kind, values, synonyms, patterns)
    responses = raw.get("responses") or {}
    if not isinstance(responses, dict):
        raise DomainError(f"{df}:{line_of(raw, 'responses')}: 'responses' must map a name to a list of texts")
    for name, texts in responses.items():
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise DomainError(f"{df}:{line_of(responses, name)}: response {name!r} must be a text or a list of texts")
        domain.responses[str(name)] = list(texts)
    if nlu_file.is_file():
        _load_nlu(nlu_file, domain)
    check_domain(domain)
    return domain


def _load_nlu(nlu_file: Path, domain: Domain) -> None:
    nf = str(nlu_file)
    raw = read_yaml(nlu_file)
    if not isinstance(raw, dict) or "nlu" not in raw:
        raise DomainError(f"{nf}:1: top level must be a mapping with an 'nlu' list")
    items = raw["nlu"] or []
    if not isinstance(items, list):
        raise DomainError(f"{nf}:{line_of(raw, 'nlu')}: 'nlu' must be a list of {{intent, examples, templates}}")
    for i, item in enumerate(items):
        line = line_of(items, i)
        if not isinstance(item, dict) or "intent" not in item:
            raise DomainError(f"{nf}:{line}: each 'nlu' entry needs an 'intent' key")
        intent = str(item["intent"])
        if intent not in domain.intents:
            raise DomainError(
                f"{nf}:{line_of(item, 'intent')}: intent {intent!r} is not listed in domain.yml (add it under 'intents')"
            )
        for key in item:
            if key not in ("intent", "examples", "templates"):
                raise DomainError(f"{nf}:{line_of(item, key)}: unknown key {key!r} (intent, examples, templates)")
        if "examples" in item:
            for text, ln in example_lines(item["examples"], item, "examples", nf):
                domain.examples.append(parse_annotated(text, intent, nf, ln))
        if "templates" in item:
            for text, ln in example_lines(item["templates"], item, "templates", nf):
                template = Template(intent, text, nf, ln)
                template.parts()  # syntax check now, with the line
                domain.templates.append(template)


def check_domain(domain: Domain) -> None:
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


def load_domains(root: str | Path = BUILTIN_DIR, names: Sequence[str] | None = None) -> list[Domain]:
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

