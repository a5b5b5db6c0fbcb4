"""In-process Whisper ASR (CTranslate2), decodes in a worker thread.

Concurrent streams share one decoder. With ``max_batch`` > 1 (the default) their
decodes go through :class:`~services.asr.batching.BatchScheduler`, which decodes
the requests of several streams in one call and puts finals before partials;
``max_batch=1`` keeps the former path (each decode on its own in the default
executor), for comparison (``quickturn bench capacity --no-batching``).

Settings: ``asr.max_batch``, ``asr.batch_delay_ms``, ``asr.batch_finals``
(``QUICKTURN_ASR__MAX_BATCH`` etc. in the environment).
"""

from __future__ import annotations

import asyncio
import functools
import itertools

import numpy as np

from core.types import Hypothesis
from services.asr.base import AsrBackend, AsrStream
from services.asr.batching import DEFAULT_MAX_BATCH, BatchScheduler
from services.asr.decoder import WhisperDecoder
from services.model_files import WHISPER_TINY_EN, verified_dir

_stream_ids = itertools.count()


class EmbeddedAsrStream(AsrStream):
    """Buffers one turn's audio; decodes are memoized by buffer length."""

    def __init__(self, decoder: WhisperDecoder, hint_words: list[str] | None,
                 scheduler: BatchScheduler | None = None) -> None:
        self._decoder = decoder
        self._scheduler = scheduler
        self._id = next(_stream_ids)
        self._hints = hint_words
        self._chunks: list[np.ndarray] = []
        self._samples = 0
        self._pending: dict[tuple[int, bool], asyncio.Future[Hypothesis]] = {}

    async def accept(self, pcm: np.ndarray) -> None:
        self._chunks.append(pcm.astype(np.int16, copy=False))
        self._samples += len(pcm)

    def _decode_now(self, final: bool) -> asyncio.Future[Hypothesis]:
        key = (self._samples, final)
        fut = self._pending.get(key)
        if fut is None:
            audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            if self._scheduler is not None:
                fut = asyncio.wrap_future(self._scheduler.submit(audio, self._hints, final=final, stream=self._id))
            else:
                loop = asyncio.get_running_loop()
                fut = loop.run_in_executor(None, functools.partial(self._decoder.decode, audio, self._hints,
                                                                   final=final))
            # Results for shorter audio are stale; keep only this length.
            self._pending = {k: v for k, v in self._pending.items() if k[0] == self._samples}
            self._pending[key] = fut
        return fut

    async def hypothesis(self) -> Hypothesis:
        """A partial: greedy decode of the audio so far (empty text when the batcher thinned it under load)."""
        return await asyncio.shield(self._decode_now(final=False))

    async def speculate(self) -> Hypothesis:
        """A final-quality decode of the audio so far (at a pause); :meth:`final` reuses it if no audio follows."""
        return await asyncio.shield(self._decode_now(final=True))

    async def final(self) -> Hypothesis:
        return await asyncio.shield(self._decode_now(final=True))

    async def aclose(self) -> None:
        if self._scheduler is not None:
            self._scheduler.forget(self._id)
        self._chunks.clear()
        self._pending.clear()

    @property
    def audio_s(self) -> float:
        return self._samples / 16000


class EmbeddedAsr(AsrBackend):
    """Whisper tiny.en (or base) from the packaged CTranslate2 model."""

    name = "embedded"

    def __init__(self, model: str = "tiny.en", threads: int = 2, min_window_s: float = 6.0,
                 tokens_per_second: float = 6.0, beam_size: int = 1, fallback_window_s: float = 10.0,
                 final_beam_size: int | None = None, timestamp_cut: bool = False, max_batch: int = DEFAULT_MAX_BATCH,
                 batch_delay_ms: float = 0.0, batch_finals: bool = False, n_best: int = 1) -> None:
        """``max_batch``: most streams decoded in one call (1: no cross-stream batching); ``batch_delay_ms``:
        how long an idle decoder waits for more requests (0: start at once); ``batch_finals``: batch the
        beam-search finals too (:class:`~services.asr.batching.BatchScheduler`); ``n_best``: hypotheses a
        final decode returns (``Hypothesis.alternatives`` holds the others)."""
        if model == "base":
            from services.asr.whisper_base import whisper_base_dir

            directory, english_only = whisper_base_dir(), False
        else:
            directory, english_only = verified_dir(WHISPER_TINY_EN), True
        self.decoder = WhisperDecoder(
            directory,
            threads=threads,
            min_window_s=min_window_s,
            fallback_window_s=fallback_window_s,
            tokens_per_second=tokens_per_second,
            beam_size=beam_size,
            final_beam_size=final_beam_size,
            english_only=english_only,
            timestamp_cut=timestamp_cut,
        )
        self.decoder.n_best = max(1, n_best)
        self.max_batch = max(1, max_batch)
        self.scheduler = (BatchScheduler(self.decoder, max_batch=self.max_batch, queue_delay_ms=batch_delay_ms,
                                         batch_finals=batch_finals)
                          if self.max_batch > 1 else None)

    def open_stream(self, session_id: str, turn_id: str, hint_words: list[str] | None = None) -> EmbeddedAsrStream:
        return EmbeddedAsrStream(self.decoder, hint_words, self.scheduler)

    async def aclose(self) -> None:
        """Stops the batch worker (after its queued finals) in a thread: joining it must not block the loop."""
        if self.scheduler is not None:
            await asyncio.to_thread(self.scheduler.close)
