"""One shared Silero session gives every stream the probabilities a session of its own would.

The web server used to build an onnxruntime session per connection; it now builds one per
process and gives each stream its own state (docs/experiments/memory-churn.md). These tests
hold the behaviour to the old one on real recordings (``../shared/data/speech-samples``):
the same probability for every frame, bit for bit, so the endpointer takes the same
decisions, even when other streams run on the same session in between or at the same time.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from assistant.speech_samples import speech_samples
from core.audio import load_audio
from services.vad.endpointing import Endpointer, EndpointEvent
from services.vad.silero import FRAME_SAMPLES, SileroModel, SileroVad, load_silero


def _frames(pcm: np.ndarray) -> list[np.ndarray]:
    n = len(pcm) // FRAME_SAMPLES
    return [pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES] for i in range(n)]


def _alone(frames: list[np.ndarray]) -> list[float]:
    """The old behaviour: a stream on a session of its own, built fresh for it."""
    vad = SileroVad(SileroModel())
    return [vad(f) for f in frames]


def _decisions(probabilities: list[float]) -> list[EndpointEvent]:
    ep = Endpointer(silence_ms=400)
    return [d for p in probabilities for d in ep.push(p)]


@pytest.fixture(scope="module")
def recordings(shared_dir: Path) -> dict[str, list[np.ndarray]]:
    samples = dict((p.name, p) for p, _ in speech_samples(shared_dir))
    names = ["goforward.wav", "sense_and_sensibility_01_austen_64kb-0870.wav"]
    # Trailing silence, so the recording's end of speech is decided too.
    return {n: _frames(np.concatenate([load_audio(samples[n]), np.zeros(16000, np.int16)])) for n in names}


def test_recordings_have_speech_and_silence(recordings: dict[str, list[np.ndarray]]) -> None:
    """The comparisons below mean something only if the probabilities cross the threshold both ways."""
    for name, frames in recordings.items():
        probs = _alone(frames)
        assert max(probs) > 0.9 and min(probs) < 0.1, name
        kinds = [d.kind for d in _decisions(probs)]
        assert "start" in kinds and "end" in kinds, (name, kinds)


def test_interleaved_streams_on_the_shared_session_equal_fresh_sessions(recordings: dict[str, list[np.ndarray]]) -> None:
    """Two streams fed frame by frame in turn on the one shared session: each gets exactly its own
    probabilities (a state kept in the model, or a context aliased between streams, would change them)."""
    (a_name, a), (b_name, b) = recordings.items()
    model = load_silero()
    va, vb = model.stream(), SileroVad()  # the default model is the shared one too
    assert vb._model is model
    got_a: list[float] = []
    got_b: list[float] = []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            got_a.append(va(a[i]))
        if i < len(b):
            got_b.append(vb(b[i]))
    for name, frames, got in ((a_name, a, got_a), (b_name, b, got_b)):
        expected = _alone(frames)
        differing = [i for i, (x, y) in enumerate(zip(got, expected, strict=True)) if x != y]
        assert not differing, f"{name}: {len(differing)} frames differ, from frame {differing[:1]}"
        assert _decisions(got) == _decisions(expected)


def test_reset_starts_a_stream_over(recordings: dict[str, list[np.ndarray]]) -> None:
    """``reset`` on a used stream gives a new stream's probabilities (the pipeline reuses nothing, but callers may)."""
    frames = next(iter(recordings.values()))
    vad = load_silero().stream()
    first = [vad(f) for f in frames]
    vad.reset()
    assert [vad(f) for f in frames] == first == _alone(frames)


def test_streams_in_threads_share_the_session_safely(recordings: dict[str, list[np.ndarray]]) -> None:
    """Four streams at once from four threads (the VAD may run off the event loop): each equals its fresh run."""
    model = load_silero()
    jobs = [frames for frames in recordings.values() for _ in range(2)]
    results: list[list[float]] = [[] for _ in jobs]
    start = threading.Barrier(len(jobs))

    def run(k: int) -> None:
        vad = model.stream()
        start.wait()
        results[k] = [vad(f) for f in jobs[k]]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for frames, got in zip(jobs, results, strict=True):
        assert got == _alone(frames)


def test_one_model_per_process() -> None:
    """Every stream uses the one session: building one per stream is what cost each connection its memory."""
    assert load_silero() is load_silero()
    assert SileroVad()._model is SileroVad()._model is load_silero()
