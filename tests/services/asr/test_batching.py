"""Cross-stream batching of Whisper decodes (services/asr/batching.py, WhisperDecoder.decode_batch).

Real parts only: Whisper tiny.en on CTranslate2 and real speech (the barista-dev recordings of real
speakers and the generated utterances), cut to their speech region as the pipeline decodes them.
The scheduler's ordering is forced by holding the decoder's own lock, not by timing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from assistant.commands.bench_asr import speech_region
from core.audio import load_audio
from core.types import Hypothesis
from services.asr.batching import DROPPED, BatchScheduler
from services.asr.decoder import WhisperDecoder
from services.asr.embedded import EmbeddedAsr, EmbeddedAsrStream
from services.vad.silero import SileroVad


@pytest.fixture(scope="module")
def asr() -> Iterator[EmbeddedAsr]:
    """The decoder with the default settings' final beam (5), without a scheduler of its own."""
    backend = EmbeddedAsr(final_beam_size=5, max_batch=1)
    yield backend


@pytest.fixture(scope="module")
def windows(shared_dir: Path, utterances: list[dict[str, object]]) -> list[np.ndarray]:
    """12 real coffee orders and 4 generated commands, as speech windows shorter than the 6 s minimum window."""
    vad = SileroVad()
    barista = sorted((shared_dir / "data" / "barista-dev" / "audio").iterdir())
    pcms = [speech_region(load_audio(p), vad) for p in barista[:16]]
    pcms = [p for p in pcms if len(p) <= 6 * 16000][:12]
    pcms += [speech_region(load_audio(Path(str(r["path"]))), vad) for r in utterances[::24][:4]]
    assert len(pcms) == 16
    return pcms


def _singles(decoder: WhisperDecoder, pcms: list[np.ndarray], final: bool) -> list[Hypothesis]:
    return [decoder.decode(p, None, final=final) for p in pcms]


def test_batched_partials_are_the_single_decodes_on_real_speech(asr: EmbeddedAsr, windows: list[np.ndarray]) -> None:
    decoder = asr.decoder
    batched = [h for i in range(0, len(windows), 4)
               for h in decoder.decode_batch([(p, None) for p in windows[i : i + 4]], final=False)]
    assert [h.text for h in batched] == [h.text for h in _singles(decoder, windows, False)]
    assert all(h.text for h in batched)


def test_batched_finals_are_the_single_decodes_on_real_speech(asr: EmbeddedAsr, windows: list[np.ndarray]) -> None:
    """Beam search with a shared max_length differs on capped results; those are decoded again alone."""
    decoder = asr.decoder
    redos = decoder.batch_redos
    batched = [h for i in range(0, len(windows), 4)
               for h in decoder.decode_batch([(p, None) for p in windows[i : i + 4]], final=True)]
    assert [h.text for h in batched] == [h.text for h in _singles(decoder, windows, True)]
    # Whisper tiny loops on these orders in the 6 s window (about 3 in 10 hit the token cap): the
    # re-decode path ran, so the equality above covers it.
    assert decoder.batch_redos > redos


def test_requests_with_different_prompt_lengths_are_not_batched_together(asr: EmbeddedAsr) -> None:
    """CTranslate2 needs <|startoftranscript|> at one position: the key separates prompt lengths and windows."""
    d = asr.decoder
    n = 3 * 16000
    assert d.batch_key(n, None, final=False) == d.batch_key(n + 8000, None, final=False)  # both in the 6 s window
    assert d.batch_key(n, None, final=False) != d.batch_key(n, ["small", "medium", "large"], final=False)
    assert d.batch_key(n, None, final=False) != d.batch_key(n, None, final=True)  # greedy vs beam
    assert d.batch_key(n, None, final=False) != d.batch_key(7 * 16000, None, final=False)  # a longer window


def _hold(decoder: WhisperDecoder) -> threading.Lock:
    """Take the decoder's lock so the scheduler's running decode waits inside it (the queue fills behind)."""
    lock: threading.Lock = decoder._lock
    lock.acquire()
    return lock


def _wait_running(future: concurrent.futures.Future[Hypothesis]) -> None:
    while not future.running() and not future.done():
        threading.Event().wait(0.005)


def test_requests_queued_during_a_decode_form_one_batch(asr: EmbeddedAsr, windows: list[np.ndarray]) -> None:
    scheduler = BatchScheduler(asr.decoder, max_batch=4, partial_max_wait_ms=60_000)  # no thinning here
    lock = _hold(asr.decoder)
    try:
        first = scheduler.submit(windows[0], None, final=False, stream="s0")
        _wait_running(first)
        rest = [scheduler.submit(p, None, final=False, stream=f"s{i}") for i, p in enumerate(windows[1:6], 1)]
    finally:
        lock.release()
    hyps = [f.result(timeout=120) for f in [first, *rest]]
    scheduler.close()
    # 1 alone (it found the decoder idle), then 4 in one call, then the 6th.
    assert scheduler.stats.batch_sizes == {1: 2, 4: 1}
    assert [h.text for h in hyps] == [h.text for h in _singles(asr.decoder, windows[:6], False)]


def test_a_final_is_decoded_before_partials_queued_ahead_of_it(asr: EmbeddedAsr, windows: list[np.ndarray]) -> None:
    scheduler = BatchScheduler(asr.decoder, max_batch=4, partial_max_wait_ms=60_000)  # no thinning here
    done: list[str] = []
    lock = _hold(asr.decoder)
    try:
        busy = scheduler.submit(windows[0], None, final=False, stream="busy")
        _wait_running(busy)
        partial = scheduler.submit(windows[1], None, final=False, stream="a")
        final = scheduler.submit(windows[2], None, final=True, stream="b")
        partial.add_done_callback(lambda _f: done.append("partial"))
        final.add_done_callback(lambda _f: done.append("final"))
    finally:
        lock.release()
    assert partial.result(timeout=120).text and final.result(timeout=120).text
    scheduler.close()
    assert done == ["final", "partial"]
    assert scheduler.stats.batch_sizes == {1: 3}  # finals are not batched by default, nor with partials


def test_stale_or_superseded_partials_are_dropped_never_finals(asr: EmbeddedAsr, windows: list[np.ndarray]) -> None:
    scheduler = BatchScheduler(asr.decoder, max_batch=4, partial_max_wait_ms=100)
    lock = _hold(asr.decoder)
    try:
        busy = scheduler.submit(windows[0], None, final=False, stream="busy")
        _wait_running(busy)
        old = scheduler.submit(windows[1], None, final=False, stream="a")
        newer = scheduler.submit(windows[2], None, final=False, stream="a")  # replaces `old`
        final = scheduler.submit(windows[3], None, final=True, stream="b")
        other = scheduler.submit(windows[4], None, final=False, stream="c")
        assert old.result(timeout=1) is DROPPED  # superseded at once, before any decode
        threading.Event().wait(0.3)  # the queued requests are now older than partial_max_wait_ms
    finally:
        lock.release()
    final_hyp = final.result(timeout=120)
    assert newer.result(timeout=120) is DROPPED and other.result(timeout=120) is DROPPED
    assert busy.result(timeout=120).text  # the running decode finishes
    scheduler.close()
    assert final_hyp.text == asr.decoder.decode(windows[3], None, final=True).text
    assert scheduler.stats.dropped_partials == 3


def test_embedded_streams_share_batched_decodes(windows: list[np.ndarray]) -> None:
    """Four concurrent streams of one backend, through the AsrStream protocol, get their own transcripts."""
    backend = EmbeddedAsr(final_beam_size=5, max_batch=4)
    assert backend.scheduler is not None
    backend.scheduler.partial_max_wait_s = 60.0  # a loaded machine must not turn this into a thinning test

    async def turn(pcm: np.ndarray) -> tuple[str, str]:
        stream: EmbeddedAsrStream = backend.open_stream("s", "t")
        half = len(pcm) // 2
        await stream.accept(pcm[:half])
        partial = await stream.hypothesis()
        await stream.accept(pcm[half:])
        final = await stream.final()
        await stream.aclose()
        return partial.text, final.text

    async def run() -> list[tuple[str, str]]:
        out = await asyncio.gather(*(turn(p) for p in windows[:4]))
        await backend.aclose()
        return list(out)

    results = asyncio.run(run())
    d = backend.decoder
    expected = [(d.decode(p[: len(p) // 2], None).text, d.decode(p, None, final=True).text) for p in windows[:4]]
    assert results == expected
    assert backend.scheduler.stats.decoded == 8
