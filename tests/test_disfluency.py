"""The disfluency stage: rule fallback, shipped BERT tagger, streaming contract, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.errors import InvalidInput, ModelFileError
from assistant.settings import REPO_ROOT, load_settings
from services.disfluency import load_tagger
from services.disfluency.base import clean_text
from services.disfluency.rules import RuleTagger
from services.disfluency.streaming import LookaheadSession, NoWaitSession, simulate, streaming_scores
from services.disfluency.training.align import align_pair, lcs_keep_mask
from tests.conftest import DISFLUENCY_MODEL_DIR as MODEL_DIR
from tests.conftest import needs_disfluency_model as needs_model

FLUENT_COMMANDS = [
    "set an alarm for seven",
    "what's the weather in paris",
    "turn on the kitchen lights",
    "can i get a large latte",
    "play some jazz in the living room",
    "remind me to buy milk tomorrow",
    "set a timer for ten minutes",
    "call mom",
]


def words(text: str) -> list[str]:
    return text.split()


@pytest.fixture(scope="module")
def bert():
    from services.disfluency.bert import BertTagger

    return BertTagger(MODEL_DIR)


# -- rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("set an alarm for uh for seven no sorry eight thirty", "set an alarm for eight thirty"),
        ("um can i get a large latte", "can i get a large latte"),
        ("turn on the the kitchen lights", "turn on the kitchen lights"),
        ("play jazz play jazz", "play jazz"),
        ("set a timer for ten no twelve minutes", "set a timer for twelve minutes"),
        ("can i get a large latte i mean a small latte", "can i get a small latte"),
        ("call mom scratch that call dad", "call dad"),
    ],
)
def test_rule_tagger_removes_disfluencies(text: str, clean: str) -> None:
    assert clean_text(RuleTagger().tag(words(text))) == clean


@pytest.mark.parametrize(
    "text", [*FLUENT_COMMANDS, "there is no milk", "no thanks", "sorry", "i had had enough", "bye bye"]
)
def test_rule_tagger_leaves_fluent_text_alone(text: str) -> None:
    tagged = RuleTagger().tag(words(text))
    assert not any(t.remove for t in tagged)


def test_rule_tagger_kinds_and_original_words() -> None:
    tagged = RuleTagger().tag(words("Set an alarm for UH seven no sorry eight"))
    assert [t.word for t in tagged][0] == "Set"  # words come back as given
    kinds = {t.word: t.kind for t in tagged if t.remove}
    assert kinds == {"UH": "filler", "seven": "repair", "no": "interregnum", "sorry": "interregnum"}


def test_load_tagger_rules_and_auto_fallback(tmp_path: Path) -> None:
    assert load_tagger(load_settings(overrides={"disfluency": "rules"})).name == "rules"
    auto = load_tagger(load_settings(overrides={"disfluency": "auto", "models_dir": str(tmp_path)}))
    assert auto.name == "rules"
    with pytest.raises(ModelFileError):
        load_tagger(load_settings(overrides={"disfluency": "bert", "models_dir": str(tmp_path)}))


# -- aligner ----------------------------------------------------------------


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


# -- streaming contract -----------------------------------------------------


def _check_stream(tagger, text: str) -> None:
    ws = words(text)
    session = tagger.stream()
    previous: list = []
    for t in range(1, len(ws) + 1):
        out = session.update(ws[:t])
        assert len(out) <= t
        assert out[: len(previous)] == previous, "a committed label changed"
        assert [tok.word for tok in out] == ws[: len(out)]
        previous = out
    final = session.finish(ws)
    assert final == tagger.tag(ws)  # the final transcript gets full-context labels


@pytest.mark.parametrize(
    "text",
    [
        "set an alarm for uh for seven no sorry eight thirty",
        "turn on the the kitchen lights",
        "what's the what time is it in tokyo",
        *FLUENT_COMMANDS[:3],
    ],
)
def test_rule_stream_commits_monotonically(text: str) -> None:
    _check_stream(RuleTagger(), text)


def test_stream_restarts_commitment_when_the_prefix_is_rewritten() -> None:
    session = LookaheadSession(RuleTagger(), 1)
    assert [t.word for t in session.update(words("set an alarm for"))] == ["set", "an", "alarm"]
    out = session.update(words("set a alarm for seven"))  # ASR changed "an" to "a"
    assert [t.word for t in out] == ["set", "a", "alarm", "for"]


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


# -- the wait policy (scripted scores, no model) ------------------------------


class ScriptedScorer:
    """Scores scripted per prefix length: one ``(label_id, wait_prob)`` per word (label 0 = keep)."""

    def __init__(self, script: dict[int, list[tuple[int, float]]]) -> None:
        self.script = script

    def scores(self, ws):
        from services.disfluency.bert import WordScores

        rows = self.script[len(ws)]
        labels = np.array([label for label, _ in rows], dtype=np.int64)
        return WordScores(labels, (labels == 0).astype(float), np.array([w for _, w in rows]))

    def token(self, word: str, label_id: int):
        from services.disfluency.base import TaggedToken

        return TaggedToken(word, label_id != 0, "repair" if label_id else None)

    def tag(self, ws):
        return [self.token(w, label) for w, (label, _) in zip(ws, self.script[len(ws)], strict=True)]


def _wait_session(script, threshold=0.1, max_wait=6, **kw):
    from services.disfluency.bert import WaitSession

    return WaitSession(ScriptedScorer(script), threshold, max_wait, **kw)


def _committed(session, ws) -> list[int]:
    """How many words were committed after each word arrived."""
    return [len(session.update(ws[:t])) for t in range(1, len(ws) + 1)]


# "set seven no eight": "seven" is ambiguous when it arrives (kept, wait 0.4);
# once "no" arrives the model removes "seven no" and trusts the rest.
REPAIR = {
    1: [(0, 0.01)],
    2: [(0, 0.01), (0, 0.40)],
    3: [(0, 0.01), (3, 0.90), (5, 0.95)],
    4: [(0, 0.01), (3, 0.50), (5, 0.60), (0, 0.02)],
}


def test_wait_policy_commits_confident_words_at_once_and_waits_on_an_ambiguous_one() -> None:
    ws = words("set seven no eight")
    session = _wait_session(REPAIR)
    # "set" at once; "seven" waits (0.4 >= 0.1); at "no" both are removed -> committed at once.
    assert _committed(session, ws) == [1, 1, 3, 4]
    out = session.update(ws)
    assert [t.remove for t in out] == [False, True, True, False]


def test_wait_head_only_policy_does_not_commit_removed_words_the_wait_head_distrusts() -> None:
    ws = words("set seven no eight")
    session = _wait_session(REPAIR, commit_removed=False)
    # Chen et al.'s rule: "seven" (wait 0.9, then 0.5) blocks everything until finish.
    assert _committed(session, ws) == [1, 1, 1, 1]
    assert [t.remove for t in session.finish(ws)] == [False, True, True, False]


def test_wait_policy_blocks_later_words_behind_a_waiting_one() -> None:
    script = {1: [(0, 0.5)], 2: [(0, 0.5), (0, 0.01)], 3: [(0, 0.05), (0, 0.01), (0, 0.01)]}
    assert _committed(_wait_session(script), words("one two three")) == [0, 0, 3]


def test_wait_policy_commits_after_max_wait_words() -> None:
    script = {t: [(0, 0.9)] * t for t in range(1, 5)}
    assert _committed(_wait_session(script, max_wait=2), words("a b c d")) == [0, 0, 1, 2]


# A Disfl-QA-like start: "what" is uncertain on arrival and stays so (wait
# >= 0.6, kept). "when" is uncertain on arrival (0.1) and trusted once "is"
# follows (0.2); "is" and "it" are certain.
UNCERTAIN_START = {
    1: [(0, 0.30)],
    2: [(0, 0.60), (0, 0.10)],
    3: [(0, 0.60), (0, 0.20), (0, 0.01)],
    4: [(0, 0.60), (0, 0.01), (0, 0.01), (0, 0.01)],
}


def _two_threshold_session(script):
    return _wait_session(script, threshold=0.04, later_threshold=0.5, out_of_order=True)


def test_two_threshold_policy_commits_later_words_while_an_earlier_one_waits() -> None:
    ws = words("what when is it")
    session = _two_threshold_session(UNCERTAIN_START)
    assert session.update(ws[:1]) == []
    assert session.update(ws[:2]) == []  # "when" is the newest word: 0.1 is not below 0.04
    out = session.update(ws[:3])
    # "when" (0.2 < 0.5 with one word after it) and "is" (0.01) are committed; "what" waits.
    assert [t.pending for t in out] == [True, False, False]
    assert [t.word for t in out] == ["what", "when", "is"]
    from services.disfluency.base import clean_text

    assert clean_text(out) == "when is"  # a pending word is not shown
    out = session.update(ws)
    assert [t.pending for t in out] == [True, False, False, False]
    # The shipped in-order policy holds every word behind "what" until finish.
    assert _committed(_wait_session(UNCERTAIN_START, threshold=0.065), ws) == [0, 0, 0, 0]
    trace = simulate(_two_threshold_session(UNCERTAIN_START), ws)
    assert trace.first_time == [4, 3, 3, 4]
    assert trace.edits == len(ws)  # "what" shown once (by finish), nothing shown twice
    old = streaming_scores(lambda: _wait_session(UNCERTAIN_START, threshold=0.065), [ws], [[False] * 4])
    new = streaming_scores(lambda: _two_threshold_session(UNCERTAIN_START), [ws], [[False] * 4])
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
    old = simulate(_wait_session(script, threshold=0.065), ws)
    new = simulate(_two_threshold_session(script), ws)
    assert old.first_label == [False, False, True] and old.edits == 4  # "seven" kept, then removed
    assert new.first_label == [False, True, True] and new.edits == 3


def test_out_of_order_commitment_restarts_when_a_committed_word_changes() -> None:
    session = _two_threshold_session(UNCERTAIN_START)
    session.update(words("what when is"))
    # An ASR rewrite of "when" drops its committed label; "then" is decided afresh
    # (the newest word, wait 0.1: not yet), and the pending "what" is not shown.
    assert session.update(words("what then")) == []
    assert [t.word for t in session.update(words("what then is"))] == ["what", "then", "is"]


def test_finish_revises_a_committed_label_and_the_edit_overhead_counts_it() -> None:
    # "book seven" is trusted and committed as kept; the final transcript removes "seven".
    script = {
        1: [(0, 0.01)],
        2: [(0, 0.01), (0, 0.02)],
        3: [(0, 0.01), (3, 0.02), (5, 0.02)],
        4: [(0, 0.01), (3, 0.01), (5, 0.01), (0, 0.01)],
    }
    ws = words("book seven no eight")
    session = _wait_session(script)
    assert _committed(session, ws) == [1, 2, 3, 4]
    assert [t.remove for t in session.update(ws)][1] is False  # committed labels do not change
    trace = simulate(_wait_session(script), ws)
    assert trace.first_label == [False, False, True, False]
    assert trace.final_label == [False, True, True, False]
    assert trace.edits == len(ws) + 1  # one unnecessary edit: "seven" kept -> removed at finish
    scores = streaming_scores(lambda: _wait_session(script), [ws], [[False, True, True, False]])
    assert scores.edit_overhead == pytest.approx(1 / 5)
    assert scores.average_wait == 0.0
    # "seven" (arrived at 2) is shown removed only by finish (at 4); "no" at once.
    assert scores.time_to_detection == pytest.approx((4 - 2 + 3 - 3) / 2)


# -- BERT tagger ------------------------------------------------------------


@needs_model
@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("set an alarm for uh for seven no sorry eight thirty", "set an alarm for eight thirty"),
        ("um can i get a large latte", "can i get a large latte"),
        ("turn on the the kitchen lights", "turn on the kitchen lights"),
    ],
)
def test_bert_removes_disfluencies(bert, text: str, clean: str) -> None:
    assert clean_text(bert.tag(words(text))) == clean


@needs_model
@pytest.mark.parametrize("text", FLUENT_COMMANDS)
def test_bert_leaves_fluent_commands_alone(bert, text: str) -> None:
    assert not any(t.remove for t in bert.tag(words(text)))


@needs_model
@pytest.mark.parametrize(
    "text",
    [
        "set an alarm for uh for seven no sorry eight thirty",
        "um can i get a medium no a large cappuccino with oat milk",
        "what do petrologists no what do unstable isotope studies indicate",
        *FLUENT_COMMANDS[:3],
    ],
)
def test_bert_stream_commits_monotonically(bert, text: str) -> None:
    _check_stream(bert, text)


@needs_model
def test_bert_stream_finish_matches_tag(bert) -> None:
    ws = words("set an alarm for uh for seven no sorry eight thirty")
    session = bert.stream()
    for t in range(1, len(ws) + 1):
        session.update(ws[:t])
    assert clean_text(session.finish(ws)) == "set an alarm for eight thirty"


@needs_model
def test_bert_empty_and_long_input(bert) -> None:
    assert bert.tag([]) == []
    long = words("turn on the kitchen lights and") * 40  # 240 words: several windows
    assert len(bert.tag(long)) == len(long)


@needs_model
def test_sha256_mismatch_is_a_model_file_error(tmp_path: Path) -> None:
    from services.disfluency.bert import BertTagger

    copy = tmp_path / "1"
    shutil.copytree(MODEL_DIR, copy)
    with (copy / "labels.json").open("a") as fh:
        fh.write(" ")
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        BertTagger(copy)
    (copy / "SHA256SUMS").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        BertTagger(copy)


# -- commands ---------------------------------------------------------------


@needs_model
def test_clean_json_subprocess() -> None:
    lines = "set an alarm for uh for seven no sorry eight thirty\nTurn on the kitchen lights\n\n"
    proc = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "clean", "--json"],
        input=lines,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=True,
    )
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 3
    first = records[0]
    assert first["tokens"] == words("set an alarm for uh for seven no sorry eight thirty")
    assert len(first["remove"]) == len(first["tokens"])
    assert first["clean"] == "set an alarm for eight thirty"
    assert records[1] == {
        "tokens": ["Turn", "on", "the", "kitchen", "lights"],
        "remove": [False] * 5,
        "clean": "Turn on the kitchen lights",
    }
    assert records[2] == {"tokens": [], "remove": [], "clean": ""}


def test_clean_plain_text_with_rules(monkeypatch, capsys) -> None:
    from assistant.cli import main

    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("um call mom\n"))
    assert main(["clean", "--tagger", "rules"]) == 0
    assert capsys.readouterr().out == "call mom\n"


def test_eval_command_on_a_tiny_file(tmp_path: Path, capsys) -> None:
    from services.disfluency.commands import eval_main

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
    from services.disfluency.commands import eval_main

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
    from services.disfluency.commands import eval_main

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

    from services.disfluency.training.train import TrainConfig, prefix_cuts, prefix_targets

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
    from services.disfluency.training.align import Labelled
    from services.disfluency.training.train import TrainConfig, item_prefixes, label_wait_targets

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

    from services.disfluency.training.align import Labelled
    from services.disfluency.training.train import predict_removed

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
    from services.disfluency.training.train import write_manifest

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


def test_triton_client_restores_pending_words() -> None:
    from services.disfluency.base import PENDING_KIND, TaggedToken
    from services.disfluency.triton_client import _tokens
    from services.serving import tensors as T

    class Result:
        arrays = {
            T.TAGGED_WORDS: np.array([b"for", b"seven", b"eight"], dtype=object),
            T.REMOVE: np.array([False, False, False]),
            T.KIND: np.array([b"", PENDING_KIND.encode(), b""], dtype=object),
        }

        def as_numpy(self, name):
            return self.arrays[name]

    assert _tokens(Result()) == [
        TaggedToken("for", False),
        TaggedToken("seven", False, None, pending=True),
        TaggedToken("eight", False),
    ]


def test_repetition_backstop_rule() -> None:
    from services.disfluency.rules import repetition_indices

    ws = words("can i can i get the uh the latte had had")
    skip = [w == "uh" for w in ws]
    assert repetition_indices(ws, skip) == [0, 1, 5]


@needs_model
def test_auto_uses_the_shipped_model() -> None:
    settings = load_settings(overrides={"disfluency": "auto", "models_dir": str(REPO_ROOT / "models")})
    tagger = load_tagger(settings)
    assert tagger.name == "bert"
    assert load_tagger(settings) is tagger  # cached: one session per process
