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

from assistant.errors import InvalidInput, QuickTurnError
from assistant.settings import Settings
from dialog.base import DialogBackend
from services.asr.base import AsrBackend
from services.disfluency.base import Tagger
from services.nlu.base import NluBackend
from services.tts import FallbackTts, load_tts
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
    tts: FallbackTts  # or any object with ``name``, ``sample_rate_hz`` and ``synthesize(text) -> int16``
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

        if settings.backend.uri != "embedded":
            # Remote stages (Triton / Riva): one module maps the URI to clients
            # that satisfy the same protocols as the embedded backends.
            try:
                from services.remote import remote_stages
            except ImportError as exc:
                raise QuickTurnError(
                    f"backend {settings.backend.uri!r} is not available in this build ({exc})", code="backend-unavailable"
                ) from exc
            stages = timed("remote", lambda: remote_stages(settings, need_asr=need_asr))
            asr, tagger, nlu, tts = stages  # type: ignore[misc]
            dialog = timed("dialog", lambda: load_dialog(settings, db_path))
            return cls(settings=settings, vad_factory=SileroVad, asr=asr, tagger=tagger, nlu=nlu, dialog=dialog,
                       tts=tts, load_ms=timings)
        asr: AsrBackend | None = None
        if need_asr:
            asr = timed("asr", lambda: load_asr(settings))  # type: ignore[assignment]
        from services.disfluency import load_tagger
        from services.nlu import load_nlu

        tagger = timed("disfluency", lambda: load_tagger(settings))
        nlu = timed("nlu", lambda: load_nlu(settings))
        dialog = timed("dialog", lambda: load_dialog(settings, db_path))
        tts = timed("tts", lambda: load_tts(settings.tts.engine, settings.tts.cache_phrases, settings.tts.espeak_voice))
        return cls(
            settings=settings,
            vad_factory=SileroVad,
            asr=asr,
            tagger=tagger,  # type: ignore[arg-type]
            nlu=nlu,  # type: ignore[arg-type]
            dialog=dialog,  # type: ignore[arg-type]
            tts=tts,  # type: ignore[arg-type]
            load_ms=timings,
        )


def load_asr(settings: Settings) -> AsrBackend:
    """The ASR backend named by ``settings.backend.uri``."""
    uri = settings.backend.uri
    if uri == "embedded":
        from services.asr.embedded import EmbeddedAsr

        a = settings.asr
        return EmbeddedAsr(a.model, a.threads, a.min_window_s, a.tokens_per_second, a.beam_size, a.fallback_window_s,
                           a.final_beam_size, a.timestamp_cut)
    scheme = uri.split("://", 1)[0]
    raise QuickTurnError(
        f"backend {uri!r} is not available in this build (valid: embedded); "
        f"the {scheme} client backend is not implemented yet",
        code="backend-unavailable",
    )


def load_dialog(settings: Settings, db_path: Path | None) -> DialogBackend:
    """The backend ``settings.dialog.backend`` names: the stateful dialog manager (``embedded``;
    the templated baseline if it cannot load) or a Rasa server (``rasa://HOST:PORT``)."""
    backend = settings.dialog.backend
    if backend != "embedded":
        if not backend.startswith(("rasa://", "http://", "https://")):
            raise QuickTurnError(f"dialog backend {backend!r}: use embedded or rasa://HOST:PORT", code="invalid-input")
        from dialog.rasa_backend import RasaDialog

        rasa = RasaDialog(backend, settings.dialog.timeout_s, settings.dialog.rasa_nlu)
        log.info("dialog: Rasa server %s (%s)", rasa.base_url, rasa.status())
        return rasa  # type: ignore[return-value]
    try:
        from dialog.manager import DialogManager

        return DialogManager(db_path)  # type: ignore[return-value]
    except (ImportError, QuickTurnError) as exc:
        log.warning("stateful dialog manager unavailable (%s); using the templated baseline", exc)
        from dialog.templated import TemplatedDialog

        return TemplatedDialog()
