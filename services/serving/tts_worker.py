"""Streaming synthesis for the Triton tts model and the Riva facade.

A few worker threads (``workers``; each text stays on one thread) take texts in
order, splits each into phrases (:func:`core.text.split_phrases`,
first phrase short), and hands the audio of each phrase to ``emit`` as soon as
it is synthesized, cut into chunks of at most ``max_chunk_ms``. ``cancelled``
is checked between phrases; ``done`` is always called last, exactly once per
text, so a decoupled model can always send its FINAL flag.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from core.text import split_phrases

log = logging.getLogger(__name__)


def phrase_chunks(synthesize: Callable[[str], np.ndarray], text: str, chunk_samples: int,
                  cancelled: Callable[[], bool] = lambda: False) -> Iterator[tuple[int, np.ndarray]]:
    """(phrase index, int16 chunk) pairs; stops before a phrase once ``cancelled()``."""
    for index, phrase in enumerate(split_phrases(text)):
        if cancelled():
            return
        audio = synthesize(phrase)
        for start in range(0, max(len(audio), 1), chunk_samples):
            yield index, audio[start : start + chunk_samples]


@dataclass
class TtsJob:
    text: str
    emit: Callable[[int, np.ndarray], None]
    done: Callable[[BaseException | None, bool], None]  # (error, cancelled)
    cancelled: Callable[[], bool]


class TtsWorker:
    """Runs :class:`TtsJob` s in order on one thread.

    Args:
        synthesize: ``text -> int16`` at ``sample_rate_hz`` (a :class:`~services.tts.FallbackTts`);
            must be thread-safe when ``workers > 1`` (onnxruntime sessions are).
        max_chunk_ms: longest audio chunk handed to ``emit``.
        workers: texts synthesized at once (a first phrase of one turn need not
            wait for the whole reply of another).
    """

    def __init__(self, synthesize: Callable[[str], np.ndarray], sample_rate_hz: int, max_chunk_ms: int = 1000,
                 workers: int = 1) -> None:
        self._synthesize = synthesize
        self.sample_rate_hz = sample_rate_hz
        self.chunk_samples = max(1, sample_rate_hz * max_chunk_ms // 1000)
        self._jobs: queue.Queue[TtsJob | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._run, name=f"tts-worker-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for t in self._threads:
            t.start()

    def submit(self, job: TtsJob) -> None:
        self._jobs.put(job)

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join(timeout=10)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            error: BaseException | None = None
            try:
                for index, chunk in phrase_chunks(self._synthesize, job.text, self.chunk_samples, job.cancelled):
                    job.emit(index, chunk)
            except Exception as exc:  # this text only; the worker goes on
                log.exception("synthesis failed")
                error = exc
            try:
                job.done(error, job.cancelled())
            except Exception:
                log.exception("finishing a TTS job failed")
