"""Run manifest items through the full pipeline, one process per worker.

Each worker process loads its own :class:`~assistant.components.Components`
once (:func:`init_worker`) and keeps one event loop; :func:`run_task` turns one
item into a result row. Nothing here raises for a bad file: the row says
``"status": "failed"`` with a one-line ``error``.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.components import Components
from assistant.pipeline import Conversation
from assistant.turn_result import run_audio
from core.audio import load_audio
from core.errors import QuickTurnError
from core.events import DialogAction, NluResultEvent, TokensTagged, TranscriptFinal
from core.settings import load_settings
from core.types import OUT_OF_SCOPE
from dialog.manager import META_INTENTS

log = logging.getLogger(__name__)
_STATE: dict[str, Any] = {}


def fast_overrides(workers: int) -> dict[str, Any]:
    """Settings for ``--fast`` (throughput) runs.

    No partial hypotheses (they only feed a live display; the final
    transcript does not depend on them) and the CPU cores split between the
    workers instead of every worker's decoder asking for all of them.
    """
    cores = os.cpu_count() or 1
    return {"asr": {"partial_interval_ms": 10**9, "threads": max(1, cores // max(1, workers))}}


def init_worker(config: str | None, overrides: dict[str, Any], realtime: bool, log_level: int = logging.WARNING) -> None:
    """Load the stages in this process (called once per worker)."""
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")

    t0 = time.perf_counter()
    # With --workers 1 the stages load in the calling process: a second evaluation
    # there must not inherit the first one's load failure.
    _STATE.pop("init_error", None)
    try:
        settings = load_settings(config, overrides)
        tmp = Path(tempfile.mkdtemp(prefix="quickturn-eval-"))
        atexit.register(shutil.rmtree, tmp, True)
        components = Components.load(settings, db_path=tmp / "dialog.sqlite")
    except Exception as exc:  # reported by run_task as a fatal row
        _STATE["init_error"] = str(exc) or type(exc).__name__
        return
    _STATE.update(
        settings=settings,
        components=components,
        realtime=realtime,
        loop=asyncio.new_event_loop(),
        load_s=time.perf_counter() - t0,
        count=0,
    )


def _stack() -> dict[str, object]:
    """Which backend ran each stage (the report's footer)."""
    c = _STATE["components"]
    return {
        "load_s": round(_STATE["load_s"], 2),
        "asr": getattr(c.asr, "name", None),
        "disfluency": getattr(c.tagger, "name", type(c.tagger).__name__),
        "nlu": getattr(c.nlu, "name", type(c.nlu).__name__),
        "dialog": type(c.dialog).__name__,
        "tts": getattr(c.tts, "name", None),
    }


def _failed(task: dict[str, object], error: str, t0: float, **extra: object) -> dict[str, object]:
    return {
        "key": task["key"],
        "audio_filepath": task.get("audio"),
        "line": task.get("line"),
        "status": "failed",
        "error": " ".join(error.split())[:500],
        "reference": task.get("reference") or {},
        "processing_s": round(time.perf_counter() - t0, 3),
        **extra,
    }


def _file_understanding(events: Sequence[object]) -> tuple[str | None, dict[str, str], dict[str, str], list[str]]:
    """Intent, slots (as heard), slot values (normalized) of a whole file, and every turn's intent.

    A recording is one request, but the endpointer ends a turn at any pause of
    ``vad.silence_ms``: "a large latte ... with soy milk" is two turns. This score merges the
    parses: slots merge over the file's turns (a later turn's value wins), turns parsed
    ``out_of_scope`` (a cough, a mumble) are skipped, and a turn with another in-scope intent
    starts over. A single-turn file scores exactly its one parse. Whether the dialog joined the
    turns into one task is :func:`_dialog_understanding`'s score.
    """
    parses = [ev.result for ev in events if isinstance(ev, NluResultEvent)]
    intent: str | None = None
    slots: dict[str, str] = {}
    values: dict[str, str] = {}
    for r in parses:
        if r.intent == OUT_OF_SCOPE:
            continue
        if r.intent != intent:
            intent, slots, values = r.intent, {}, {}
        slots.update(r.slot_dict())
        values.update({s.slot: s.normalized for s in r.slots})
    if intent is None and parses:
        intent = OUT_OF_SCOPE
    return intent, slots, values, [r.intent for r in parses]


_NOT_A_TASK = META_INTENTS | {"Affirm", "Deny", OUT_OF_SCOPE}


def _dialog_understanding(events: Sequence[object], nlu: object) -> tuple[str | None, dict[str, str] | None]:
    """The task the dialog holds at the end of a file: intent and normalized slot values.

    The task of the last reply about one (a meta reply, "sorry, I didn't understand" or a yes/no
    leaves it as it was): what was ordered, amended or is still being asked about, as the dialog
    acts on it. It differs from :func:`_file_understanding` when a later turn's slots did not
    join the task ("with sugar" after the order was placed, taken as a new order or not
    understood). ``(None, None)`` when the dialog backend does not report its task (Rasa).
    """
    actions = [ev for ev in events if isinstance(ev, DialogAction) and ev.action != "notify"]
    if not actions or all(a.frame is None for a in actions):
        return None, None
    normalize = getattr(nlu, "normalize", None)
    for a in reversed(actions):
        if a.intent is not None and a.intent not in _NOT_A_TASK:
            values = {k: str(normalize(k, v)) if normalize is not None else v for k, v in (a.frame or {}).items()}
            return a.intent, values
    return OUT_OF_SCOPE, {}


def _normalized_reference(nlu: object, reference: object) -> dict[str, str] | None:
    """The reference slots as the NLU's normalizer would give them (``None`` without slots or
    without a normalizer: the keyword baseline and remote backends have none here)."""
    normalize = getattr(nlu, "normalize", None)
    slots = reference.get("slots") if isinstance(reference, dict) else None
    if normalize is None or not isinstance(slots, dict):
        return None
    return {str(k): str(normalize(str(k), str(v))) for k, v in slots.items() if str(v).strip()}


def run_task(task: dict[str, object]) -> dict[str, object]:
    """One item → one result row (``status`` ``ok`` or ``failed``)."""
    t0 = time.perf_counter()
    if task.get("error"):
        return _failed(task, str(task["error"]), t0)
    if "init_error" in _STATE:
        return {"key": task["key"], "status": "fatal", "error": f"the pipeline could not load: {_STATE['init_error']}"}
    started = time.time()
    settings = _STATE["settings"]
    components = _STATE["components"]
    loop: asyncio.AbstractEventLoop = _STATE["loop"]
    _STATE["count"] += 1
    try:
        pcm = load_audio(str(task["audio"]), max_seconds=settings.audio.max_file_s)
    except QuickTurnError as exc:
        return _failed(task, str(exc), t0)
    except Exception as exc:  # anything else reading the file
        return _failed(task, f"{task['audio']}: {type(exc).__name__}: {exc}", t0)
    noise = task.get("noise")
    if isinstance(noise, dict):
        from assistant.evaluation.noise import add_noise

        pcm = add_noise(pcm, float(noise["snr_db"]), int(noise["seed"]), str(task["key"]))
    duration = len(pcm) / 16000
    session = f"eval-{os.getpid()}-{_STATE['count']}"
    conv = Conversation(components, session, barge_in=False)
    t1 = time.perf_counter()
    cpu0 = time.process_time()
    try:
        result = loop.run_until_complete(run_audio(conv, pcm, realtime=bool(_STATE["realtime"])))
    except Exception as exc:
        log.debug("pipeline failed on %s\n%s", task["audio"], traceback.format_exc())
        return _failed(task, f"pipeline error: {type(exc).__name__}: {exc}", t0, duration_s=round(duration, 3))
    finally:
        loop.run_until_complete(conv.close())
    finals = [ev.text for ev in result.events if isinstance(ev, TranscriptFinal) and ev.text]
    tagged = [ev for ev in result.events if isinstance(ev, TokensTagged) and ev.final]
    tokens = [[t.word, bool(t.remove)] for t in tagged[-1].tokens] if tagged else []
    file_intent, file_slots, file_values, turn_intents = _file_understanding(result.events)
    dialog_intent, dialog_values = _dialog_understanding(result.events, components.nlu)
    row: dict[str, object] = {
        "key": task["key"],
        "audio_filepath": task["audio"],
        "line": task.get("line"),
        "status": "ok",
        "reference": task.get("reference") or {},
        "duration_s": round(duration, 3),
        # every turn's final transcript: a long recording with pauses is several turns
        "transcript": " ".join(finals),
        "turns": result.turns,
        "last_turn_transcript": result.transcript,
        "clean_transcript": result.clean_transcript,
        "removed": result.removed,
        "restored": result.restored,
        "snapped": [list(p) for p in result.snapped],
        "hypothesis": result.hypothesis,
        "nlu_text": result.nlu_text,
        "tokens": tokens,
        # the whole file's request (see _file_understanding); last_turn_* is the last turn alone
        "intent": file_intent,
        "confidence": None if result.confidence is None else round(result.confidence, 4),
        "slots": file_slots,
        "turn_intents": turn_intents,
        "last_turn_intent": result.intent,
        "last_turn_slots": result.slots,
        # what the dialog acts on: each slot's normalized value, and the reference slots put
        # through the same normalizer (so "dark rose" heard for "dark roast" counts as meant)
        "slot_values": file_values,
        "reference_slot_values": _normalized_reference(components.nlu, task.get("reference")),
        # the task the dialog holds at the end (see _dialog_understanding)
        "dialog_intent": dialog_intent,
        "dialog_slot_values": dialog_values,
        "reply": result.reply,
        "latency_ms": result.latency_ms,
        "turn_decision": result.decision,
        "holds": result.holds,
        "errors": result.errors,
        "processing_s": round(time.perf_counter() - t1, 3),
        # CPU time of this worker process (all its threads) for the file
        "cpu_s": round(time.process_time() - cpu0, 3),
        "started_at": round(started, 3),
        "finished_at": round(time.time(), 3),
        "worker": os.getpid(),
        "stack": _stack(),
    }
    if result.errors:
        row["status"] = "failed"
        row["error"] = "; ".join(result.errors)[:500]
    return row
