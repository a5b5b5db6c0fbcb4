"""`quickturn eval --noise-snr`: seeded pink noise at a measured speech-to-noise ratio."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.cli import main
from assistant.evaluation.noise import LEAD_S, SAMPLE_RATE_HZ, add_noise, pink_noise, speech_power
from core.audio import load_audio


def _speech() -> np.ndarray:
    """A second of silence, a second of a loud tone burst, a second of silence (int16)."""
    t = np.arange(SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    tone = (8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    z = np.zeros(SAMPLE_RATE_HZ, np.int16)
    return np.concatenate([z, tone, z])


@pytest.mark.parametrize("snr", [20.0, 5.0, 0.0])
def test_noise_is_mixed_at_the_requested_snr_against_the_speech(snr: float) -> None:
    pcm = _speech()
    noisy = add_noise(pcm, snr, seed=1, key="a.wav")
    lead = int(LEAD_S * SAMPLE_RATE_HZ)
    assert noisy.dtype == np.int16 and len(noisy) == len(pcm) + 2 * lead
    noise = noisy.astype(np.float64)[lead:-lead] - pcm
    measured = 10 * np.log10(speech_power(pcm.astype(np.float64)) / np.mean(noise**2))
    assert abs(measured - snr) < 0.2, measured
    # The silences are not counted as speech: the speech power is the tone's, not a third of it.
    assert speech_power(pcm.astype(np.float64)) == pytest.approx(8000**2 / 2, rel=0.01)


def test_noise_is_reproducible_per_file_and_pink() -> None:
    pcm = _speech()
    a = add_noise(pcm, 10, seed=3, key="a.wav")
    assert np.array_equal(a, add_noise(pcm, 10, seed=3, key="a.wav"))
    assert not np.array_equal(a, add_noise(pcm, 10, seed=3, key="b.wav"))
    assert not np.array_equal(a, add_noise(pcm, 10, seed=4, key="a.wav"))
    n = pink_noise(1 << 16, np.random.default_rng(0))
    spectrum = np.abs(np.fft.rfft(n)) ** 2
    low, high = spectrum[10:100].mean(), spectrum[10000:20000].mean()
    assert low > 30 * high  # 1/f: two decades apart, ~100x the power
    with pytest.raises(ValueError, match="between"):
        add_noise(pcm, 90, seed=0, key="a")


def test_eval_noise_option_runs_and_is_recorded(utterances, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The pipeline gets the noisy audio (1 s longer), the run records the set-up, bad values are refused."""
    row = utterances[0]
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"audio_filepath": str(row["path"]), "text": row["text"]}) + "\n")
    out = tmp_path / "noisy"
    assert main(["eval", str(one), "--noise-snr", "20", "--noise-seed", "7", "--out", str(out), "-q", "--fast",
                 "--no-report"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["noise"] == {"kind": "pink", "snr_db": 20.0, "seed": 7} and summary["files_ok"] == 1
    result = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    clean_s = len(load_audio(str(row["path"]))) / SAMPLE_RATE_HZ
    assert result["duration_s"] == pytest.approx(clean_s + 2 * LEAD_S, abs=0.01)
    capsys.readouterr()
    assert main(["eval", str(one), "--noise-snr", "95", "--out", str(tmp_path / "bad"), "-q"]) == 1
    assert "--noise-snr must be between" in capsys.readouterr().err
