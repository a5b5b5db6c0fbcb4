"""Disfluency training and offline evaluation: alignment, wait-head targets, streaming metrics, the eval command (training/disfluency/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.errors import InvalidInput, ModelFileError
from core.types import clean_text
from services.disfluency.rules import RuleTagger
from tests.conftest import DISFLUENCY_MODEL_DIR as MODEL_DIR
from tests.conftest import needs_disfluency_model as needs_model
from tests.services.disfluency.scripted import (
    UNCERTAIN_START,
    committed,
    two_threshold_session,
    wait_session,
    words,
)
from training.disfluency.align import align_pair, lcs_keep_mask
from training.disfluency.streaming_eval import NoWaitSession, simulate, streaming_scores


def test_aligner_keeps_the_later_copy() -> None:
    item, unmatched = align_pair(
        "What do petrologists no what do unstable isotope studies indicate?",
        "What do unstable isotope studies indicate?",
    )
    assert unmatched == 0
    removed = [w for w, r in zip(item.words, item.remove, strict=True) if r]
    assert removed == ["what", "do", "petrologists", "no"]
    assert item.kinds[:4] == ["repair", "repair", "repair", "interregnum"]


def test_aligner_reports_paraphrases_as_unlabelable() -> None:
    keep, unmatched = lcs_keep_mask(words("cells are capable of remembering"), words("cells can remember"))
    assert unmatched == 2
    assert keep[0]


def test_streaming_metrics_on_a_hand_made_case() -> None:
    ws = words("play uh play jazz")
    gold = [[True, True, False, False]]
    no_wait = streaming_scores(lambda: NoWaitSession(RuleTagger()), [ws], gold)
    # "play" is shown kept at t=1 and removed at t=3: one unnecessary edit of five.
    assert no_wait.edit_overhead == pytest.approx(1 / 5)
    assert no_wait.average_wait == 0.0
    waiting = simulate(RuleTagger().stream(), ws)
    assert waiting.final_label == [True, True, False, False]
    assert waiting.edits == len(ws)  # committed labels never change: EO = 0


def test_two_threshold_policy_commits_later_words_while_an_earlier_one_waits() -> None:
    ws = words("what when is it")
    session = two_threshold_session(UNCERTAIN_START)
    assert session.update(ws[:1]) == []
    assert session.update(ws[:2]) == []  # "when" is the newest word: 0.1 is not below 0.04
    out = session.update(ws[:3])
    # "when" (0.2 < 0.5 with one word after it) and "is" (0.01) are committed; "what" waits.
    assert [t.pending for t in out] == [True, False, False]
    assert [t.word for t in out] == ["what", "when", "is"]

    assert clean_text(out) == "when is"  # a pending word is not shown
    out = session.update(ws)
    assert [t.pending for t in out] == [True, False, False, False]
    # The shipped in-order policy holds every word behind "what" until finish.
    assert committed(wait_session(UNCERTAIN_START, threshold=0.065), ws) == [0, 0, 0, 0]
    trace = simulate(two_threshold_session(UNCERTAIN_START), ws)
    assert trace.first_time == [4, 3, 3, 4]
    assert trace.edits == len(ws)  # "what" shown once (by finish), nothing shown twice
    old = streaming_scores(lambda: wait_session(UNCERTAIN_START, threshold=0.065), [ws], [[False] * 4])
    new = streaming_scores(lambda: two_threshold_session(UNCERTAIN_START), [ws], [[False] * 4])
    assert old.average_wait == pytest.approx((3 + 2 + 1 + 0) / 4)
    assert new.average_wait == pytest.approx((3 + 1 + 0 + 0) / 4)
    assert new.edit_overhead == old.edit_overhead == 0.0


def test_two_threshold_policy_is_stricter_on_the_newest_word_than_the_shipped_threshold() -> None:
    # A kept word with wait 0.05 on arrival: the shipped policy (0.065) commits it
    # at once; the two-threshold one waits for the next word, which here shows it removed.
    script = {
        1: [(0, 0.01)],
        2: [(0, 0.01), (0, 0.05)],
        3: [(0, 0.01), (3, 0.90), (5, 0.95)],
    }
    ws = words("book seven no")
    old = simulate(wait_session(script, threshold=0.065), ws)
    new = simulate(two_threshold_session(script), ws)
    assert old.first_label == [False, False, True] and old.edits == 4  # "seven" kept, then removed
    assert new.first_label == [False, True, True] and new.edits == 3


def test_finish_revises_a_committed_label_and_the_edit_overhead_counts_it() -> None:
    # "book seven" is trusted and committed as kept; the final transcript removes "seven".
    script = {
        1: [(0, 0.01)],
        2: [(0, 0.01), (0, 0.02)],
        3: [(0, 0.01), (3, 0.02), (5, 0.02)],
        4: [(0, 0.01), (3, 0.01), (5, 0.01), (0, 0.01)],
    }
    ws = words("book seven no eight")
    session = wait_session(script)
    assert committed(session, ws) == [1, 2, 3, 4]
    assert [t.remove for t in session.update(ws)][1] is False  # committed labels do not change
    trace = simulate(wait_session(script), ws)
    assert trace.first_label == [False, False, True, False]
    assert trace.final_label == [False, True, True, False]
    assert trace.edits == len(ws) + 1  # one unnecessary edit: "seven" kept -> removed at finish
    scores = streaming_scores(lambda: wait_session(script), [ws], [[False, True, True, False]])
    assert scores.edit_overhead == pytest.approx(1 / 5)
    assert scores.average_wait == 0.0
    # "seven" (arrived at 2) is shown removed only by finish (at 4); "no" at once.
    assert scores.time_to_detection == pytest.approx((4 - 2 + 3 - 3) / 2)


def test_eval_command_on_a_tiny_file(tmp_path: Path, capsys) -> None:
    from training.disfluency.commands import eval_main

    data = tmp_path / "tiny.jsonl"
    data.write_text(
        json.dumps({"disfluent": "um call mom", "fluent": "call mom"})
        + "\n"
        + json.dumps({"tokens": "turn on the the lights", "remove": [False, False, True, False, False]})
        + "\n"
        + json.dumps({"tokens": ["call", "mom"], "remove": [False, False]})
        + "\n"
    )
    assert eval_main(["--data", str(data), "--json", "--tagger", "rules"]) == 0
    report = json.loads(capsys.readouterr().out)
    lab = report["labelled"]
    assert lab["utterances"] == 3 and lab["words"] == 10
    assert lab["f1"] == 1.0
    assert set(lab["streaming"]) == {"wait", "no-wait"}
    assert lab["streaming"]["wait"]["edit_overhead"] == 0.0


@needs_model
def test_eval_command_sweeps_wait_thresholds(tmp_path: Path, capsys) -> None:
    from training.disfluency.commands import eval_main

    data = tmp_path / "tiny.jsonl"
    data.write_text(json.dumps({"disfluent": "set an alarm for seven no sorry eight", "fluent": "set an alarm for eight"}))
    argv = [
        "--data", str(data), "--json", "--policies", "wait,wait-two-threshold,wait-head-only", "--wait-threshold", "0.05,0.5"
    ]
    assert eval_main(argv) == 0
    streaming = json.loads(capsys.readouterr().out)["labelled"]["streaming"]
    # The two-threshold policy runs once; the single-threshold policies are swept.
    assert set(streaming) == {
        "wait@0.05", "wait@0.5", "wait-two-threshold", "wait-head-only@0.05", "wait-head-only@0.5"
    }
    # A looser threshold never makes words wait longer.
    assert streaming["wait@0.5"]["average_wait_words"] <= streaming["wait@0.05"]["average_wait_words"]
    # Committing removed words at once never makes words wait longer than the wait head alone.
    assert streaming["wait@0.05"]["average_wait_words"] <= streaming["wait-head-only@0.05"]["average_wait_words"]
    with pytest.raises(InvalidInput, match="wait-threshold"):
        eval_main(["--data", str(data), "--wait-threshold", "0.1,x"])


def test_eval_command_errors(tmp_path: Path) -> None:
    from training.disfluency.commands import eval_main

    with pytest.raises(InvalidInput, match="not found"):
        eval_main(["--data", str(tmp_path / "missing.json")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hello"}\n')
    with pytest.raises(InvalidInput, match="bad.jsonl:1"):
        eval_main(["--data", str(bad), "--tagger", "rules"])
    with pytest.raises(InvalidInput):
        eval_main(["--bogus"])


def test_prefix_cuts_for_the_wait_head() -> None:
    import random

    from training.disfluency.train import TrainConfig, prefix_cuts, prefix_targets

    rng = random.Random(0)
    # Default: proper prefixes only (the full utterance is a separate example).
    assert all(1 <= c < 6 for _ in range(50) for c in prefix_cuts(rng, 6, TrainConfig(prefixes=3)))
    assert prefix_cuts(rng, 1, TrainConfig()) == []
    # Uniform: every length 1..n, as the wait head meets them at run time.
    cuts = {c for _ in range(200) for c in prefix_cuts(rng, 6, TrainConfig(prefixes=2, wait_uniform_prefixes=True))}
    assert cuts == set(range(1, 7))
    assert prefix_cuts(rng, 1, TrainConfig(prefixes=4, wait_uniform_prefixes=True)) == [1]
    item = align_pair("set seven no eight", "set eight")[0]
    disfl, wait = prefix_targets(item, 2)  # "seven" is removed, but its repair has not arrived
    assert wait == [0, 1] and disfl[1] == -100


def test_label_wait_targets_and_disflqa_prefixes() -> None:
    torch = pytest.importorskip("torch")
    from training.disfluency.align import Labelled
    from training.disfluency.train import TrainConfig, item_prefixes, label_wait_targets

    # 4 positions: [CLS], two first pieces, a continuation piece. Word 1 is kept now
    # (argmax 0) but removed in the end; word 2 is removed now and in the end.
    d_logits = torch.tensor([[[5.0, 0, 0, 0, 0, 0], [5.0, 0, 0, 0, 0, 0], [0, 0, 5.0, 0, 0, 0], [5.0, 0, 0, 0, 0, 0]]])
    w_t = torch.tensor([[-100, 0, 0, -100]])
    r_t = torch.tensor([[-100, 1, 1, -100]])
    assert label_wait_targets(torch, d_logits, w_t, r_t).tolist() == [[-100, 1, 0, -100]]
    # The visibility rule's wait 1 stays even when the label is already right.
    assert label_wait_targets(torch, d_logits, torch.tensor([[-100, 0, 1, -100]]), r_t).tolist() == [[-100, 1, 1, -100]]
    # No wait target (e.g. the full utterance with --wait-uniform-prefixes): none added.
    none = torch.full((1, 4), -100)
    assert label_wait_targets(torch, d_logits, none, r_t).tolist() == none.tolist()
    cfg = TrainConfig(prefixes=4, disflqa_prefixes=6)
    assert item_prefixes(Labelled(["a"], [False], [None], "5a8d7f"), cfg) == 6
    assert item_prefixes(Labelled(["a"], [False], [None], "commands:fluent"), cfg) == 4
    assert item_prefixes(Labelled(["a"], [False], [None], "5a8d7f"), TrainConfig(prefixes=4)) == 4


def test_predict_removed_reads_first_sub_words() -> None:
    torch = pytest.importorskip("torch")
    from types import SimpleNamespace

    from training.disfluency.align import Labelled
    from training.disfluency.train import predict_removed

    class Tok:  # word "xx" is two pieces; ids: [CLS]=1, [SEP]=2, words 10 + index
        def encode(self, words, is_pretokenized=True):
            ids, wids = [1], [None]
            for k, w in enumerate(words):
                for _ in range(2 if w == "xx" else 1):
                    ids.append(10 + k)
                    wids.append(k)
            return SimpleNamespace(ids=ids + [2], word_ids=wids + [None])

        def token_to_id(self, name):
            return {"[CLS]": 1, "[SEP]": 2}[name]

    class Model(torch.nn.Module):  # removes every piece whose id is odd
        def forward(self, ids, mask):
            logits = torch.zeros((*ids.shape, 6))
            logits[..., 0] = (ids % 2 == 0).float()
            logits[..., 3] = (ids % 2 == 1).float()
            return logits, torch.zeros(ids.shape)

    items = [Labelled(["a", "xx", "b"], [True, False, False], [None] * 3), Labelled(["c"], [False], [None])]
    # Pieces: a=10 (kept), xx=11,11 (removed), b=12 (kept); c=10 (kept).
    assert predict_removed(torch, Model(), Tok(), items, 1) == [[False, True, False], [False]]


@needs_model
def test_labels_json_can_make_the_two_threshold_policy_the_default(tmp_path: Path) -> None:
    from services.disfluency.bert import BertTagger
    from training.disfluency.train import write_manifest

    copy = tmp_path / "1"
    shutil.copytree(MODEL_DIR, copy)
    meta = json.loads((copy / "labels.json").read_text())
    assert "streaming_policy" not in meta or meta["streaming_policy"] in ("in-order", "two-threshold")
    meta.update({"streaming_policy": "two-threshold", "arrival_threshold": 0.03, "later_threshold": 0.6})
    (copy / "labels.json").write_text(json.dumps(meta))
    write_manifest(copy, ["model_int8.onnx", "tokenizer.json", "labels.json"])
    tagger = BertTagger(copy)
    assert (tagger.arrival_threshold, tagger.later_threshold) == (0.03, 0.6)
    session = tagger.stream()
    assert session._out_of_order and session._threshold == 0.03 and session._later_threshold == 0.6
    in_order = tagger.stream_in_order()
    assert not in_order._out_of_order and in_order._threshold == tagger.wait_threshold
    meta["streaming_policy"] = "sideways"
    (copy / "labels.json").write_text(json.dumps(meta))
    write_manifest(copy, ["model_int8.onnx", "tokenizer.json", "labels.json"])
    with pytest.raises(ModelFileError, match="streaming_policy"):
        BertTagger(copy)
