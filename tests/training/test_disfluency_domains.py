"""The built-in dialog domains as a source of fluent training text for the disfluency tagger."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from core.settings import load_settings
from domains import Example, Span
from tests.conftest import DISFLUENCY_MODEL_DIR as MODEL_DIR
from tests.conftest import needs_disfluency_model as needs_model
from training.disfluency import train as train_mod
from training.disfluency.align import Labelled
from training.disfluency.generate import Injector, domain_heldout, domain_texts, generate, slot_word_groups

#: Fluent orders in the coffee grammar's style that the model shipped before removed words from.
COFFEE_ORDERS = [
    "brew a double shot twelve ounce drip coffee with lots of skim milk",
    "i want a small single shot medium roast coffee with some soy milk",
]


def test_domain_texts_sides_are_disjoint_and_seeded() -> None:
    train_side, groups = domain_texts(13)
    held, _ = domain_texts(2013, 15, heldout=True)
    assert len(train_side) > 2000 and len(held) > 200
    assert not set(train_side) & set(held)
    assert all(not domain_heldout(t) for t in train_side) and all(domain_heldout(t) for t in held)
    # Another training seed draws other expansions, still all on the training side.
    assert not set(domain_texts(99)[0]) & set(held)
    assert domain_texts(13)[0] == train_side  # deterministic
    assert any("roast" in t and "shot" in t for t in train_side)  # the coffee grammar's stacked attributes
    assert ["double", "single", "triple"] in groups
    assert all(t == t.lower() and "  " not in t for t in train_side)


def test_slot_word_groups_pair_words_at_the_same_slot_position() -> None:
    examples = [
        Example("order", ("a", "dark", "roast", "latte"), (Span("roast", 1, 3), Span("drink", 3, 4))),
        Example("order", ("a", "light", "roast", "mocha"), (Span("roast", 1, 3), Span("drink", 3, 4))),
        Example("order", ("lots", "of", "milk"), (Span("amount", 0, 2),)),
        Example("order", ("a", "bit", "of", "milk"), (Span("amount", 0, 3),)),
    ]
    groups = slot_word_groups(examples)
    assert groups == [["dark", "light"], ["latte", "mocha"]]  # "roast" alone, function words left out


def test_repairs_use_same_slot_alternatives() -> None:
    rng = random.Random(0)
    injector = Injector(rng, ["zebra"], groups=[["single", "double", "triple"]])
    picks = [injector._replacement("double") for _ in range(200)]
    assert set(picks) <= {"single", "triple", "zebra"}
    assert picks.count("zebra") < 80  # mostly the same slot type (80 %)
    out = generate(["a double shot latte"], random.Random(1), fluent_share=0.0, source="domains",
                   groups=[["single", "double", "triple"]])
    assert out[0].source == "domains" and any(out[0].remove)


def _tiny_shared(monkeypatch) -> None:
    """build_mix without reading ../shared: two Disfl-QA items and a few SNIPS sentences."""
    disflqa = [Labelled(["what", "uh", "is", "it"], [False, True, False, False], [None, "filler", None, None], "q1")]
    monkeypatch.setattr(train_mod, "load_disflqa", lambda path: (list(disflqa), {"pairs": 1}))
    snips = [f"play song number {i}" for i in range(40)]
    monkeypatch.setattr(train_mod, "snips_split", lambda shared, seed: (snips, []))


def test_build_mix_domains_flag(monkeypatch) -> None:
    _tiny_shared(monkeypatch)
    base = train_mod.TrainConfig(snips_count=10, snips_fluent_count=5, command_count=20)
    mix0, summary0 = train_mod.build_mix(Path("unused"), base)
    assert "domains" not in summary0 and not any(m.source.startswith("domains") for m in mix0)
    cfg = train_mod.TrainConfig(snips_count=10, snips_fluent_count=5, command_count=20, domain_count=60)
    mix, summary = train_mod.build_mix(Path("unused"), cfg)
    dom = [m for m in mix if m.source.startswith("domains")]
    assert summary["domains"] == 60 and len(dom) == 60 and summary["total"] == len(mix0) + 60
    # The rest of the mix is unchanged (the domain sentences have their own RNG).
    key = lambda m: (tuple(m.words), tuple(m.remove), m.source)  # noqa: E731
    assert sorted(map(key, mix0)) == sorted(key(m) for m in mix if not m.source.startswith("domains"))
    # Fluent domain sentences come from the training side only.
    train_side = set(domain_texts(cfg.seed)[0])
    fluent = [" ".join(m.words) for m in dom if m.source == "domains:fluent"]
    assert fluent and all(t in train_side for t in fluent)
    assert train_mod.item_prefixes(dom[0], train_mod.TrainConfig(prefixes=4, disflqa_prefixes=6)) == 4


@pytest.mark.parametrize(("args", "check"), [
    (["--domains", "7"], lambda cfg: cfg.domain_count == 7),
    (["--household", "9", "--household-fluent-share", "0.3"],
     lambda cfg: cfg.household_count == 9 and cfg.household_fluent_share == 0.3),
])
def test_train_cli_passes_the_data_options(monkeypatch, tmp_path: Path, args, check) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from training.disfluency.commands import train_main

    seen = {}

    def fake_train(shared, out, work, cfg, log=print):
        seen["cfg"] = cfg
        out.mkdir(parents=True, exist_ok=True)
        return {"encoder_layers": 3}

    monkeypatch.setattr(train_mod, "train", fake_train)
    monkeypatch.setattr(train_mod, "write_manifest", lambda d, names: None)
    out, work = tmp_path / "m" / "1", tmp_path / "w"
    work.mkdir()
    assert train_main([*args, "--out", str(out), "--work-dir", str(work)]) == 0
    assert check(seen["cfg"])
    # old recipes reproduce: the options are off by default
    assert train_mod.TrainConfig().domain_count == 0 and train_mod.TrainConfig().household_count == 0


@pytest.mark.skipif(
    not (load_settings().shared_dir / "data" / "snips-train").is_dir(), reason="SNIPS data not present"
)
def test_write_sets_adds_held_out_domain_sets(tmp_path: Path, capsys) -> None:
    from training.disfluency.commands import eval_main

    assert eval_main(["--write-sets", str(tmp_path)]) == 0
    rows = [json.loads(line) for line in (tmp_path / "domains_fluent.jsonl").read_text().splitlines()]
    texts = [" ".join(r["tokens"]) for r in rows]
    assert len(texts) > 200 and len(set(texts)) == len(texts)
    assert not any(any(r["remove"]) for r in rows)
    assert not set(texts) & set(domain_texts(13)[0])  # disjoint from the training pool
    disfluent = [json.loads(line) for line in (tmp_path / "domains_disfluent.jsonl").read_text().splitlines()]
    assert len(disfluent) == len(rows) and all(any(r["remove"]) for r in disfluent[:50])
    capsys.readouterr()
    assert eval_main(["--data", str(tmp_path / "domains_fluent.jsonl"), "--tagger", "rules", "--json",
                      "--policies", "none"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["labelled"]["utterances"] == len(rows) and "removed_rate" in report["labelled"]


@needs_model
@pytest.mark.parametrize("text", COFFEE_ORDERS)
def test_shipped_tagger_keeps_fluent_coffee_orders(text: str) -> None:
    from services.disfluency.bert import BertTagger

    tagged = BertTagger(MODEL_DIR).tag(text.split())
    assert [t.word for t in tagged if t.remove] == []
