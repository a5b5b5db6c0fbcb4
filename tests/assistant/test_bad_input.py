"""Bad audio gets one clear line and a non-zero exit; odd rates and channel counts just work."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import soundfile as sf

from core.audio import load_audio, resample
from core.errors import InvalidAudio
from tests.conftest import QUICKTURN, utterance


def quickturn(*args: str, env=None, timeout: int = 300) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run([str(QUICKTURN), *args], capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("quickturn: error")]
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0], lines[0]


@pytest.fixture
def bad_files(tmp_path):  # type: ignore[no-untyped-def]
    files = {}
    files["empty"] = tmp_path / "empty.wav"
    files["empty"].write_bytes(b"")
    files["corrupt"] = tmp_path / "corrupt.wav"
    files["corrupt"].write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage garbage garbage" * 3)
    files["text"] = tmp_path / "notes.txt"
    files["text"].write_text("this is not audio\n" * 50)
    files["silent"] = tmp_path / "silent.wav"
    sf.write(files["silent"], np.zeros(16000 * 2, np.int16), 16000)
    files["long"] = tmp_path / "long.wav"
    sf.write(files["long"], np.zeros(16000 * 31, np.int16), 16000)
    files["dir"] = tmp_path
    return files


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("empty", "empty"),
        ("corrupt", "not a readable audio file"),
        ("text", "not a readable audio file"),
        ("silent", "silent"),
        ("long", "over the 30 s limit"),
        ("dir", "directory"),
    ],
)
def test_chat_rejects_bad_audio_with_one_line(bad_files, name, needle, cli_env) -> None:  # type: ignore[no-untyped-def]
    proc = quickturn("chat", str(bad_files[name]), "--fast", env=cli_env, timeout=120)
    assert_one_line_error(proc, needle)


def test_missing_file(tmp_path, cli_env) -> None:  # type: ignore[no-untyped-def]
    assert_one_line_error(quickturn("chat", str(tmp_path / "nope.wav"), env=cli_env), "no such file")


def test_load_audio_resamples_and_downmixes(tmp_path, utterances) -> None:  # type: ignore[no-untyped-def]
    pcm16 = load_audio(utterance(utterances, "set a timer for five minutes")["path"])
    f = pcm16.astype(np.float32) / 32768
    stereo48 = np.stack([resample(f, 16000, 48000), resample(f, 16000, 48000)], axis=1)
    sf.write(tmp_path / "s48.wav", stereo48, 48000, subtype="PCM_16")
    sf.write(tmp_path / "m8.flac", resample(f, 16000, 8000), 8000)
    a = load_audio(tmp_path / "s48.wav")
    b = load_audio(tmp_path / "m8.flac")
    assert a.dtype == np.int16 and abs(len(a) - len(pcm16)) < 50
    assert abs(len(b) - len(pcm16)) < 50
    with pytest.raises(InvalidAudio):
        load_audio(tmp_path / "missing.wav")


def test_chat_handles_48k_stereo_and_8k(tmp_path, utterances, cli_env) -> None:  # type: ignore[no-untyped-def]
    pcm16 = load_audio(utterance(utterances, "turn on the kitchen lights")["path"])
    f = pcm16.astype(np.float32) / 32768
    up = resample(f, 16000, 48000)
    sf.write(tmp_path / "s48.wav", np.stack([up, up], axis=1), 48000, subtype="PCM_16")
    sf.write(tmp_path / "m8.wav", resample(f, 16000, 8000), 8000, subtype="PCM_16")
    for name in ("s48.wav", "m8.wav"):
        proc = quickturn("chat", str(tmp_path / name), "--fast", "--json", "--out", str(tmp_path / f"{name}.reply.wav"), env=cli_env)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        # 8 kHz (telephone band) loses the "s" of "lights" for tiny.en; the content word must survive.
        assert "kitchen" in out["transcript"], out
        if name == "s48.wav":
            assert "lights" in out["transcript"], out
        assert out["reply"] and (tmp_path / f"{name}.reply.wav").is_file()
        assert set(out["latency_ms"]) >= {"endpoint", "asr", "disfluency", "nlu", "dialog", "tts_first_audio", "total"}


def test_say_rejects_empty_text(cli_env) -> None:  # type: ignore[no-untyped-def]
    assert_one_line_error(quickturn("say", "   ", env=cli_env), "nothing to say")


def test_unknown_backend_is_a_clear_error(utterances, cli_env) -> None:  # type: ignore[no-untyped-def]
    path = utterance(utterances, "hello there")["path"]
    proc = quickturn("chat", str(path), "--backend", "bogus://x:1", "--fast", env=cli_env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "bogus://x:1" in proc.stderr
