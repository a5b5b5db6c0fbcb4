"""The disfluency stage: rule fallback, shipped BERT tagger, streaming contract, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelFileError
from core.settings import REPO_ROOT, load_settings
from core.types import clean_text
from services.disfluency import load_tagger
from services.disfluency.rules import RuleTagger
from services.disfluency.streaming import LookaheadSession
from tests.conftest import DISFLUENCY_MODEL_DIR as MODEL_DIR
from tests.conftest import needs_disfluency_model as needs_model
from tests.services.disfluency.scripted import (
    UNCERTAIN_START,
    committed,
    two_threshold_session,
    wait_session,
    words,
)

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


# -- the wait policy (scripted scores, no model) ------------------------------


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
    session = wait_session(REPAIR)
    # "set" at once; "seven" waits (0.4 >= 0.1); at "no" both are removed -> committed at once.
    assert committed(session, ws) == [1, 1, 3, 4]
    out = session.update(ws)
    assert [t.remove for t in out] == [False, True, True, False]


def test_wait_head_only_policy_does_not_commit_removed_words_the_wait_head_distrusts() -> None:
    ws = words("set seven no eight")
    session = wait_session(REPAIR, commit_removed=False)
    # Chen et al.'s rule: "seven" (wait 0.9, then 0.5) blocks everything until finish.
    assert committed(session, ws) == [1, 1, 1, 1]
    assert [t.remove for t in session.finish(ws)] == [False, True, True, False]


def test_wait_policy_blocks_later_words_behind_a_waiting_one() -> None:
    script = {1: [(0, 0.5)], 2: [(0, 0.5), (0, 0.01)], 3: [(0, 0.05), (0, 0.01), (0, 0.01)]}
    assert committed(wait_session(script), words("one two three")) == [0, 0, 3]


def test_wait_policy_commits_after_max_wait_words() -> None:
    script = {t: [(0, 0.9)] * t for t in range(1, 5)}
    assert committed(wait_session(script, max_wait=2), words("a b c d")) == [0, 0, 1, 2]


def test_out_of_order_commitment_restarts_when_a_committed_word_changes() -> None:
    session = two_threshold_session(UNCERTAIN_START)
    session.update(words("what when is"))
    # An ASR rewrite of "when" drops its committed label; "then" is decided afresh
    # (the newest word, wait 0.1: not yet), and the pending "what" is not shown.
    assert session.update(words("what then")) == []
    assert [t.word for t in session.update(words("what then is"))] == ["what", "then", "is"]


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


def test_triton_client_restores_pending_words() -> None:
    from core.types import PENDING_KIND, TaggedToken
    from services import triton_tensors as T
    from services.disfluency.triton_client import _tokens

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
