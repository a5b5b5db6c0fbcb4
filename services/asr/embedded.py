"""In-process Whisper ASR (CTranslate2), decodes in a worker thread."""

from __future__ import annotations

import asyncio
import functools

import numpy as np

from core.types import Hypothesis
from services.asr.base import AsrBackend, AsrStream
from services.asr.decoder import WhisperDecoder
from services.model_files import WHISPER_TINY_EN, verified_dir


class EmbeddedAsrStream(AsrStream):
    """Buffers one turn's audio; decodes are memoized by buffer length."""

    def __init__(self, decoder: WhisperDecoder, hint_words: list[str] | None) -> None:
        self._decoder = decoder
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
            loop = asyncio.get_running_loop()
            fut = loop.run_in_executor(None, functools.partial(self._decoder.decode, audio, self._hints, final=final))
            # Results for shorter audio are stale; keep only this length.
            self._pending = {k: v for k, v in self._pending.items() if k[0] == self._samples}
            self._pending[key] = fut
        return fut

    async def hypothesis(self) -> Hypothesis:
        """A partial: greedy decode of the audio so far."""
        return await asyncio.shield(self._decode_now(final=False))

    async def speculate(self) -> Hypothesis:
        """A final-quality decode of the audio so far (at a pause); :meth:`final` reuses it if no audio follows."""
        return await asyncio.shield(self._decode_now(final=True))

    async def final(self) -> Hypothesis:
        return await asyncio.shield(self._decode_now(final=True))

    async def aclose(self) -> None:
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
                 final_beam_size: int | None = None, timestamp_cut: bool = False) -> None:
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

    def open_stream(self, session_id: str, turn_id: str, hint_words: list[str] | None = None) -> EmbeddedAsrStream:
        return EmbeddedAsrStream(self.decoder, hint_words)

    async def aclose(self) -> None:
        return None
