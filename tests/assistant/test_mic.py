"""``quickturn mic`` against a real PulseAudio virtual microphone (real PortAudio capture)."""

from __future__ import annotations

import json
import subprocess
import time

from tests.conftest import QUICKTURN, utterance


def _wait_for(path, needle: str, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text():
            return True
        time.sleep(0.2)
    return False


def test_mic_session_hears_and_answers(pulse_mic, utterances, tmp_path, cli_env) -> None:  # type: ignore[no-untyped-def]
    events = tmp_path / "events.jsonl"
    log = tmp_path / "mic.err"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [str(QUICKTURN), "mic", "--seconds", "60", "--events", str(events), "--db", str(tmp_path / "d.sqlite")],
            stdout=subprocess.PIPE, stderr=err, text=True, env=cli_env, stdin=subprocess.DEVNULL,
        )
    try:
        assert _wait_for(log, "speak now", 120), log.read_text()
        wav = utterance(utterances, "set a timer for five minutes")["path"]
        subprocess.run(["paplay", f"--device={pulse_mic['mic_sink']}", str(wav)], check=True, timeout=30)
        assert _wait_for(events, '"stage-metrics"', 30), log.read_text()
    finally:
        proc.send_signal(2)  # Ctrl-C
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, log.read_text()
    assert "saved" in log.read_text()
    recs = [json.loads(line) for line in events.read_text().splitlines()]
    finals = [r["text"] for r in recs if r["type"] == "transcript-final"]
    assert any("timer" in f and "five minutes" in f for f in finals), finals
    assert any(r["type"] == "audio-chunk" and r["stage"] == "tts" for r in recs)
    assert "you: " in out and "assistant: " in out


def test_mic_full_duplex_barge_in(pulse_mic, utterances, tmp_path, cli_env) -> None:  # type: ignore[no-untyped-def]
    """A second utterance while the reply plays cancels the reply (full-duplex)."""
    events = tmp_path / "events.jsonl"
    log = tmp_path / "mic.err"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [str(QUICKTURN), "mic", "--full-duplex", "--seconds", "90", "--events", str(events), "--db", str(tmp_path / "d.sqlite")],
            stdout=subprocess.PIPE, stderr=err, text=True, env=cli_env, stdin=subprocess.DEVNULL,
        )
    try:
        assert _wait_for(log, "speak now", 120), log.read_text()
        subprocess.run(["paplay", f"--device={pulse_mic['mic_sink']}", str(utterance(utterances, "what can you do")["path"])], check=True, timeout=30)
        assert _wait_for(events, '"audio-chunk"', 30), log.read_text()
        subprocess.run(["paplay", f"--device={pulse_mic['mic_sink']}", str(utterance(utterances, "cancel that")["path"])], check=True, timeout=30)
        assert _wait_for(events, '"turn-cancelled"', 30), events.read_text()[-2000:]
    finally:
        proc.send_signal(2)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_mic_without_device_is_a_clear_error(tmp_path, cli_env) -> None:  # type: ignore[no-untyped-def]
    env = dict(cli_env)
    env["PULSE_SERVER"] = "unix:/nonexistent"  # no sound server reachable
    proc = subprocess.run([str(QUICKTURN), "mic", "--seconds", "1"], capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr
    assert "no audio input device" in proc.stderr
