"""Real household requests for the NLU (issue 26): the fixed tune/report split, the intent each
tune request is trained as, intent-only examples in the slot loss, and the household scorer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main
from core.errors import InvalidInput
from core.types import OUT_OF_SCOPE, NluResult
from domains import Example
from training.nlu.household import household_examples, intent_for
from training.nlu.household_eval import score_household
from training.slurp import FITTING, REPORT, TUNE, Request, load_slurp, part_of, requests, scored


def test_the_split_is_a_hash_of_the_id_not_of_the_order(tmp_path: Path) -> None:
    rows = [{"slurp_id": i, "sentence": f"add item {i} to my list", "intent": "lists_createoradd",
             "scenario": "lists"} for i in range(200)]
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("\n".join(json.dumps(r) for r in rows))
    b.write_text("\n".join(json.dumps(r) for r in reversed(rows)))
    parts_a = {r.key: r.part for r in load_slurp(a)}
    parts_b = {r.key: r.part for r in load_slurp(b)}
    assert parts_a == parts_b
    assert 70 < sum(p == TUNE for p in parts_a.values()) < 130  # about half
    assert part_of("slurp:1") in (TUNE, REPORT)


def test_a_broken_slurp_line_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "devel.jsonl"
    bad.write_text('{"slurp_id": 1, "sentence": "hi", "intent": "general_greet", "scenario": "general"}\n{"oops": 1}\n')
    with pytest.raises(InvalidInput, match="devel.jsonl:2: not a SLURP record"):
        load_slurp(bad)


def req(text: str, intent: str) -> Request:
    return Request(text, "slurp", "1", intent, intent.split("_")[0], FITTING.get(intent, ()))


@pytest.mark.parametrize(("text", "intent", "expected"), [
    ("remind me to call mom at five", "calendar_set", "SetReminder"),
    ("add a meeting with tom tomorrow", "calendar_set", "AddEvent"),
    ("create a new list for me please", "lists_createoradd", "CreateList"),
    ("add milk to my grocery list", "lists_createoradd", "AddToList"),
    ("cross out bread from shopping list", "lists_remove", "RemoveFromList"),
    ("remove the santana music list", "lists_remove", "DeleteList"),
    ("what time is it in tokyo", "datetime_query", "GetTime"),
    ("what day is christmas", "datetime_query", "GetDate"),
    ("make the lights red", "iot_hue_lightchange", "SetDeviceColor"),
    ("mute the speaker please", "audio_volume_mute", "SetVolume"),
])
def test_each_tune_request_is_trained_as_one_of_its_fitting_intents(text: str, intent: str, expected: str) -> None:
    assert intent_for(req(text, intent)) == expected
    assert expected in FITTING[intent]


def test_the_report_part_never_reaches_training(shared_dir: Path) -> None:
    examples, counts = household_examples(shared_dir)
    report_texts = {r.text for r in requests(shared_dir, REPORT)} - {r.text for r in requests(shared_dir, TUNE)}
    assert counts.household > 400 and counts.out_of_scope > 400
    assert not report_texts & {e.text for e in examples}
    assert all(not e.slots_known for e in examples if e.intent != OUT_OF_SCOPE)
    assert all(e.slots_known and not e.spans for e in examples if e.intent == OUT_OF_SCOPE)


def test_intent_only_rows_add_nothing_to_the_crf_loss() -> None:
    torch = pytest.importorskip("torch")
    from training.nlu.train import crf_nll

    g = torch.Generator().manual_seed(0)
    em = torch.randn(3, 4, 5, generator=g)
    tags = torch.randint(0, 5, (3, 4), generator=g)
    mask = torch.ones(3, 4, dtype=torch.bool)
    start, trans = torch.zeros(5), torch.zeros(5, 5)
    full = crf_nll(em, tags, mask, start, trans)
    rows = torch.tensor([1.0, 0.0, 1.0])
    part = crf_nll(em, tags, mask, start, trans, rows=rows)
    alone = crf_nll(em[[0, 2]], tags[[0, 2]], mask[[0, 2]], start, trans)
    assert torch.isclose(part, alone) and part < full


def test_the_scorer_counts_fitting_intents_and_declines() -> None:
    rows = [
        req("remind me to call mom", "calendar_set"),
        req("add a meeting tomorrow", "calendar_set"),
        req("turn the volume up", "audio_volume_up"),
        Request("how much is a share of apple", "clinc", "7", "oos", "oos"),
        Request("any news today", "slurp", "9", "news_query", "news"),
        Request("tell me a joke", "slurp", "10", "general_joke", "general"),  # neither: not scored
    ]
    rows = scored(rows)
    assert len(rows) == 5
    preds = [NluResult(i, 0.9) for i in ("AddEvent", OUT_OF_SCOPE, "SetDeviceLevel", OUT_OF_SCOPE, "GetWeather")]
    m = score_household(rows, preds, keep_errors=5)
    assert m["scenarios"]["calendar/reminders"] == {"understood": 0.5, "n": 2}
    assert m["scenarios"]["audio volume"] == {"understood": 0.0, "n": 1}
    assert m["household"]["n"] == 3 and m["household"]["declined"] == round(1 / 3, 4)
    assert m["out_of_scope"]["declined"] == 0.5 and m["out_of_scope"]["clinc150"]["declined"] == 1.0
    assert m["out_of_scope_taken_as"] == {"GetWeather": 1}
    assert {e["text"] for e in m["errors"]} == {"add a meeting tomorrow", "turn the volume up", "any news today"}


def test_eval_nlu_slurp_prints_the_household_table(shared_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "nlu", "--format", "slurp", "--part", "report", "--backend", "keywords", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["part"] == "report" and out["backend"] == "keywords"
    assert set(out["scenarios"]) == {"alarm", "audio volume", "calendar/reminders", "date/time", "lights",
                                     "plugs", "lists", "music playback", "weather"}
    assert 400 < out["household"]["n"] < 500 and out["out_of_scope"]["n"] > 400


def test_examples_keep_slots_known_through_augmentation() -> None:
    import random

    from training.nlu.data import augment

    ex = Example("AddToList", ("add", "milk", "to", "the", "list"), (), "slurp:1", 0, slots_known=False)
    assert all(not augment(ex, random.Random(i)).slots_known for i in range(20))
