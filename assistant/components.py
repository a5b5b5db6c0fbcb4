"""Load every stage once per process, as the settings name them.

Loading is the slow part (model files are hashed and sessions created), so
the CLI, the web server and the evaluator build one :class:`Components` and
share it across sessions; per-stream state lives in the streams, not here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.stage_guard import StageGuard
from core.errors import InvalidInput
from core.settings import Settings
from dialog.backends import load_dialog
from dialog.base import DialogBackend
from domains.lexicon import DomainLexicon
from services.asr.base import AsrBackend
from services.disfluency.base import Tagger
from services.local_baseline import LocalBaseline
from services.nlu import load_lexicon
from services.nlu.base import NluBackend
from services.registry import load_stages, remote_stages
from services.tts.base import TtsBackend
from services.vad.silero import SileroModel, SileroVad, load_silero

if TYPE_CHECKING:
    from services.turn.smart_turn import SmartTurn

log = logging.getLogger(__name__)


@dataclass
class Components:
    """The loaded stages. ``asr`` is None when only text turns are needed."""

    settings: Settings
    vad_factory: Callable[[], SileroVad]
    """A new VAD stream per session: its own state on the one shared Silero model (a model per
    session cost each connection ~1.3 MB of native heap for good, docs/experiments/memory-churn.md)."""
    asr: AsrBackend | None
    tagger: Tagger
    nlu: NluBackend
    dialog: DialogBackend
    tts: TtsBackend
    smart_turn: SmartTurn | None = None
    """The audio end-of-turn model (semantic turn policy with ``turn.smart_turn``), shared by every session."""
    load_ms: dict[str, float] = field(default_factory=dict)
    guard: StageGuard = field(default_factory=lambda: StageGuard(1.5))
    """Deadlines and circuits for the stage calls (:mod:`assistant.stage_guard`), shared by every session."""
    baseline: LocalBaseline | None = None
    """The local stand-ins used when a stage fails (None: ``backend.fallback`` is off)."""
    lexicon: DomainLexicon | None = None
    """The closed vocabulary misheard words are snapped to before the NLU (``lexicon_domains``; None: off)."""


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
        turn = settings.turn
        smart_turn = None
        if need_asr and turn.policy == "semantic" and turn.smart_turn:
            from services.turn.smart_turn import load_smart_turn  # onnxruntime + features: only when used

            smart_turn = timed("smart_turn", load_smart_turn)
        b = settings.backend
        guard = StageGuard(b.deadline_s, b.retry_after_s, b.uri, remote_stages(b.uri, need_asr))
        baseline = LocalBaseline(settings.tts.espeak_voice) if b.fallback else None
        if baseline is not None and guard.remote_stages:
            # A remote deployment loads its fallbacks now (in a thread), so the first fault is answered fast.
            baseline.warm(tuple(sorted(guard.remote_stages | {"disfluency", "nlu"})))
        lexicon = load_lexicon(settings)
        vad = timed("vad", load_silero)  # here, not in the first session's handshake on the event loop
        assert isinstance(vad, SileroModel)
        return cls(settings=settings, vad_factory=vad.stream, asr=stages.asr, tagger=stages.tagger, nlu=stages.nlu,
                   dialog=dialog, tts=stages.tts, smart_turn=smart_turn, load_ms=timings, guard=guard,
                   baseline=baseline, lexicon=lexicon)




def reply_openers() -> list[str]:
    """The first phrase of every response template that has no variable in it ("Sure.", "Okay,",
    "For how long?"): what most replies start with, so worth synthesizing before the first turn."""
    from core.text import split_phrases
    from dialog.responses import Responses

    out: dict[str, None] = {}
    for variants in Responses().templates.values():
        for variant in variants:
            phrases = split_phrases(variant)
            if phrases and "{" not in phrases[0]:
                out[phrases[0]] = None
    return list(out)


def warm_replies(components: Components, stop: threading.Event | None = None) -> int:
    """Fill the TTS phrase cache with :func:`reply_openers` (a no-op for an engine without a cache);
    ``stop`` ends it after the phrase in progress. The dialog's own start-up caches first
    (:meth:`dialog.base.DialogBackend.warm`)."""
    try:
        components.dialog.warm()
    except Exception:  # an optimisation: a failure must not stop the TTS warm-up or the server
        log.debug("dialog warm-up failed", exc_info=True)
    if not components.settings.tts.cache_phrases:
        return 0
    t0 = time.perf_counter()
    added = 0
    for phrase in reply_openers():
        if stop is not None and stop.is_set():
            break
        added += components.tts.warm([phrase])
    log.info("TTS cache warmed with %d reply openers in %.1f s", added, time.perf_counter() - t0)
    return added


def warm_in_background(components: Components) -> Callable[[], None]:
    """Run :func:`warm_replies` in a thread, so a server or a microphone session starts at once;
    returns the function that stops it and waits for it (call it before exiting: a synthesis still
    running in a native thread at interpreter exit aborts the process)."""
    stop = threading.Event()
    thread = threading.Thread(target=warm_replies, args=(components, stop), name="warm-replies", daemon=True)
    thread.start()

    def done() -> None:
        stop.set()
        thread.join(timeout=30)

    return done
