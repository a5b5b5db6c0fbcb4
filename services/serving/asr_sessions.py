"""Streaming ASR for many concurrent sequences on one decoder (used by models/asr and the Riva facade).

Each sequence (a user turn) buffers its audio. A request may ask for a
transcript of everything heard so far; those asks go to one decode worker
thread, so ``execute`` in the Triton model returns at once and the sequence
batcher keeps feeding audio of other streams while a decode runs. Policy:

* **finals first**: a stream that has ended (the user stopped talking) is
  decoded before the partials of streams still talking, because the final is
  on the turn's critical path and a partial is not;
* **coalescing**: asks of one stream that pile up while the worker is busy
  are answered by one decode of the newest audio;
* **memo**: a final on the same audio as the last decode (the speculative
  decode at the first silence) reuses it without decoding again;
* **quality**: partials are greedy, finals and speculative finals use the
  decoder's final beam (``decode(..., final=True)``); one decode serves a
  stream's piled-up asks at the best quality any of them needs.

State is freed on END (after the pending answers are sent) and after
``idle_s`` without a request (pending answers get an error).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.types import Hypothesis
from services.serving.sequences import SequenceStates, UnknownSequence

log = logging.getLogger(__name__)

Reply = Callable[[Hypothesis | None, int, BaseException | None], None]
Decode = Callable[..., Hypothesis]
"""``(pcm_int16, hint_words, *, final: bool) -> Hypothesis`` (``WhisperDecoder.decode``)."""
"""Called once per ask: (hypothesis, samples covered, error)."""

__all__ = ["AsrSessions", "Reply", "UnknownSequence"]


@dataclass
class _Stream:
    hints: list[str] | None = None
    chunks: list[np.ndarray] = field(default_factory=list)
    samples: int = 0
    memo: tuple[int, bool, Hypothesis] | None = None  # (samples, final quality, result)
    waiters: list[tuple[Reply, bool]] = field(default_factory=list)
    ended: bool = False
    queued: bool = False


class AsrSessions:
    """Audio buffers keyed by correlation id, served by one decode worker.

    Args:
        decode: ``(pcm_int16, hint_words, *, final) -> Hypothesis`` (``WhisperDecoder.decode``).
        idle_s: drop a stream with no request for this long (seconds).
        max_samples: audio beyond this per stream is refused (30 s at 16 kHz by default).
    """

    def __init__(
        self,
        decode: Decode,
        idle_s: float = 30.0,
        max_samples: int = 30 * 16000,
    ) -> None:
        self._decode = decode
        self.max_samples = max_samples
        self._states: SequenceStates[_Stream] = SequenceStates(_Stream, idle_s, on_drop=self._dropped)
        self._cond = threading.Condition()
        self._finals: deque[str] = deque()
        self._partials: deque[str] = deque()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="asr-decode", daemon=True)
        self._worker.start()

    # -------------------------------------------------------------- requests
    def start(self, corrid: str, hints: list[str] | None) -> None:
        """Open (or restart) a stream."""
        with self._cond:
            stream = self._states.start(corrid)
            stream.hints = hints or None

    def append(self, corrid: str, pcm: np.ndarray) -> None:
        """Add audio to an open stream.

        Raises:
            UnknownSequence: the stream was never started, has ended or expired.
            ValueError: the stream would exceed ``max_samples``.
        """
        with self._cond:
            stream = self._states.get(corrid)
            if pcm.size:
                if stream.samples + pcm.size > self.max_samples:
                    raise ValueError(
                        f"stream {corrid!r} exceeds {self.max_samples / 16000:g} s of audio; end it and start a new one"
                    )
                stream.chunks.append(np.ascontiguousarray(pcm, dtype=np.int16))
                stream.samples += int(pcm.size)

    def ask(self, corrid: str, reply: Reply, *, final: bool, best: bool | None = None) -> None:
        """Queue a transcript of everything heard so far; ``final`` also ends the stream.

        Args:
            best: decode at final quality and ahead of partials (a speculative
                final at a pause); defaults to ``final``.

        Raises:
            UnknownSequence: as :meth:`append`.
        """
        best = final if best is None else best
        with self._cond:
            stream = self._states.get(corrid)
            stream.waiters.append((reply, best))
            if final:
                stream.ended = True
            urgent = stream.ended or best
            if stream.queued and urgent and corrid in self._partials:
                self._partials.remove(corrid)
                stream.queued = False
            if not stream.queued:
                stream.queued = True
                (self._finals if urgent else self._partials).append(corrid)
                self._cond.notify()

    def end(self, corrid: str) -> None:
        """Close a stream without a transcript (pending asks are still answered).

        A pending ask is promoted to the finals queue: a client that ends a
        stream without asking for a final is waiting for its last partial
        (the speculative decode at the first silence) as the final.
        """
        with self._cond:
            stream = self._states.get(corrid)
            stream.ended = True
            if stream.queued and corrid in self._partials:
                self._partials.remove(corrid)
                self._finals.append(corrid)
            if not stream.waiters and not stream.queued:
                self._states.end_if(corrid, stream)

    def discard(self, corrid: str) -> None:
        """Forget a stream whose client went away (no-op when already gone); pending asks still run."""
        with self._cond:
            try:
                stream = self._states.get(corrid)
            except UnknownSequence:
                return
            stream.ended = True
            if not stream.waiters and not stream.queued:
                self._states.end_if(corrid, stream)

    def expire(self) -> list[str]:
        """Drop idle streams (their pending asks get an error); returns their ids."""
        with self._cond:
            return self._states.expire()

    def __len__(self) -> int:
        return len(self._states)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join(timeout=5)

    # ---------------------------------------------------------------- worker
    def _dropped(self, corrid: str, stream: _Stream) -> None:
        log.info("asr stream %s expired after %.0f s idle", corrid, self._states.idle_s)
        err = UnknownSequence(corrid, self._states.idle_s)
        for reply, _best in stream.waiters:
            _safe(reply, None, 0, err)
        stream.waiters.clear()

    def _next(self) -> tuple[str, _Stream, np.ndarray, list[tuple[Reply, bool]]] | None:
        with self._cond:
            while not self._closed:
                queue = self._finals or self._partials
                if queue:
                    corrid = queue.popleft()
                    try:
                        stream = self._states.get(corrid)
                    except UnknownSequence:
                        continue
                    stream.queued = False
                    waiters, stream.waiters = stream.waiters, []
                    if len(stream.chunks) > 1:
                        stream.chunks = [np.concatenate(stream.chunks)]
                    audio = stream.chunks[0] if stream.chunks else np.zeros(0, np.int16)
                    return corrid, stream, audio, waiters
                self._cond.wait(timeout=1.0)
                self._states.expire()
            return None

    def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            corrid, stream, audio, waiters = job
            n = int(audio.size)
            best = any(b for _, b in waiters)
            hyp: Hypothesis | None = None
            error: BaseException | None = None
            memo = stream.memo
            if memo is not None and memo[0] == n and (memo[1] or not best):
                hyp = memo[2]
            else:
                try:
                    hyp = self._decode(audio, stream.hints, final=best)
                    stream.memo = (n, best, hyp)
                except Exception as exc:  # one bad decode fails its asks, not the worker
                    log.exception("decode of stream %s failed", corrid)
                    error = exc
            for reply, _best in waiters:
                _safe(reply, hyp, n, error)
            with self._cond:
                if stream.ended and not stream.waiters and not stream.queued:
                    self._states.end_if(corrid, stream)


def _safe(reply: Reply, hyp: Hypothesis | None, n: int, error: BaseException | None) -> None:
    try:
        reply(hyp, n, error)
    except Exception:  # a failed send (client gone) must not stop the worker
        log.exception("sending an ASR answer failed")
