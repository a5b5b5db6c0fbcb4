"""NLU: keyword baseline, normalization, the shipped INT8 model, CLI commands, model file checks."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import pytest

from assistant.cli import main
from core.errors import ModelFileError
from core.numbers import parse_number
from core.settings import REPO_ROOT, load_settings
from core.text import normalize_text
from core.types import OUT_OF_SCOPE, NluHints
from domains import load_domains
from domains.normalize import (
    duration_seconds,
    normalize_date,
    normalize_duration,
    normalize_slot,
    normalize_time,
)
from services.nlu import load_nlu
from services.nlu.bert import verify_manifest
from services.nlu.keywords import KeywordNlu

MODEL_DIR = REPO_ROOT / "models" / "nlu" / "1"
COFFEE = "can i get a large double shot latte with some soy milk"


def _slots(result) -> dict[str, str]:  # noqa: ANN001
    return result.slot_dict()


# --------------------------------------------------------------------------- text + normalization


def test_clean_text_matches_asr_output() -> None:
    assert normalize_text("Can I get a Large, double-shot latte?!") == "can i get a large double shot latte"
    assert normalize_text("What's the time — 'now'?") == "what's the time now"


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
    result = KeywordNlu(load_domains()).parse(text)
    assert result.intent == intent
    assert _slots(result) == slots


def test_keyword_baseline_normalizes() -> None:
    nlu = KeywordNlu(load_domains())
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

    return JointBertNlu(MODEL_DIR, load_domains())


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


def test_an_add_on_after_a_pause_answers_the_open_order(bert) -> None:  # noqa: ANN001
    """"with some almond milk" after "what size?" (a real order cut by a pause, barista-dev tune half)
    adds to the order; a request with no value of the order is not pulled into it."""
    asking = NluHints(active_intent="orderDrink", expected_slot="size")
    add_on = bert.parse("with some almond milk", asking)
    assert add_on.intent == "orderDrink" and _slots(add_on) == {"milkAmount": "some almond milk"}
    two = bert.parse("with whole milk and sweetener", asking)
    assert two.intent == "orderDrink" and set(_slots(two)) == {"milkAmount", "sugarAmount"}
    assert bert.parse("turn on the lights and the fan", asking).intent != "orderDrink"  # no coffee values at all


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


def test_bench_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "nlu", "--rounds", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["backend"] == "bert" and result["utterances"] > 10


# --------------------------------------------------------------------------- CRF and the exported graph


def test_shipped_model_is_fused_and_decodes_with_its_crf(bert) -> None:  # noqa: ANN001
    from services.nlu.bert import JointBertNlu

    # onnxruntime's BERT fusions (one quantized attention kernel per layer), not ~850 small nodes.
    assert (MODEL_DIR / "model.onnx").read_bytes().count(b"QAttention") >= 6
    assert bert.meta["decoding"] == "crf" and bert.meta["train"]["crf"] is True
    learned = [[x for x in row if x > -1e3] for row in bert.meta["transition_logprob"]]
    assert any(abs(x) > 0.05 for row in learned for x in row)  # transitions were learned, not left at 0
    # By default a CRF model decodes with its transitions at weight 1; weight 0 keeps only the hard constraints.
    assert bert._trans.max() == pytest.approx(max(max(r) for r in learned))
    plain = JointBertNlu(MODEL_DIR, load_domains(), transition_weight=0.0)
    assert set(plain._trans.ravel().tolist()) <= {0.0, -1e4}


def test_joint_decoding_maximizes_intent_plus_path_score(bert) -> None:  # noqa: ANN001
    """The joint decoder's choice is the argmax of log p(intent) + the constrained path score."""
    import numpy as np

    from services.nlu.bert import JointBertNlu, _softmax

    joint = JointBertNlu(MODEL_DIR, load_domains(), joint_decoding=True)
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


def test_train_nlu_refuses_zero_epochs_without_a_checkpoint(capsys) -> None:  # noqa: ANN001
    """--epochs 0 only exports --init-from checkpoints; without them it is a clear error, not an untrained model."""
    assert main(["train", "nlu", "--epochs", "0"]) == 1
    assert "--epochs must be at least 1" in capsys.readouterr().err
    assert main(["train", "nlu", "--init-from", "no/such/ck.pt"]) == 1
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["train", "nlu", "--swap-titles", "30"]) == 1  # a percentage where a share belongs
    assert "--swap-titles must be a share between 0 and 1, got 30.0" in capsys.readouterr().err


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


def test_train_nlu_base_and_base_flag_refuse_bad_input(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Clear one-line errors, before any data is read or weights are loaded."""
    assert main(["train", "nlu", "--base", str(tmp_path / "nowhere")]) == 1
    assert "not a BERT folder" in capsys.readouterr().err
    assert main(["train", "nlu-base", "--out", str(tmp_path / "b"), "--mask-prob", "2"]) == 1
    assert "--mask-prob must be a share between 0 and 1" in capsys.readouterr().err
    assert main(["train", "nlu-base", "--out", str(tmp_path / "b"), "--epochs", "0"]) == 1
    assert "--epochs must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


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




@pytest.mark.parametrize(("text", "intent", "slots"), [
    ("add milk and eggs to my shopping list", "AddToList", {"item": "milk and eggs", "listName": "shopping"}),
    ("remove bread from the grocery list", "RemoveFromList", {"item": "bread", "listName": "grocery"}),
    ("what's on my to do list", "ReadList", {"listName": "to do"}),
    ("delete my packing list", "DeleteList", {"listName": "packing"}),
    ("remind me to water the plants at five", "SetReminder", {"task": "water the plants", "time": "at five"}),
    ("what's on my calendar for friday", "QueryCalendar", {"date": "friday"}),
    ("turn the volume up", "SetVolume", {"volumeChange": "up"}),
    ("stop the music", "MediaControl", {"mediaCommand": "stop"}),
    ("how much is a medium cappuccino", "askPrice", {"size": "medium", "coffeeDrink": "cappuccino"}),
    ("set the living room lights to red", "SetDeviceColor", {"room": "living room", "color": "red"}),
    ("do i have any alarms set", "QueryAlarms", {}),
    ("set a timer for five minutes", "SetTimer", {"duration": "five minutes"}),  # the old rules still answer first
])
def test_the_keyword_fallback_knows_the_household_requests(text: str, intent: str, slots: dict[str, str]) -> None:
    from domains import load_domains

    r = KeywordNlu(load_domains()).parse(text)
    assert r.intent == intent, r
    got = r.slot_dict()
    assert all(got.get(k) == v for k, v in slots.items()), got
