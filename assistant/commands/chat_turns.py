"""``quickturn chat --turns FILE``: a recording of any length, streamed through one conversation.

Why: ``chat`` holds one utterance (``audio.max_utterance_s``) in memory and explains it; a
recorded session with several requests, or an hour of a kitchen microphone, is another job.
This mode reads the file from disk in blocks (:func:`core.audio.stream_audio`: header checked
first, decoded and resampled as it goes), feeds a single conversation as a microphone would,
and reports each turn as soon as it has ended, so memory holds one block and the turns not yet
reported, never the whole recording, and a long file shows progress from its first turn.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from assistant.components import Components
from assistant.pipeline import Conversation
from assistant.turn_result import TurnResult, collect
from core.audio import stream_audio
from core.events import Event, StageMetrics
from core.settings import Settings

FRAME = 512  # 32 ms at 16 kHz: what the VAD takes


class TurnSplitter:
    """Groups a conversation's events by turn and hands back each turn once its pipeline metrics
    (the last event of an answered turn) arrived; :meth:`rest` gives what is left at the end."""

    def __init__(self) -> None:
        self._turns: dict[str, list[Event]] = {}
        self._current = ""

    def add(self, events: list[Event]) -> list[list[Event]]:
        done: list[list[Event]] = []
        for ev in events:
            key = self._current = ev.turn_id or self._current
            self._turns.setdefault(key, []).append(ev)
            if isinstance(ev, StageMetrics) and ev.stage == "pipeline" and ev.turn_id:
                done.append(self._turns.pop(ev.turn_id))
        return done

    def rest(self) -> list[list[Event]]:
        out = [evs for evs in self._turns.values() if evs]
        self._turns.clear()
        return out


def _frames(pcm: np.ndarray, carry: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Whole VAD frames of ``carry + pcm`` and what is left over for the next block."""
    data = np.concatenate([carry, pcm]) if carry.size else pcm
    n = len(data) // FRAME * FRAME
    return [data[i : i + FRAME] for i in range(0, n, FRAME)], data[n:]


async def _blocks(path: Path, max_seconds: float) -> Any:
    """The file's 16 kHz blocks, each read in a worker thread (disk and decoding stay off the loop)."""
    it: Iterator[np.ndarray] = stream_audio(path, max_seconds=max_seconds)
    end = object()
    while True:
        block = await asyncio.to_thread(next, it, end)
        if block is end:
            return
        yield block


async def stream_turns(settings: Settings, path: Path, *, db_path: Path, session: str | None, realtime: bool,
                       emit: Any) -> tuple[int, int]:
    """Stream ``path`` through one conversation, calling ``emit(n, seconds_in, TurnResult)`` for every
    turn as it ends. Returns (turns, turns with an error)."""
    components = Components.load(settings, db_path=db_path)
    conv = Conversation(components, session, barge_in=False)
    splitter = TurnSplitter()
    turns = failed = 0
    fed = 0
    carry = np.zeros(0, np.int16)
    t0 = time.monotonic()

    def report(groups: list[list[Event]]) -> None:
        nonlocal turns, failed
        for events in groups:
            result = TurnResult.from_events(events)
            if not (result.transcript or result.errors or result.reply):
                continue  # a breath or a click: a turn the VAD opened and nothing came of
            turns += 1
            failed += bool(result.errors)
            emit(turns, fed / 16000, result)

    async for block in _blocks(path, settings.audio.max_stream_s):
        frames, carry = _frames(block, carry)
        for frame in frames:
            await conv.feed(frame)
            fed += FRAME
            if realtime:
                delay = t0 + fed / 16000 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
        if not realtime:
            await asyncio.sleep(0)
        report(splitter.add(collect(conv)))
    if carry.size:
        await conv.feed(np.concatenate([carry, np.zeros(FRAME - carry.size, np.int16)]))
    await conv.flush(realtime=realtime)
    report(splitter.add(collect(conv)))
    report(splitter.rest())
    return turns, failed


def print_turn(n: int, seconds: float, result: TurnResult, as_json: bool) -> None:
    """One line per turn: JSON (the fields of ``chat --json`` plus the turn's number and position)
    or a short human line."""
    if as_json:
        print(json.dumps({"turn": n, "reported_at_s": round(seconds, 2), **result.to_json()}), flush=True)
        return
    head = f"[{n}] {seconds:7.1f} s  {result.transcript or '(no transcript)'}"
    tail = f" → {result.intent or '-'}: {result.reply}" if result.reply else ""
    errs = f"  ({'; '.join(result.errors)})" if result.errors else ""
    print(head + tail + errs, flush=True)
