"""Convert domains from and to other formats: Rasa ``nlu.yml``/``domain.yml``, the SNIPS benchmark
JSON, Picovoice Rhino context YAML; and write our own format back out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from core.errors import DomainError
from core.text import normalize_text
from core.text import words as split_words
from domains.loader import check_domain, example_lines, parse_annotated
from domains.model import FORMAT_VERSION, Domain, Example, IntentDef, SlotDef, Span, Template
from domains.yaml_io import Block, dump_yaml, line_of, read_yaml


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
    dump_yaml(data, folder / "domain.yml", header)
    nlu: list[dict[str, Any]] = []
    for intent in domain.intents:
        entry: dict[str, Any] = {"intent": intent}
        examples = [e.annotated() for e in domain.examples if e.intent == intent]
        templates = [t.pattern for t in domain.templates if t.intent == intent]
        if examples:
            entry["examples"] = Block("".join(f"- {e}\n" for e in examples))
        if templates:
            entry["templates"] = Block("".join(f"- {t}\n" for t in templates))
        if len(entry) > 1:
            nlu.append(entry)
    dump_yaml({"version": FORMAT_VERSION, "nlu": nlu}, folder / "nlu.yml", header)


# --------------------------------------------------------------------------- importers


def import_rasa(nlu_path: str | Path, name: str | None = None, domain_path: str | Path | None = None) -> Domain:
    """Convert a Rasa ``nlu.yml`` (and optionally its ``domain.yml``) into a :class:`Domain`.

    Intents and examples come from ``- intent:`` entries; entities become text
    slots; ``synonym`` entries become slot synonyms and ``lookup`` tables slot
    values when their name matches an entity; ``regex`` entries become patterns.
    """
    nlu_path = Path(nlu_path)
    nf = str(nlu_path)
    raw = read_yaml(nlu_path)
    if not isinstance(raw, dict) or not isinstance(raw.get("nlu"), list):
        raise DomainError(f"{nf}:1: not a Rasa NLU file (expected a top-level 'nlu' list)")
    domain = Domain(name=name or nlu_path.parent.name, source=f"imported from Rasa {nlu_path.name}")
    synonyms: dict[str, str] = {}
    lookups: dict[str, list[str]] = {}
    regexes: dict[str, list[str]] = {}
    for i, item in enumerate(raw["nlu"]):
        if not isinstance(item, dict):
            raise DomainError(f"{nf}:{line_of(raw['nlu'], i)}: each 'nlu' entry must be a mapping")
        if "intent" in item:
            intent = str(item["intent"])
            domain.intents.setdefault(intent, IntentDef(intent))
            for text, ln in example_lines(item.get("examples", ""), item, "examples", nf):
                domain.examples.append(parse_annotated(text, intent, nf, ln))
        elif "synonym" in item:
            for text, _ in example_lines(item.get("examples", ""), item, "examples", nf):
                synonyms[normalize_text(text)] = normalize_text(str(item["synonym"]))
        elif "lookup" in item:
            lookups[str(item["lookup"])] = [normalize_text(t) for t, _ in example_lines(item.get("examples", ""), item, "examples", nf)]
        elif "regex" in item:
            regexes[str(item["regex"])] = [t for t, _ in example_lines(item.get("examples", ""), item, "examples", nf)]
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
        rd = read_yaml(Path(domain_path))
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
                    slot.values = list(dict.fromkeys([*slot.values, *[normalize_text(str(v)) for v in spec.get("values") or []]]))
                elif isinstance(spec, dict) and spec.get("type") == "float":
                    slot.kind = "number"
    check_domain(domain)
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
    out = re.sub(r"\[([^\[\]]*)\]", lambda m: "(" + "|".join(normalize_text(o) for o in m.group(1).split(",")) + ")", expression)
    out = re.sub(r"\(([^()|]*)\)", lambda m: f"({normalize_text(m.group(1))}|)", out)
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
    raw = read_yaml(path)
    ctx = raw.get("context") if isinstance(raw, dict) else None
    if not isinstance(ctx, dict) or not isinstance(ctx.get("expressions"), dict):
        raise DomainError(f"{pf}:1: not a Rhino context (expected context.expressions)")
    types = ctx.get("slots") or {}
    domain = Domain(name=name or path.stem, source=f"imported from Picovoice Rhino context {path.name}")
    for intent, expressions in ctx["expressions"].items():
        domain.intents[str(intent)] = IntentDef(str(intent))
        for i, expr in enumerate(expressions or []):
            line = line_of(expressions, i)
            for m in re.finditer(r"\$([A-Za-z_][A-Za-z0-9_]*):([A-Za-z_][A-Za-z0-9_]*)", expr):
                stype, sname = m.group(1), m.group(2)
                if stype not in types:
                    raise DomainError(f"{pf}:{line}: slot type {stype!r} is not defined under context.slots")
                if sname not in domain.slots:
                    domain.slots[sname] = SlotDef(sname, "categorical", [normalize_text(str(v)) for v in types[stype]])
            domain.templates.append(Template(str(intent), rhino_to_template(str(expr)), pf, line))
    check_domain(domain)
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
            nlu.append({"intent": intent, "examples": Block("".join(f"- {t}\n" for t in lines))})
    by_value: dict[str, list[str]] = {}
    for slot in domain.slots.values():
        for spoken, value in slot.synonyms.items():
            by_value.setdefault(value, []).append(spoken)
    for value, spoken in by_value.items():
        nlu.append({"synonym": value, "examples": Block("".join(f"- {s}\n" for s in spoken))})
    for slot in domain.slots.values():
        if slot.values:
            nlu.append({"lookup": slot.name, "examples": Block("".join(f"- {v}\n" for v in slot.values))})
        if slot.patterns:
            nlu.append({"regex": slot.name, "examples": Block("".join(f"- {p}\n" for p in slot.patterns))})
    nlu_path = folder / "nlu.yml"
    dump_yaml({"version": "3.1", "nlu": nlu}, nlu_path)
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
    dump_yaml(data, domain_path)
    return nlu_path, domain_path


