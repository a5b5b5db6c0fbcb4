"""The Sans-I/O cores behind the Triton models: sequence state and the ASR decode worker."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from core.types import Hypothesis
from services.serving.asr_sessions import AsrSessions
from services.serving.sequences import SequenceStates, UnknownSequence


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_sequence_states_expire_idle_streams_and_name_the_fix() -> None:
    clock = FakeClock()
    dropped: list[str] = []
    states: SequenceStates[list[int]] = SequenceStates(list, idle_s=30, on_drop=lambda k, s: dropped.append(k), clock=clock)
    states.start("a").append(1)
    states.start("b")
    clock.t = 20
    states.get("a")  # a request refreshes the idle timer
    clock.t = 35
    assert states.expire() == ["b"] and dropped == ["b"]
    assert states.get("a") == [1]
    with pytest.raises(UnknownSequence, match="sequence_start=True.*30 s"):
        states.get("b")


def test_end_if_does_not_drop_a_restarted_sequence() -> None:
    states: SequenceStates[list[int]] = SequenceStates(list, idle_s=30)
    old = states.start("a")
    states.start("a")
    states.end_if("a", old)
    assert "a" in states


class SlowDecoder:
    """Echoes the audio length; records what it decoded."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self.delay_s = delay_s
        self.calls: list[tuple[int, tuple[str, ...] | None]] = []
        self.finals: list[bool] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, pcm: np.ndarray, hints: list[str] | None, *, final: bool = False) -> Hypothesis:
        self.gate.wait(5)
        self.calls.append((len(pcm), tuple(hints) if hints else None))
        self.finals.append(final)
        time.sleep(self.delay_s)
        return Hypothesis(text=f"n{len(pcm)} v{int(pcm[0]) if len(pcm) else -1}", raw_text="", avg_logprob=0.0)


def collect() -> tuple[list[tuple[str, int]], threading.Event, object]:
    got: list[tuple[str, int]] = []
    done = threading.Event()

    def reply(hyp, samples, error):  # type: ignore[no-untyped-def]
        got.append((str(error) if error else hyp.text, samples))
        done.set()

    return got, done, reply


def test_streams_do_not_mix_audio_and_hints_reach_the_decoder() -> None:
    dec = SlowDecoder(0)
    s = AsrSessions(dec)
    try:
        results = {}
        for k in range(8):
            s.start(str(k), ["hint", str(k)])
            s.append(str(k), np.full(100 * (k + 1), k, np.int16))
        for k in range(8):
            got, done, reply = collect()
            s.ask(str(k), reply, final=True)  # type: ignore[arg-type]
            assert done.wait(5)
            results[k] = got[0]
        assert results == {k: (f"n{100 * (k + 1)} v{k}", 100 * (k + 1)) for k in range(8)}
        assert ("1",) != dec.calls[1][1] and dec.calls[3][1] == ("hint", "3")
        assert len(s) == 0  # finals free their state
    finally:
        s.close()


def test_finals_jump_the_partial_queue_and_asks_coalesce() -> None:
    dec = SlowDecoder(0.02)
    s = AsrSessions(dec)
    try:
        dec.gate.clear()  # hold the worker while the queue fills
        s.start("busy", None)
        s.append("busy", np.zeros(10, np.int16))
        s.ask("busy", lambda h, n, e: None, final=False)
        time.sleep(0.05)
        order: list[str] = []
        for k in ("p1", "p2", "f"):
            s.start(k, None)
            s.append(k, np.zeros(5, np.int16))
        s.ask("p1", lambda h, n, e: order.append("p1"), final=False)
        s.ask("p2", lambda h, n, e: order.append("p2"), final=False)
        s.append("p2", np.zeros(5, np.int16))
        s.ask("p2", lambda h, n, e: order.append(f"p2-again {n}"), final=False)
        s.ask("f", lambda h, n, e: order.append("f"), final=True)
        dec.gate.set()
        deadline = time.monotonic() + 5
        while len(order) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert order[0] == "f"
        # p2's two asks were answered by one decode of its newest audio
        assert order[1:] == ["p1", "p2", "p2-again 10"]
        assert len(dec.calls) == 4  # busy, f, p1, p2 (once)
    finally:
        s.close()


def test_final_on_unchanged_audio_reuses_the_speculative_decode() -> None:
    dec = SlowDecoder(0)
    s = AsrSessions(dec)
    try:
        s.start("a", None)
        s.append("a", np.ones(320, np.int16))
        got, done, reply = collect()
        s.ask("a", reply, final=False, best=True)  # type: ignore[arg-type]  # speculative final at a pause
        assert done.wait(5)
        got2, done2, reply2 = collect()
        s.ask("a", reply2, final=True)  # type: ignore[arg-type]
        assert done2.wait(5)
        assert got2 == got and len(dec.calls) == 1 and dec.finals == [True]
        # A greedy partial is never reused as a final.
        s.start("b", None)
        s.append("b", np.ones(320, np.int16))
        for final in (False, True):
            got3, done3, reply3 = collect()
            s.ask("b", reply3, final=final)  # type: ignore[arg-type]
            assert done3.wait(5)
        assert dec.finals == [True, False, True]
    finally:
        s.close()


def test_unknown_and_oversized_streams_are_refused() -> None:
    s = AsrSessions(SlowDecoder(0), max_samples=1000)
    try:
        with pytest.raises(UnknownSequence):
            s.append("nope", np.zeros(10, np.int16))
        s.start("a", None)
        with pytest.raises(ValueError, match="exceeds"):
            s.append("a", np.zeros(2000, np.int16))
    finally:
        s.close()


def test_phrase_chunks_stop_between_phrases_when_cancelled() -> None:
    from services.serving.tts_worker import phrase_chunks

    spoken: list[str] = []

    def synth(text: str) -> np.ndarray:
        spoken.append(text)
        return np.zeros(250, np.int16)

    chunks = list(phrase_chunks(synth, "Okay. The weather is fine. See you.", 100))
    assert [i for i, _ in chunks] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    spoken.clear()
    state = {"n": 0}

    def cancelled() -> bool:
        state["n"] += 1
        return state["n"] > 1

    assert [i for i, _ in phrase_chunks(synth, "Okay. The weather is fine. See you.", 100, cancelled)] == [0, 0, 0]
    assert spoken == ["Okay."]


def test_backend_uris() -> None:
    from core.errors import InvalidInput
    from services.registry import parse_backend_uri

    assert parse_backend_uri("triton://gpu-box:9001").address == "gpu-box:9001"
    assert parse_backend_uri("triton://localhost").port == 8001
    assert parse_backend_uri("riva://10.0.0.2").port == 50051
    for bad in ("ftp://x", "triton://", "triton://h:notaport"):
        with pytest.raises(InvalidInput):
            parse_backend_uri(bad)


def test_unreachable_triton_is_one_readable_error() -> None:
    pytest.importorskip("tritonclient.grpc.aio")
    from assistant.components import Components
    from core.errors import BackendUnavailable
    from core.settings import load_settings

    settings = load_settings(overrides={"backend": {"uri": "triton://127.0.0.1:1", "timeout_s": 2}})
    with pytest.raises(BackendUnavailable, match=r"unreachable \(start it with `quickturn serve triton`\)"):
        Components.load(settings, need_asr=False)


def test_explicit_tritonserver_path_must_exist(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from core.errors import BackendUnavailable
    from services.serving.triton_server import find_tritonserver

    with pytest.raises(BackendUnavailable, match="not found"):
        find_tritonserver(str(tmp_path / "nope"))


def test_end_promotes_a_pending_speculative_decode_to_the_finals_queue() -> None:
    dec = SlowDecoder(0.02)
    s = AsrSessions(dec)
    try:
        dec.gate.clear()
        s.start("busy", None)
        s.append("busy", np.zeros(10, np.int16))
        s.ask("busy", lambda h, n, e: None, final=False)
        time.sleep(0.05)
        order: list[str] = []
        for k in ("other", "spec"):
            s.start(k, None)
            s.append(k, np.zeros(5, np.int16))
        s.ask("other", lambda h, n, e: order.append("other"), final=False)
        s.ask("spec", lambda h, n, e: order.append("spec"), final=False)  # speculative decode at the pause
        s.end("spec")  # the endpoint: END without DECODE, the client reuses the speculative answer
        dec.gate.set()
        deadline = time.monotonic() + 5
        while len(order) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert order == ["spec", "other"]
        assert "spec" not in s._states  # freed after its answer
    finally:
        s.close()


def test_server_stub_inherits_the_thread_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """OMP_NUM_THREADS changes ctranslate2's numerics, so the stub must not get its own value.

    With OMP_NUM_THREADS=1 forced on the stub only, Triton and the embedded
    decoder disagreed on near-tie utterances ("turn on" vs "pern on").
    """
    from services.serving.triton_server import _python_env

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert "OMP_NUM_THREADS" not in _python_env()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert _python_env()["OMP_NUM_THREADS"] == "3"


def test_partials_waiting_together_are_decoded_in_one_batch_with_the_single_results(utterances) -> None:  # type: ignore[no-untyped-def]
    """The real Whisper decoder: while a final is being decoded, three streams ask for partials; the worker
    then decodes the three in one ``decode_batch`` call, and each answer is the one its own decode gives."""
    from core.audio import load_audio
    from core.settings import load_settings
    from services.asr.embedded import EmbeddedAsr
    from tests.conftest import utterance

    a = load_settings().asr
    decoder = EmbeddedAsr(a.model, 1, a.min_window_s, a.tokens_per_second, a.beam_size, a.fallback_window_s,
                          a.final_beam_size, max_batch=1).decoder
    batches: list[int] = []

    def recording_batch(requests, *, final):  # type: ignore[no-untyped-def]
        batches.append(len(requests))
        return decoder.decode_batch(requests, final=final)

    texts = ["set a timer for five minutes", "turn on the kitchen lights", "what can you do", "cancel that"]
    pcms = [load_audio(utterance(utterances, t)["path"]) for t in texts]
    s = AsrSessions(decoder.decode, decode_batch=recording_batch, batch_key=decoder.batch_key, max_batch=4)
    try:
        for k, pcm in enumerate(pcms):
            s.start(str(k), None)
            s.append(str(k), pcm)
        answers: dict[str, str] = {}
        done = threading.Event()

        def reply(name: str):  # type: ignore[no-untyped-def]
            def got(hyp, n, error):  # type: ignore[no-untyped-def]
                answers[name] = str(error) if error else hyp.text
                if len(answers) == 4:
                    done.set()
            return got

        s.ask("0", reply("0"), final=True)  # a beam-5 final keeps the worker busy...
        for k in ("1", "2", "3"):
            s.ask(k, reply(k), final=False)  # ...while three partials queue up
        assert done.wait(60), answers
    finally:
        s.close()
    assert batches == [3], batches
    for k in ("1", "2", "3"):
        assert answers[k] == decoder.decode(pcms[int(k)], None, final=False).text, (k, answers[k])
