"""Domains: loader validation (file + line), importers (Rasa, SNIPS, Rhino) and the Rasa exporter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from core.errors import DomainError
from core.settings import load_settings
from domains import (
    BUILTIN_DIR,
    export_rasa,
    import_rasa,
    import_rhino,
    import_snips,
    load_domain,
    load_domains,
    parse_annotated,
    rhino_to_template,
    write_domain,
)

SHARED_DATA = load_settings().shared_dir / "data"
RHINO = SHARED_DATA / "coffee-domain" / "coffee_maker_context.yaml"
SNIPS = SHARED_DATA / "snips-train"
needs_rhino = pytest.mark.skipif(not RHINO.is_file(), reason=f"shared Rhino grammar not found at {RHINO}")
needs_snips = pytest.mark.skipif(not SNIPS.is_dir(), reason=f"shared SNIPS training data not found at {SNIPS}")

FIXED_INTENTS = {
    "GetWeather", "PlayMusic", "AddToPlaylist", "BookRestaurant", "RateBook", "SearchCreativeWork",
    "SearchScreeningEvent", "SetTimer", "CancelTimer", "SetAlarm", "CancelAlarm", "GetTime", "GetDate",
    "DeviceOn", "DeviceOff", "SetDeviceLevel", "Greet", "Goodbye", "Help", "Cancel", "Repeat", "Affirm", "Deny",
    "orderDrink", "out_of_scope",
    # household (issue 26)
    "QueryAlarms", "SetDeviceColor", "CreateList", "AddToList", "RemoveFromList", "ReadList", "ClearList",
    "DeleteList", "SetReminder", "AddEvent", "QueryCalendar", "CancelEvent", "MoveEvent", "MediaControl",
    "SetVolume", "askPrice", "askMenu",
}


def _domain(tmp_path: Path, domain_yml: str, nlu_yml: str | None = None) -> Path:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "domain.yml").write_text(domain_yml)
    if nlu_yml is not None:
        (folder / "nlu.yml").write_text(nlu_yml)
    return folder


DOMAIN_YML = """\
version: "1"
intents:
  - order
slots:
  size:
    type: categorical
    values: [small, large]
    synonyms: {tall: small}
"""


# --------------------------------------------------------------------------- built-in domains


def test_builtin_domains_load_and_cover_the_fixed_intents() -> None:
    domains = load_domains()
    intents = {i for d in domains for i in d.intents}
    assert intents == FIXED_INTENTS
    coffee = next(d for d in domains if d.name == "coffee")
    assert set(coffee.slots) == {"coffeeDrink", "size", "roast", "numberOfShots", "milkAmount", "sugarAmount"}
    assert coffee.examples == [] and len(coffee.templates) > 50  # trained only from its grammar


def test_intent_names_are_documented() -> None:
    readme = (BUILTIN_DIR / "README.md").read_text()
    for intent in FIXED_INTENTS:
        assert f"`{intent}`" in readme, intent


def test_template_expansion_is_seeded_and_annotated() -> None:
    coffee = load_domain(BUILTIN_DIR / "coffee")
    a, b = coffee.expand(5, seed=1), coffee.expand(5, seed=1)
    assert [e.words for e in a] == [e.words for e in b]
    for ex in a:
        assert all(coffee.slots[s.slot].canonical(" ".join(ex.words[s.start : s.end])) for s in ex.spans)


def test_closest_maps_misheard_categorical_values_only() -> None:
    """ASR slips of a closed vocabulary map to the known value; other words and open slots do not."""
    coffee = load_domain(BUILTIN_DIR / "coffee")
    assert coffee.slots["roast"].closest("dark rose") == "dark roast"
    assert coffee.slots["size"].closest("largest") == "large"
    assert coffee.slots["coffeeDrink"].closest("americana") == "americano"
    assert coffee.slots["milkAmount"].closest("skin milk") == "skim milk"
    assert coffee.slots["size"].closest("tall") is None
    assert coffee.slots["coffeeDrink"].closest("orange juice") is None
    snips = load_domain(BUILTIN_DIR / "snips")
    open_slot = next(s for s in snips.slots.values() if s.kind == "text")
    assert open_slot.closest("anything") is None


# --------------------------------------------------------------------------- loader errors name file and line


def test_unknown_slot_in_example_reports_file_and_line(tmp_path: Path) -> None:
    nlu = 'version: "1"\nnlu:\n  - intent: order\n    examples: |\n      - a [large](size) latte\n      - a [hot](temperature) latte\n'
    folder = _domain(tmp_path, DOMAIN_YML, nlu)
    with pytest.raises(DomainError, match=r"nlu\.yml:6: slot 'temperature' is not defined"):
        load_domain(folder)


def test_unknown_intent_reports_line(tmp_path: Path) -> None:
    nlu = 'version: "1"\nnlu:\n  - intent: order\n    examples: |\n      - a latte\n  - intent: pay\n    examples: |\n      - pay\n'
    folder = _domain(tmp_path, DOMAIN_YML, nlu)
    with pytest.raises(DomainError, match=r"nlu\.yml:6: intent 'pay' is not listed in domain\.yml"):
        load_domain(folder)


def test_bad_yaml_and_bad_keys_report_lines(tmp_path: Path) -> None:
    folder = _domain(tmp_path, DOMAIN_YML + "resposes: {}\n")
    with pytest.raises(DomainError, match=r"domain\.yml:9: unknown key 'resposes'"):
        load_domain(folder)
    (folder / "domain.yml").write_text("intents:\n  - a\n b: [\n")
    with pytest.raises(DomainError, match=r"domain\.yml:\d+: invalid YAML"):
        load_domain(folder)
    (folder / "domain.yml").write_text(DOMAIN_YML.replace("categorical", "colour"))
    with pytest.raises(DomainError, match=r"domain\.yml:6: slot 'size' has unknown type 'colour'"):
        load_domain(folder)


def test_bad_annotation_and_template_report_lines(tmp_path: Path) -> None:
    nlu = 'version: "1"\nnlu:\n  - intent: order\n    examples: |\n      - a [large(size) latte\n'
    folder = _domain(tmp_path, DOMAIN_YML, nlu)
    with pytest.raises(DomainError, match=r"nlu\.yml:5: unbalanced"):
        load_domain(folder)
    (folder / "nlu.yml").write_text('nlu:\n  - intent: order\n    templates: |\n      - a {size} (latte|mocha\n')
    with pytest.raises(DomainError, match=r"nlu\.yml:4: cannot parse template"):
        load_domain(folder)
    (folder / "nlu.yml").write_text('nlu:\n  - intent: order\n    templates:\n      - a {size} {drink}\n')
    with pytest.raises(DomainError, match=r"nlu\.yml:4: slot 'drink' is not defined"):
        load_domain(folder)


def test_duplicate_keys_and_missing_domain(tmp_path: Path) -> None:
    folder = _domain(tmp_path, DOMAIN_YML + "slots: {}\n")
    with pytest.raises(DomainError, match=r"domain\.yml:9: duplicate key 'slots'"):
        load_domain(folder)
    with pytest.raises(DomainError, match="missing"):
        load_domain(tmp_path / "nowhere")


def test_parse_annotated_forms() -> None:
    ex = parse_annotated('Can I get a [Tall](size:small) latte, [oat milk]{"entity": "milk"}?', "order")
    assert ex.words == ("can", "i", "get", "a", "tall", "latte", "oat", "milk")
    assert [(s.slot, s.start, s.end, s.value) for s in ex.spans] == [("size", 4, 5, "small"), ("milk", 6, 8, None)]
    assert ex.bio() == ["O", "O", "O", "O", "B-size", "O", "B-milk", "I-milk"]
    assert ex.annotated() == "can i get a [tall](size:small) latte [oat milk](milk)"


# --------------------------------------------------------------------------- importers and exporter

RASA_NLU = """\
version: "3.1"
nlu:
- intent: order
  examples: |
    - I'd like a [large](size) [latte](drink)
    - a [venti](size:large) [mocha](drink) please
- intent: greet
  examples: |
    - hello there
- synonym: large
  examples: |
    - big
- lookup: drink
  examples: |
    - latte
    - mocha
- regex: size
  examples: |
    - \\b(small|large)\\b
"""


def test_rasa_import_write_load_round_trip(tmp_path: Path) -> None:
    (tmp_path / "nlu.yml").write_text(RASA_NLU)
    domain = import_rasa(tmp_path / "nlu.yml", name="cafe")
    assert list(domain.intents) == ["order", "greet"]
    assert domain.slots["drink"].values == ["latte", "mocha"]
    assert domain.slots["size"].synonyms == {"venti": "large"}
    assert domain.slots["size"].patterns == [r"\b(small|large)\b"]
    write_domain(domain, tmp_path / "cafe")
    again = load_domain(tmp_path / "cafe")
    assert [(e.intent, e.words, e.spans) for e in again.examples] == [(e.intent, e.words, e.spans) for e in domain.examples]
    assert again.slots["size"].synonyms == {"venti": "large"}


def test_export_rasa_then_import_again(tmp_path: Path) -> None:
    (tmp_path / "nlu.yml").write_text(RASA_NLU)
    domain = import_rasa(tmp_path / "nlu.yml", name="cafe")
    domain.responses = {"utter_greet": ["Hi!"]}
    nlu_path, domain_path = export_rasa(domain, tmp_path / "out")
    exported = yaml.safe_load(domain_path.read_text())
    assert exported["intents"] == ["order", "greet"]
    assert set(exported["entities"]) == {"size", "drink"}
    assert exported["responses"] == {"utter_greet": [{"text": "Hi!"}]}
    back = import_rasa(nlu_path, name="cafe", domain_path=domain_path)
    assert sorted(e.annotated() for e in back.examples) == sorted(e.annotated() for e in domain.examples)
    assert back.slots["drink"].values == ["latte", "mocha"]
    assert back.slots["size"].synonyms == {"venti": "large"}


def test_export_builtin_coffee_expands_templates(tmp_path: Path) -> None:
    nlu_path, _ = export_rasa(load_domain(BUILTIN_DIR / "coffee"), tmp_path, per_template=2)
    back = import_rasa(nlu_path)
    assert len(back.examples) > 100
    assert {s for e in back.examples for s in (sp.slot for sp in e.spans)} >= {"size", "coffeeDrink"}


def test_snips_import_round_trip(tmp_path: Path) -> None:
    data = {"GetWeather": [{"data": [{"text": "Will it rain in "}, {"text": "Oslo", "entity": "city"},
                                     {"text": " "}, {"text": "tomorrow", "entity": "timeRange"}, {"text": "?"}]}]}
    (tmp_path / "train_GetWeather.json").write_text(json.dumps(data))
    domain = import_snips(tmp_path)
    [ex] = domain.examples
    assert ex.annotated() == "will it rain in [oslo](city) [tomorrow](timeRange)"
    write_domain(domain, tmp_path / "w")
    assert [e.annotated() for e in load_domain(tmp_path / "w").examples] == [ex.annotated()]


def test_snips_import_of_the_benchmark_folder_layout(tmp_path: Path) -> None:
    """One folder per intent (train_<I>_full.json + validate_<I>.json): pointing at the validate
    files' folders works; a tree holding both sets is refused instead of silently mixed."""
    data = {"GetWeather": [{"data": [{"text": "rain in "}, {"text": "oslo", "entity": "city"}]}]}
    for kind in ("train_GetWeather_full", "validate_GetWeather"):
        (tmp_path / "both" / "GetWeather").mkdir(parents=True, exist_ok=True)
        (tmp_path / "both" / "GetWeather" / f"{kind}.json").write_text(json.dumps(data))
    (tmp_path / "test" / "GetWeather").mkdir(parents=True)
    (tmp_path / "test" / "GetWeather" / "validate_GetWeather.json").write_text(json.dumps(data))
    assert [e.annotated() for e in import_snips(tmp_path / "test").examples] == ["rain in [oslo](city)"]
    with pytest.raises(DomainError, match="both train_"):
        import_snips(tmp_path / "both")


@needs_snips
def test_snips_import_of_the_shared_training_data() -> None:
    domain = import_snips(SNIPS)
    assert len(domain.intents) == 7 and len(domain.examples) > 13000
    assert {"playlist", "party_size_number", "timeRange", "object_name"} <= set(domain.slots)


def test_rhino_expression_conversion() -> None:
    assert rhino_to_template("[brew, can I get] (please) [a, an] $size:cupSize latte") == "(brew|can i get) (please|) (a|an) {cupSize} latte"


@needs_rhino
def test_rhino_import_matches_the_committed_coffee_domain(tmp_path: Path) -> None:
    imported = import_rhino(RHINO, name="coffee")
    committed = load_domain(BUILTIN_DIR / "coffee")
    assert [t.pattern for t in imported.templates] == [t.pattern for t in committed.templates]
    assert {n: s.values for n, s in imported.slots.items()} == {n: s.values for n, s in committed.slots.items()}
    write_domain(imported, tmp_path / "c")
    assert [t.pattern for t in load_domain(tmp_path / "c").templates] == [t.pattern for t in imported.templates]
    # The example sentence is generated by one of the grammar's expressions.
    assert "(a|an) {size} {numberOfShots} {coffeeDrink} with {milkAmount}" in [t.pattern.split(") ", 1)[1] for t in imported.templates]
