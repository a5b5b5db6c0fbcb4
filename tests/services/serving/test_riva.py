"""The official Riva client (nvidia-riva-client) against ``quickturn serve riva``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import wave

import numpy as np
import pytest

from core.settings import REPO_ROOT
from tests.servers import free_ports

riva_client = pytest.importorskip("riva.client", reason="pip install 'quickturn[riva]'")
grpc = pytest.importorskip("grpc")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def free_port() -> int:
    return free_ports(1)[0]


@pytest.fixture(scope="module")
def settings():  # type: ignore[no-untyped-def]
    from core.settings import load_settings

    return load_settings()


@pytest.fixture(scope="module")
def stages(settings):  # type: ignore[no-untyped-def]
    from services.serving.riva_server import Stages

    s = Stages.load(settings)
    yield s
    s.sessions.close()


@pytest.fixture(scope="module")
def address(stages):  # type: ignore[no-untyped-def]
    from services.serving.riva_server import build_server

    server = build_server(stages, 0, "127.0.0.1", interim_ms=320)
    server.start()
    yield f"127.0.0.1:{server.bound_port}"
    server.stop(grace=1).wait()


@pytest.fixture(scope="module")
def utterance(stages):  # type: ignore[no-untyped-def]
    """A generated utterance and its transcript by the same decoder, in-process."""
    from assistant.commands.setup import utterance_manifest

    manifest = utterance_manifest()
    if not manifest.is_file():
        pytest.skip("no generated utterances: run `quickturn setup`")
    row = next(json.loads(line) for line in manifest.read_text().splitlines() if "timer" in line)
    path = manifest.parent / row["audio_filepath"]
    from core.audio import load_audio

    pcm = load_audio(path)
    key = "reference"
    stages.sessions.start(key, None)
    stages.sessions.append(key, pcm)
    from services.serving.riva_server import _answer

    return path, pcm, _answer(stages.sessions, key, final=True).text


def auth(address: str):  # type: ignore[no-untyped-def]
    return riva_client.Auth(uri=address)


def test_streaming_recognize_gives_interim_results_then_a_final(address, utterance) -> None:  # type: ignore[no-untyped-def]
    _path, pcm, text = utterance
    asr = riva_client.ASRService(auth(address))
    config = riva_client.StreamingRecognitionConfig(
        config=riva_client.RecognitionConfig(encoding=riva_client.AudioEncoding.LINEAR_PCM, sample_rate_hertz=16000,
                                             language_code="en-US", max_alternatives=1),
        interim_results=True,
    )

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(pcm), 1600):  # 100 ms, paced at 4x real time
            time.sleep(0.025)
            yield pcm[i : i + 1600].astype("<i2").tobytes()

    interim, final = [], []
    for response in asr.streaming_response_generator(chunks(), config):
        for result in response.results:
            (final if result.is_final else interim).append(result.alternatives[0].transcript)
    assert interim, "interim results while audio streams"
    assert final == [text]


def test_recognize_at_another_sample_rate(address, utterance) -> None:  # type: ignore[no-untyped-def]
    from core.audio import resample, to_pcm16

    _path, pcm, text = utterance
    audio8k = to_pcm16(resample(pcm.astype(np.float32) / 32768, 16000, 8000))
    asr = riva_client.ASRService(auth(address))
    config = riva_client.RecognitionConfig(encoding=riva_client.AudioEncoding.LINEAR_PCM, sample_rate_hertz=8000,
                                           language_code="en-US", max_alternatives=1)
    response = asr.offline_recognize(audio8k.astype("<i2").tobytes(), config)
    words = response.results[0].alternatives[0].transcript.split()
    assert len(set(words) & set(text.split())) >= len(text.split()) - 2


def test_unsupported_audio_is_invalid_argument(address) -> None:  # type: ignore[no-untyped-def]
    asr = riva_client.ASRService(auth(address))
    config = riva_client.RecognitionConfig(encoding=riva_client.AudioEncoding.FLAC, sample_rate_hertz=16000)
    with pytest.raises(grpc.RpcError) as info:
        asr.offline_recognize(b"fLaC\x00\x00", config)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "LINEAR_PCM" in info.value.details()


def test_synthesize_and_synthesize_online(address) -> None:  # type: ignore[no-untyped-def]
    tts = riva_client.SpeechSynthesisService(auth(address))
    whole = tts.synthesize("Okay. The timer is set.", sample_rate_hz=16000)
    audio = np.frombuffer(whole.audio, dtype="<i2")
    assert len(audio) > 16000 // 2 and np.abs(audio).max() > 1000
    chunks = [np.frombuffer(r.audio, dtype="<i2") for r in tts.synthesize_online(
        "Sure. It is sunny in Paris today, with a light breeze. Enjoy your walk.", sample_rate_hz=22050)]
    assert len(chunks) >= 3 and all(len(c) for c in chunks)


def test_analyze_intent_and_classify_tokens(address) -> None:  # type: ignore[no-untyped-def]
    nlp = riva_client.NLPService(auth(address))
    response = nlp.analyze_intent("set a timer for um five minutes")
    assert response.intent.class_name == "SetTimer" and response.intent.score > 0
    slots = {s.label[0].class_name: s.token for s in response.slots}
    assert slots.get("duration") == "five minutes"
    span = next(s for s in response.slots if s.label[0].class_name == "duration").span[0]
    assert "set a timer for five minutes"[span.start : span.end] == "five minutes"

    tags = nlp.classify_tokens("set a timer for five minutes", "slots")
    labels = [(v.token, v.label[0].class_name) for v in tags.results[0].results]
    assert labels[-2:] == [("five", "B-duration"), ("minutes", "I-duration")]
    dis = nlp.classify_tokens("i want uh i need a timer", "disfluency")
    kinds = {v.token: v.label[0].class_name for v in dis.results[0].results}
    assert kinds["uh"] == "filler" and kinds["timer"] == "O"


def test_riva_backend_in_the_pipeline_matches_embedded(address, utterance, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from assistant.components import Components
    from assistant.pipeline import Conversation
    from assistant.turn_result import run_audio
    from core.settings import load_settings

    _path, pcm, text = utterance
    remote = Components.load(load_settings(overrides={"backend": {"uri": f"riva://{address}"}}),
                             db_path=tmp_path / "d.sqlite")
    assert remote.asr is not None and remote.asr.name == "riva" and remote.tts.name == "riva"
    result = asyncio.run(run_audio(Conversation(remote, "riva-1", barge_in=False), pcm, realtime=False))
    assert not result.errors, result.errors
    assert result.transcript == text and result.intent == "SetTimer"
    assert result.reply_audio is not None and len(result.reply_audio) > 0


def test_serve_riva_cli_stops_cleanly_on_sigterm(tmp_path, utterance) -> None:  # type: ignore[no-untyped-def]
    path, _pcm, _text = utterance
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "riva", "--port", str(port)], cwd=REPO_ROOT,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert proc.stderr is not None
        line = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "ready" in line or "error" in line or not line:
                break
        assert "Riva API ready" in line, line
        with wave.open(str(path)) as w:
            audio = w.readframes(w.getnframes())
            rate = w.getframerate()
        asr = riva_client.ASRService(auth(f"127.0.0.1:{port}"))
        config = riva_client.RecognitionConfig(encoding=riva_client.AudioEncoding.LINEAR_PCM, sample_rate_hertz=rate)
        assert asr.offline_recognize(audio, config).results[0].alternatives[0].transcript
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
