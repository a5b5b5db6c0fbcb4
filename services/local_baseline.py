"""The local baseline: the stages that need no server, used when a remote backend fails.

A Triton or Riva deployment can lose its server mid-turn (killed, frozen, the
network gone). The user should still get an answer, so each stage has a local
stand-in that loads fast and runs on any CPU: Whisper tiny.en (embedded
CTranslate2, the packaged model), the rule tagger, the keyword NLU over the
domain files and espeak-ng. They are weaker than the real models, which is why
they are a fallback and not the default. Loading is lazy and thread-safe, so a
deployment that never needs them pays nothing; :meth:`LocalBaseline.warm`
loads them ahead of time in a thread where the fallback must be quick.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class LocalBaseline:
    """Lazily loaded local stand-ins for the four model stages (see the module doc)."""

    def __init__(self, espeak_voice: str = "en-us", asr_threads: int = 1) -> None:
        self._espeak_voice = espeak_voice
        self._asr_threads = asr_threads
        self._lock = threading.Lock()
        self._loaded: dict[str, Any] = {}

    def _get(self, stage: str) -> Any:
        with self._lock:
            if stage not in self._loaded:
                self._loaded[stage] = self._load(stage)
            return self._loaded[stage]

    def _load(self, stage: str) -> Any:
        if stage == "asr":
            from services.asr.embedded import EmbeddedAsr

            return EmbeddedAsr("tiny.en", threads=self._asr_threads)
        if stage == "disfluency":
            from services.disfluency.rules import RuleTagger

            return RuleTagger()
        if stage == "nlu":
            from domains import load_domains
            from services.nlu.keywords import KeywordNlu

            return KeywordNlu(load_domains())
        if stage == "tts":
            from services.tts.espeak_tts import EspeakTts

            return EspeakTts(self._espeak_voice)
        raise ValueError(f"no local baseline for stage {stage!r}")

    @property
    def asr(self) -> Any:
        """Whisper tiny.en in process (an :class:`~services.asr.base.AsrBackend`)."""
        return self._get("asr")

    @property
    def tagger(self) -> Any:
        """The rule tagger (a :class:`~services.disfluency.base.Tagger`)."""
        return self._get("disfluency")

    @property
    def nlu(self) -> Any:
        """The keyword NLU (an :class:`~services.nlu.base.NluBackend`)."""
        return self._get("nlu")

    @property
    def tts(self) -> Any:
        """espeak-ng (a :class:`~services.tts.base.TtsBackend`)."""
        return self._get("tts")

    def warm(self, stages: tuple[str, ...] = ("asr", "disfluency", "nlu", "tts")) -> threading.Thread:
        """Load ``stages`` in a daemon thread, so the first fallback does not wait for a model load."""

        def load() -> None:
            for stage in stages:
                try:
                    self._get(stage)
                except Exception as exc:  # a missing fallback is reported when it is needed
                    log.warning("local %s fallback unavailable: %s", stage, exc)

        thread = threading.Thread(target=load, name="local-baseline-warm", daemon=True)
        thread.start()
        return thread
