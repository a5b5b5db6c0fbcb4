"""Load every stage once per process, as the settings name them.

Loading is the slow part (model files are hashed and sessions created), so
the CLI, the web server and the evaluator build one :class:`Components` and
share it across sessions; per-stream state lives in the streams, not here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InvalidInput
from core.settings import Settings
from dialog.backends import load_dialog
from dialog.base import DialogBackend
from services.asr.base import AsrBackend
from services.disfluency.base import Tagger
from services.nlu.base import NluBackend
from services.registry import load_stages
from services.tts.base import TtsBackend
from services.vad.silero import SileroVad

log = logging.getLogger(__name__)


@dataclass
class Components:
    """The loaded stages. ``asr`` is None when only text turns are needed."""

    settings: Settings
    vad_factory: Callable[[], SileroVad]
    asr: AsrBackend | None
    tagger: Tagger
    nlu: NluBackend
    dialog: DialogBackend
    tts: TtsBackend
    load_ms: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, settings: Settings, *, need_asr: bool = True, db_path: Path | None = None) -> Components:
        """Load the stages (ASR only if ``need_asr``); ``db_path`` is the dialog's SQLite file."""
        timings: dict[str, float] = {}
        if need_asr and settings.asr.hint_domains:
            # Checked here so a misspelt domain stops the start, not the first turn.
            from services.asr.hints import vocabulary_hint_words

            try:
                vocabulary_hint_words(tuple(settings.asr.hint_domains))
            except ValueError as exc:
                raise InvalidInput(str(exc)) from exc

        def timed(name: str, fn: Callable[[], object]) -> object:
            t0 = time.perf_counter()
            value = fn()
            timings[name] = (time.perf_counter() - t0) * 1000
            return value

        stages = load_stages(settings, need_asr=need_asr, timed=timed)
        dialog = timed("dialog", lambda: load_dialog(settings, db_path))
        return cls(settings=settings, vad_factory=SileroVad, asr=stages.asr, tagger=stages.tagger, nlu=stages.nlu,
                   dialog=dialog, tts=stages.tts, load_ms=timings)


