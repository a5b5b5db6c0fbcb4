"""Real household requests (SLURP devel) as disfluency-tagger text (issue 26): the sets, the
training items, ``--household`` and the torch weights recovered from the shipped ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.settings import load_settings
from tests.conftest import DISFLUENCY_MODEL_DIR as MODEL_DIR
from tests.conftest import needs_disfluency_model as needs_model
from training.disfluency import household
from training.disfluency import train as train_mod
from training.disfluency.align import Labelled

TEXTS = [
    "olly set an alarm for seven am",
    "hey google add milk to my shopping list",
    "turn the volume down",
    "what's on my calendar for friday",
    "remind me to water the plants at five",
]


def _kept(item: Labelled) -> str:
    return " ".join(w for w, r in zip(item.words, item.remove, strict=True) if not r)


def test_disfluent_variants_clean_back_to_the_request_and_keep_wake_words() -> None:
    out = household.household_disfluent(TEXTS, 13, "report", groups=[])
    assert [_kept(it) for it in out] == TEXTS  # labels by construction: removing them gives the request
    assert all(any(it.remove) for it in out) and all(it.source == "household" for it in out)
    assert out[0].words[0] == "olly" and not out[0].remove[0]
    again = household.household_disfluent(TEXTS, 13, "report", groups=[])
    assert [it.words for it in again] == [it.words for it in out]  # seeded
    tune = household.household_disfluent(TEXTS, 13, "tune", groups=[])
    assert [it.words for it in tune] != [it.words for it in out]  # one RNG stream per part


def test_wake_words_are_set_aside_and_kept_in_front() -> None:
    assert household.split_wake("hey google add milk") == (["hey", "google"], ["add", "milk"])
    assert household.split_wake("olly") == ([], ["olly"])  # a wake word alone is the request
    out = household.household_disfluent(["olly turn the volume down"] * 30, 1, "tune", groups=[])
    assert all(it.words[0] == "olly" and not it.remove[0] for it in out)
    assert all("olly" not in it.words[1:] for it in out)  # never inside a restart or repetition


def test_training_items_come_from_the_tune_part_only(monkeypatch) -> None:
    parts = []

    def fake_texts(shared, part):
        parts.append(part)
        return list(TEXTS)

    monkeypatch.setattr(household, "household_texts", fake_texts)
    items = household.household_training(Path("unused"), 13, 200, 0.5)
    assert parts == ["tune"] and len(items) == 200
    fluent = [it for it in items if not any(it.remove)]
    assert 60 < len(fluent) < 140  # about half left fluent
    firsts = {w.split()[0] for w in household.WAKE_WORDS}
    # Every item cleans back to a request, some with a wake word in front (a fluent word).
    woken = 0
    for it in items:
        kept = _kept(it)
        if kept in TEXTS:
            continue
        wake = next(w for w in household.WAKE_WORDS if kept.startswith(w + " ") and kept[len(w) + 1 :] in TEXTS)
        assert wake.split()[0] in firsts
        woken += 1
    assert 10 < woken < 60  # WAKE_SHARE 0.15 of 200, not on "olly …" / "hey google …"
    assert household.household_training(Path("unused"), 13, 0, 0.5) == []


def test_build_mix_household_flag(monkeypatch) -> None:
    disflqa = [Labelled(["what", "uh", "is", "it"], [False, True, False, False], [None, "filler", None, None], "q1")]
    monkeypatch.setattr(train_mod, "load_disflqa", lambda path: (list(disflqa), {"pairs": 1}))
    snips = [f"play song number {i}" for i in range(40)]
    monkeypatch.setattr(train_mod, "snips_split", lambda shared, seed: (snips, []))
    monkeypatch.setattr(household, "household_texts", lambda shared, part: list(TEXTS))
    base = train_mod.TrainConfig(snips_count=10, snips_fluent_count=5, command_count=20)
    mix0, summary0 = train_mod.build_mix(Path("unused"), base)
    assert "household" not in summary0
    cfg = train_mod.TrainConfig(snips_count=10, snips_fluent_count=5, command_count=20, household_count=30)
    mix, summary = train_mod.build_mix(Path("unused"), cfg)
    house = [m for m in mix if m.source.startswith("household")]
    assert summary["household"] == 30 == len(house) and summary["total"] == len(mix0) + 30
    key = lambda m: (tuple(m.words), tuple(m.remove), m.source)  # noqa: E731
    assert sorted(map(key, mix0)) == sorted(key(m) for m in mix if not m.source.startswith("household"))
    # Generated text: the command prefix count, not Disfl-QA's.
    assert train_mod.item_prefixes(house[0], train_mod.TrainConfig(prefixes=4, disflqa_prefixes=6)) == 4
    assert train_mod.TrainConfig().household_count == 0  # old recipes reproduce


_SLURP = load_settings().shared_dir / "data"


@pytest.mark.skipif(
    not ((_SLURP / "slurp-devel" / "devel.jsonl").is_file() and (_SLURP / "snips-train").is_dir()
         and (_SLURP / "clinc150-oos").is_dir()),
    reason="SLURP devel / SNIPS / CLINC data not present",
)
def test_write_sets_adds_the_household_sets_of_both_parts(tmp_path: Path) -> None:
    from training.disfluency.commands import eval_main

    assert eval_main(["--write-sets", str(tmp_path)]) == 0
    texts = {}
    for part in ("tune", "report"):
        fluent = [json.loads(line) for line in (tmp_path / f"household_{part}_fluent.jsonl").read_text().splitlines()]
        disfluent = [json.loads(line) for line in (tmp_path / f"household_{part}_disfluent.jsonl").read_text().splitlines()]
        assert len(fluent) > 300 and not any(any(r["remove"]) for r in fluent)
        texts[part] = {" ".join(r["tokens"]) for r in fluent}
        cleaned = [" ".join(w for w, r in zip(d["tokens"], d["remove"], strict=True) if not r) for d in disfluent]
        assert cleaned == [" ".join(r["tokens"]) for r in fluent]
    assert not texts["tune"] & texts["report"]


@needs_model
def test_weights_recovered_from_the_shipped_onnx_reproduce_it() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer

    from training.disfluency.recover import compare_with_onnx, recover_state

    torch.set_num_threads(1)
    base = train_mod.base_model_dir()
    model, report = recover_state(MODEL_DIR / "model_int8.onnx", torch, base)
    assert report["word_embeddings_max_abs_diff_vs_base"] < 0.01  # frozen in training: the base's matrix
    tokenizer = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    sentences = [t.split() for t in TEXTS] + [
        "set an alarm for uh for seven no sorry eight thirty".split(),
        "turn on the the kitchen lights".split(),
    ]
    cmp = compare_with_onnx(model, MODEL_DIR / "model_int8.onnx", torch, tokenizer, sentences)
    assert cmp["same_keep_remove"] > 0.95 and cmp["disfluency_logit_mean_abs_diff"] < 0.2


@needs_model
def test_remove_threshold_reads_one_minus_keep_probability() -> None:
    from services.disfluency.bert import BertTagger

    words = "set an alarm for uh for seven no sorry eight thirty".split()
    plain = BertTagger(MODEL_DIR)
    scores = plain.scores(words)
    default = [t.remove for t in plain.tag(words)]
    # At 0.5 the threshold removes exactly the words whose keep probability is below one half;
    # with six labels that includes every argmax removal.
    half = [t.remove for t in BertTagger(MODEL_DIR, remove_threshold=0.5).tag(words)]
    assert half == [bool(1 - k > 0.5) for k in scores.keep_prob]
    assert all(h for h, d in zip(half, default, strict=True) if d)
    # Above every removal probability nothing is removed (no exact repetition here for the backstop).
    top = float(max(1 - scores.keep_prob))
    assert not any(t.remove for t in BertTagger(MODEL_DIR, remove_threshold=min(top + 1e-6, 1.0)).tag(words))
    assert plain.remove_threshold is None or isinstance(plain.remove_threshold, float)
