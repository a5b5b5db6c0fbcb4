"""Domain vocabulary priming (``asr.hint_domains``): the word list, its checks, and its way into the ASR."""

from __future__ import annotations

import dataclasses
import json

import pytest

from assistant.components import Components
from assistant.pipeline import Conversation
from assistant.turn_result import run_audio
from core.audio import load_audio
from core.errors import InvalidInput
from domains import load_domains
from services.asr.hints import vocabulary_hint_words
from tests.assistant.test_pipeline import RecordingAsr, run
from tests.conftest import utterance


def test_vocabulary_covers_every_categorical_word_within_budget() -> None:
    """Every word of every coffee value is primed once, in few phrases, and "dark roast" stays a pair."""
    coffee = next(d for d in load_domains() if d.name == "coffee")
    words = {w for s in coffee.slots.values() if s.kind == "categorical" for v in s.values for w in v.lower().split()}
    phrases = vocabulary_hint_words(("coffee",))
    primed = [w for p in phrases for w in p.split()]
    assert set(primed) == words
    assert len(primed) <= 60 and len(phrases) < sum(len(s.values) for s in coffee.slots.values()) / 2
    assert "dark roast" in phrases and "eight ounce" in phrases and "cappuccino" in phrases
    # The budget cuts whole phrases, never words out of one.
    short = vocabulary_hint_words(("coffee",), max_words=10)
    assert sum(len(p.split()) for p in short) <= 10 and set(short) <= set(phrases)


def test_unknown_domain_is_a_clear_error_at_start(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A misspelt domain stops the start with the installed names, instead of silently priming nothing."""
    with pytest.raises(ValueError, match="unknown domain.*'cofee'.*installed: .*coffee"):
        vocabulary_hint_words(("cofee",))
    bad = settings.model_copy(update={"asr": settings.asr.model_copy(update={"hint_domains": ["cofee"]})})
    with pytest.raises(InvalidInput, match="asr.hint_domains: unknown domain"):
        Components.load(bad, db_path=tmp_path / "dialog.sqlite")


@pytest.mark.parametrize("domains", [[], ["coffee"]])
def test_pipeline_primes_the_asr_with_the_configured_domains(components, utterances, domains) -> None:  # type: ignore[no-untyped-def]
    """With ``hint_domains`` the first turn's stream gets the vocabulary; without it, no domain words."""
    s = components.settings
    settings = s.model_copy(update={"asr": s.asr.model_copy(update={"hint_domains": domains, "domain_hints": False})})
    rec = RecordingAsr(components.asr)
    comps = dataclasses.replace(components, asr=rec, settings=settings)
    row = utterance(utterances, "what time is it")
    result = run(run_audio(Conversation(comps, f"t-hints-{len(domains)}", barge_in=False),
                           load_audio(row["path"]), realtime=False))
    assert result.turns == 1 and rec.hints
    if domains:
        assert rec.hints[0] == list(vocabulary_hint_words(("coffee",)))
    else:
        assert rec.hints[0] is None


def test_eval_flag_sets_the_hint_domains(utterances, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`quickturn eval --hint-domains` reaches the settings: a misspelt name fails with the installed ones."""
    from assistant.cli import main

    manifest = utterances[0]["path"].parent.parent / "manifest.jsonl"  # type: ignore[union-attr]
    rc = main(["eval", str(manifest), "--hint-domains", "coffee,cofee", "--limit", "1", "--out", str(tmp_path), "-q"])
    assert rc == 1
    assert "asr.hint_domains: unknown domain(s) 'cofee'" in capsys.readouterr().err
    # The failed load does not stick to this process: the next evaluation runs.
    # (Regression: the worker state kept the first load error and failed every later eval.)
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"audio_filepath": str(utterances[0]["path"]), "text": utterances[0]["text"]}) + "\n")
    out = tmp_path / "ok"
    assert main(["eval", str(one), "--hint-domains", "coffee", "--out", str(out), "-q", "--fast", "--no-report"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files_ok"] == 1 and summary["hint_domains"] == ["coffee"]
    capsys.readouterr()
    # Resuming that folder without the priming would mix two set-ups: the run says so.
    assert main(["eval", str(one), "--out", str(out), "--fast", "--no-report"]) == 0
    assert "resuming results made with different hint_domains" in capsys.readouterr().err


def test_coffee_kiosk_config_primes_with_the_coffee_vocabulary() -> None:
    """The shipped deployment file loads and names an installed domain."""
    from core.settings import REPO_ROOT, load_settings

    s = load_settings(REPO_ROOT / "deploy" / "config" / "coffee-kiosk.yaml")
    assert s.asr.hint_domains == ["coffee"] and vocabulary_hint_words(tuple(s.asr.hint_domains))
