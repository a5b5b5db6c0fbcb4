"""Streaming TTS: piper first, espeak-ng when piper is missing or fails."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import numpy as np

from core.audio import resample, to_pcm16
from services.tts.base import TtsBackend

log = logging.getLogger(__name__)


class FallbackTts(TtsBackend):
    """Tries the primary engine and falls back (per phrase) to the secondary.

    Also keeps an LRU cache of synthesized phrases: replies reuse short
    acknowledgements ("Okay.", "Sure,") whose audio never changes, so the
    first chunk of most replies costs a dictionary lookup.
    """

    def __init__(self, primary: TtsBackend | None, fallback: TtsBackend | None, cache_size: int = 256) -> None:
        if primary is None and fallback is None:
            from core.errors import BackendUnavailable

            raise BackendUnavailable("no TTS engine available: install piper-tts or espeak-ng")
        self.primary = primary
        self.fallback = fallback
        engine = primary or fallback
        assert engine is not None
        self.name = engine.name
        self.sample_rate_hz = engine.sample_rate_hz
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()  # phrases are synthesized in worker threads

    def synthesize(self, text: str) -> np.ndarray:
        key = text.strip()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        audio = self._synthesize_uncached(key)
        if self._cache_size and len(key.split()) <= 6:
            with self._lock:
                self._cache[key] = audio
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return audio

    def warm(self, phrases: list[str]) -> int:
        """Synthesize ``phrases`` into the cache (the first phrases of the reply templates, at start-up),
        so a reply's first audio is a lookup from the first turn on; returns how many were added."""
        added = 0
        for phrase in phrases[: self._cache_size]:
            key = phrase.strip()
            if not key or len(key.split()) > 6:
                continue
            with self._lock:
                if key in self._cache:
                    continue
            self.synthesize(key)
            added += 1
        return added

    def _synthesize_uncached(self, text: str) -> np.ndarray:
        if self.primary is not None:
            try:
                return self._convert(self.primary.synthesize(text), self.primary.sample_rate_hz)
            except Exception as exc:  # any engine failure → fallback voice, never silence
                if self.fallback is None:
                    raise
                log.warning("%s failed (%s); using %s", self.primary.name, exc, self.fallback.name)
        assert self.fallback is not None
        return self._convert(self.fallback.synthesize(text), self.fallback.sample_rate_hz)

    def _convert(self, audio: np.ndarray, rate: int) -> np.ndarray:
        if rate == self.sample_rate_hz:
            return audio

        return to_pcm16(resample(audio.astype(np.float32) / 32768.0, rate, self.sample_rate_hz))


def load_tts(engine: str = "piper", cache_size: int = 256, espeak_voice: str = "en-us") -> FallbackTts:
    """Build the TTS chain named by settings (``piper`` with espeak fallback, or ``espeak``)."""
    primary: TtsBackend | None = None
    fallback: TtsBackend | None = None
    try:
        from services.tts.espeak_tts import EspeakTts

        fallback = EspeakTts(espeak_voice)
    except Exception as exc:
        log.warning("espeak-ng unavailable: %s", exc)
    if engine == "piper":
        try:
            from services.tts.piper_tts import PiperTts

            primary = PiperTts()
        except Exception as exc:
            log.warning("piper unavailable (%s); using espeak-ng", exc)
    return FallbackTts(primary, fallback, cache_size=cache_size)
