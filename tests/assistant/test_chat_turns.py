"""``quickturn chat --turns``: a long multi-turn recording streamed from disk, one line per turn (issue 29)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.cli import main
from assistant.commands.chat_turns import TurnSplitter
from core.audio import load_audio, write_wav
from core.events import DialogAction, StageMetrics, TranscriptFinal
from tests.conftest import utterance

REQUESTS = [("set a timer for five minutes", "SetTimer"), ("turn on the kitchen lights", "DeviceOn"),
            ("what's the weather like in paris tomorrow", "GetWeather")]


def long_recording(utterances, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Three requests 60 s apart: 129 s in all, over both chat's 30 s and the 120 s file limit."""
    parts: list[np.ndarray] = []
    for i, (text, _) in enumerate(REQUESTS):
        parts.append(load_audio(utterance(utterances, text)["path"]))
        parts.append(np.zeros(16000 * (60 if i < 2 else 3), np.int16))
    write_wav(path, np.concatenate(parts), 16000)
    return path


@pytest.mark.slow
def test_a_recording_longer_than_the_file_limit_is_answered_turn_by_turn(  # type: ignore[no-untyped-def]
    utterances, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = long_recording(utterances, tmp_path / "long.wav")
    assert main(["chat", str(wav), "--fast", "--db", str(tmp_path / "d.sqlite")]) == 1  # one utterance: refused
    assert "over the 30 s limit" in capsys.readouterr().err
    code = main(["chat", "--turns", str(wav), "--fast", "--json", "--db", str(tmp_path / "d.sqlite")])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["turn"] for x in lines] == [1, 2, 3]
    assert [x["intent"] for x in lines] == [intent for _, intent in REQUESTS]
    assert all(x["reply"] and not x["errors"] for x in lines)
    # Reported as the recording is read, not after it: each turn before the next one's audio was fed.
    assert lines[0]["reported_at_s"] < 60 < lines[1]["reported_at_s"] < 120 < lines[2]["reported_at_s"]


def test_turns_are_handed_back_when_their_pipeline_metrics_arrive() -> None:
    split = TurnSplitter()
    a1 = TranscriptFinal(session_id="s", turn_id="a", text="hi")
    b1 = TranscriptFinal(session_id="s", turn_id="b", text="there")
    assert split.add([a1, b1]) == []
    a2 = DialogAction(session_id="s", turn_id="a", text="Hello.", phrases=("Hello.",))
    end_a = StageMetrics(session_id="s", turn_id="a", stage="pipeline", latency_ms={})
    assert split.add([a2, end_a]) == [[a1, a2, end_a]]
    assert split.rest() == [[b1]] and split.rest() == []


def test_turns_mode_refuses_out_and_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--turns", str(tmp_path / "nope.wav")]) == 1
    assert "nope.wav" in capsys.readouterr().err
    wav = tmp_path / "x.wav"
    write_wav(wav, np.zeros(1600, np.int16), 16000)
    assert main(["chat", "--turns", str(wav), "--out", str(tmp_path / "r.wav")]) == 1
    assert "--out writes one reply" in capsys.readouterr().err
