"""Against a real tritonserver (the bundled CPU build) serving models/.

One server with every model is started for the module; the kill test and the
CLI test start their own small servers on other free ports.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc.aio", reason="pip install 'quickturn[triton]'")

from core.errors import BackendUnavailable, InvalidInput  # noqa: E402
from core.settings import REPO_ROOT
from services import triton_tensors as T  # noqa: E402
from services.serving.triton_server import TritonPorts, TritonProcess, find_tritonserver  # noqa: E402
from tests.servers import free_ports, start_server  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def triton(tmp_path_factory):  # type: ignore[no-untyped-def]
    server = start_server(tmp_path_factory.mktemp("triton"))
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def conn(triton):  # type: ignore[no-untyped-def]
    from services.triton_transport import TritonConnection

    c = TritonConnection(f"127.0.0.1:{triton.ports.grpc}", timeout_s=60)
    yield c
    c.close()


@pytest.fixture(scope="module")
def rows() -> list[dict[str, object]]:
    """The generated utterances (``quickturn setup``), with absolute paths."""
    from assistant.commands.setup import utterance_manifest

    manifest = utterance_manifest()
    if not manifest.is_file():
        pytest.skip("no generated utterances: run `quickturn setup`")
    out = []
    for line in manifest.read_text().splitlines():
        row = json.loads(line)
        row["path"] = manifest.parent / row["audio_filepath"]
        out.append(row)
    return out


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):  # type: ignore[no-untyped-def]
    from assistant.components import Components
    from core.settings import load_settings

    return Components.load(load_settings(), db_path=tmp_path_factory.mktemp("db") / "embedded.sqlite")


@pytest.fixture(scope="module")
def reference(rows):  # type: ignore[no-untyped-def]
    """Eight different utterances and their embedded (in-process) transcripts."""
    from core.audio import load_audio
    from core.settings import load_settings
    from services.asr.embedded import EmbeddedAsr

    a = load_settings().asr
    decoder = EmbeddedAsr(a.model, 1, a.min_window_s, a.tokens_per_second, a.beam_size, a.fallback_window_s,
                          a.final_beam_size).decoder
    out = []
    for r in [r for r in rows if r["voice"] == "piper-joe"][:8]:
        pcm = load_audio(Path(str(r["path"])))
        out.append((pcm, decoder.decode(pcm, None, final=True).text))
    assert len({text for _, text in out}) == 8
    return out


async def run_stream(asr, pcm: np.ndarray, *, partial_every: int = 12, pause_at: float | None = None,
                     pause_s: float = 0.0) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """Feed 32 ms frames (interleaving with other streams), ask partials, return (final, partials)."""
    stream = asr.open_stream("test", "turn", None)
    partials: list[str] = []
    frames = [pcm[i : i + 512] for i in range(0, len(pcm), 512)]
    paused = False
    for k, frame in enumerate(frames):
        if pause_at is not None and not paused and k >= len(frames) * pause_at:
            paused = True
            await asyncio.sleep(pause_s)
        await stream.accept(frame)
        if k and k % partial_every == 0:
            partials.append((await stream.hypothesis()).text)
        await asyncio.sleep(0.005)
    final = await stream.final()
    await stream.aclose()
    return final.text, partials


def test_health_readiness_and_metrics_endpoints(triton) -> None:  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(f"{triton.http_url}/v2/health/live", timeout=5) as r:
        assert r.status == 200
    for model in T.ALL_MODELS:
        with urllib.request.urlopen(f"{triton.http_url}/v2/models/{model}/ready", timeout=5) as r:
            assert r.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{triton.ports.metrics}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert "nv_inference_queue_duration_us" in text


def test_eight_concurrent_streams_get_their_own_transcripts(conn, reference) -> None:  # type: ignore[no-untyped-def]
    from services.asr.triton_client import TritonAsr

    asr = TritonAsr(conn)

    async def main() -> list[tuple[str, list[str]]]:
        return await asyncio.gather(*[run_stream(asr, pcm, partial_every=40) for pcm, _ in reference])

    results = asyncio.run(main())
    assert [final for final, _ in results] == [text for _, text in reference]
    for k, (_final, partials) in enumerate(results):
        assert partials, "each stream got partial transcripts"
        # The last partial (most of the audio) is closest to its own utterance (no cross-talk).
        # Compared by characters, not whole words: a greedy partial of a clip cut mid-word may
        # share no word with its utterance ("place on jasmute" for "play some jazz music") and
        # is still far closer to it than to any other stream's.
        closeness = [SequenceMatcher(None, partials[-1], text).ratio() for _, text in reference]
        assert closeness[k] == max(closeness) and closeness[k] > 0.4, (partials[-1], reference[k][1], closeness)


def test_a_stream_that_pauses_five_seconds_continues(conn, reference) -> None:  # type: ignore[no-untyped-def]
    from services.asr.triton_client import TritonAsr

    asr = TritonAsr(conn, keepalive_s=60)  # no keepalive: the model's idle timeout alone must cover the pause
    pcm, text = reference[0]
    final, _ = asyncio.run(run_stream(asr, pcm, partial_every=1000, pause_at=0.5, pause_s=5.5))
    assert final == text


def test_unknown_sequence_gets_a_clear_error(conn) -> None:  # type: ignore[no-untyped-def]
    import concurrent.futures

    from services.asr.triton_client import _inputs

    answer: concurrent.futures.Future[object] = concurrent.futures.Future()

    def handler(result, error, final):  # type: ignore[no-untyped-def]
        if not answer.done():
            answer.set_result(error or result)

    wire = conn.stream(T.ASR_MODEL)
    wire.send(_inputs(np.zeros(160, np.int16), True, None), [T.TRANSCRIPT], handler, sequence_id=987654321,
              start=False)
    wire.close()
    error = answer.result(timeout=20)
    assert isinstance(error, InvalidInput)
    assert "START" in str(error) and "987654321" in str(error)


def test_disfluency_nlu_and_tts_clients(conn) -> None:  # type: ignore[no-untyped-def]
    from core.types import clean_text
    from services.disfluency.triton_client import TritonTagger
    from services.nlu.triton_client import TritonNlu
    from services.tts.triton_client import TritonTts

    tagger = TritonTagger(conn)
    words = "set a timer for um five minutes".split()
    assert clean_text(tagger.tag(words)) == "set a timer for five minutes"
    stream = tagger.stream()
    first = stream.update(words[:3])
    final = stream.finish(words)
    assert [t.word for t in final] == words and final[: len(first)] == first

    nlu = TritonNlu(conn)
    result = nlu.parse("set a timer for five minutes")
    assert result.intent == "SetTimer" and result.slot_dict().get("duration") == "five minutes"

    tts = TritonTts(conn)
    assert tts.sample_rate_hz in (16000, 22050)
    chunks = list(tts.stream("Okay. It is sunny in Paris today, with a light breeze. Enjoy your walk."))
    assert len({index for _, index, _ in chunks}) == 3 and all(len(c) > 0 for _, _, c in chunks)
    audio = tts.synthesize("Okay.")
    assert audio.dtype == np.int16 and len(audio) > tts.sample_rate_hz // 10


def test_one_bad_request_does_not_fail_the_others(conn) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    from services.tts.triton_client import TritonTts

    tts = TritonTts(conn)
    with ThreadPoolExecutor(2) as pool:
        bad = pool.submit(tts.synthesize, "word " * 1000)
        good = pool.submit(tts.synthesize, "Sure.")
        with pytest.raises(InvalidInput, match="exceeds the limit"):
            bad.result(60)
        assert len(good.result(60)) > 0


def test_chat_through_triton_matches_embedded(triton, embedded, rows, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from assistant.components import Components
    from assistant.pipeline import Conversation
    from assistant.turn_result import run_audio
    from core.audio import load_audio
    from core.settings import load_settings

    settings = load_settings(overrides={"backend": {"uri": f"triton://127.0.0.1:{triton.ports.grpc}"}})
    remote = Components.load(settings, db_path=tmp_path / "remote.sqlite")
    for k, row in enumerate(r for r in rows if r["voice"] == "piper-joe" and r["text"].startswith(("set", "will"))):
        if k >= 2:
            break
        pcm = load_audio(Path(str(row["path"])))
        # Same session id on both sides: the reply variant is seeded by it.
        got = asyncio.run(run_audio(Conversation(remote, f"chat-{k}", barge_in=False), pcm, realtime=False))
        want = asyncio.run(run_audio(Conversation(embedded, f"chat-{k}", barge_in=False), pcm, realtime=False))
        assert not got.errors
        assert (got.transcript, got.intent, got.slots, got.reply) == (want.transcript, want.intent, want.slots, want.reply)
        assert got.reply_audio is not None and len(got.reply_audio) > 0


def test_server_killed_mid_stream_then_the_next_turn_reconnects(reference, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from services.asr.triton_client import TritonAsr
    from services.triton_transport import TritonConnection

    ports = TritonPorts(*free_ports())
    server = start_server(tmp_path / "a", models=[T.ASR_MODEL], ports=ports)
    conn = TritonConnection(f"127.0.0.1:{ports.grpc}", timeout_s=20)
    asr = TritonAsr(conn)
    pcm, text = reference[1]
    try:

        async def broken() -> None:
            stream = asr.open_stream("s", "t", None)
            await stream.accept(pcm[: len(pcm) // 2])
            await stream.hypothesis()
            server.kill()
            await stream.accept(pcm[len(pcm) // 2 :])
            t0 = time.monotonic()
            with pytest.raises(BackendUnavailable, match="asr") as info:
                await stream.final()
            assert time.monotonic() - t0 < 15
            print(info.value)
            await stream.aclose()

        asyncio.run(broken())
        again = start_server(tmp_path / "b", models=[T.ASR_MODEL], ports=ports)
        try:
            final, _ = asyncio.run(run_stream(asr, pcm, partial_every=1000))
            assert final == text
        finally:
            again.stop()
    finally:
        server.stop()
        conn.close()


def test_serve_triton_cli_stops_cleanly_on_sigterm(tmp_path) -> None:
    http, grpc, metrics = free_ports()
    cmd = [sys.executable, "-m", "assistant.cli", "serve", "triton", "--models", "nlu", "--http-port", str(http),
           "--grpc-port", str(grpc), "--metrics-port", str(metrics), "--log", str(tmp_path / "log.txt")]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "ready" in line or "error" in line or not line:
                break
        if "no tritonserver binary" in line:
            pytest.skip(line)
        assert "Triton ready" in line, line
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/models/nlu/ready", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as r:
            assert b"nv_inference_request_success" in r.read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_idle_sequences_expire_and_the_client_keepalive_prevents_it(reference, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With a 2 s idle limit, a 4 s pause kills a silent stream but not one that sends keepalives."""
    import shutil

    from services.asr.triton_client import TritonAsr
    from services.triton_transport import TritonConnection

    repo = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "models" / "asr", repo / "asr", ignore=shutil.ignore_patterns("__pycache__"))
    config = repo / "asr" / "config.pbtxt"
    config.write_text(config.read_text().replace("max_sequence_idle_microseconds: 30000000",
                                                 "max_sequence_idle_microseconds: 2000000"))
    try:
        binary = find_tritonserver(runtime_dir=tmp_path / "runtime")
    except BackendUnavailable as exc:
        pytest.skip(f"no runnable tritonserver: {exc}")
    server = TritonProcess(repo, TritonPorts(*free_ports()), binary, log_path=tmp_path / "triton.log")
    server.start()
    conn = None
    try:
        server.wait_ready(240)
        conn = TritonConnection(f"127.0.0.1:{server.ports.grpc}", timeout_s=30)
        pcm, text = reference[2]

        async def paused(keepalive_s: float) -> str:
            return (await run_stream(TritonAsr(conn, keepalive_s=keepalive_s), pcm, partial_every=1000,
                                     pause_at=0.5, pause_s=4.0))[0]

        with pytest.raises(InvalidInput, match="START"):
            asyncio.run(paused(keepalive_s=60))
        assert asyncio.run(paused(keepalive_s=0.5)) == text
    finally:
        if conn is not None:
            conn.close()
        server.stop()


def test_tagger_and_nlu_on_triton_agree_with_embedded(conn, rows) -> None:  # type: ignore[no-untyped-def]
    """The Tagger and NluBackend contracts: Triton clients give the embedded backends' answers."""
    from core.settings import load_settings
    from core.types import NluHints
    from services.disfluency import load_tagger
    from services.disfluency.triton_client import TritonTagger
    from services.nlu import load_nlu
    from services.nlu.triton_client import TritonNlu

    settings = load_settings()
    local_tagger, local_nlu = load_tagger(settings), load_nlu(settings)
    remote_tagger, remote_nlu = TritonTagger(conn), TritonNlu(conn)
    texts = sorted({str(r["text"]) for r in rows})[:12]
    texts += ["i want uh i need a timer for um ten minutes", "turn on the the kitchen lights i mean the bedroom lights"]
    for text in texts:
        words = text.split()
        assert remote_tagger.tag(words) == local_tagger.tag(words), text
        local_stream, remote_stream = local_tagger.stream(), remote_tagger.stream()
        for n in range(1, len(words) + 1):
            assert remote_stream.update(words[:n]) == local_stream.update(words[:n]), (text, n)
        assert remote_stream.finish(words) == local_stream.finish(words), text
        want, got = local_nlu.parse(text), remote_nlu.parse(text)
        assert (got.intent, got.slots) == (want.intent, want.slots) and abs(got.confidence - want.confidence) < 1e-3
    hints = NluHints(active_intent="SetTimer", expected_slot="duration")
    assert remote_nlu.parse("ten minutes", hints).slots == local_nlu.parse("ten minutes", hints).slots
