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
  stream's piled-up asks at the best quality any of them needs;
* **batching** (with ``decode_batch``): partials of several streams waiting
  together are decoded in one call, up to ``max_batch``, when their
  ``batch_key`` is equal (same prompt length and window: the results are the
  ones each gives alone). Finals stay one at a time: batched beam searches wait
  for their longest, looping member, and at four real-time streams that made
  replies slower (docs/scaling.md), as in the embedded scheduler
  (:mod:`services.asr.batching`). Triton's sequence batcher stays ``direct``
  with no queue delay: the grouping happens here, over what is already waiting.

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
"""Called once per ask: (hypothesis, samples covered, error)."""
Decode = Callable[..., Hypothesis]
"""``(pcm_int16, hint_words, *, final: bool) -> Hypothesis`` (``WhisperDecoder.decode``)."""
DecodeBatch = Callable[..., list[Hypothesis]]
"""``([(pcm_int16, hint_words), ...], *, final: bool) -> [Hypothesis]`` (``WhisperDecoder.decode_batch``)."""
BatchKey = Callable[..., object]
"""``(n_samples, hint_words, *, final: bool) -> key`` (``WhisperDecoder.batch_key``)."""
_Job = tuple[str, "_Stream", np.ndarray, list[tuple[Reply, bool]]]

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
        decode_batch, batch_key: ``WhisperDecoder.decode_batch`` and ``batch_key``; without them
            every decode is one stream's.
        max_batch: most partials decoded in one call.
    """

    def __init__(
        self,
        decode: Decode,
        idle_s: float = 30.0,
        max_samples: int = 30 * 16000,
        *,
        decode_batch: DecodeBatch | None = None,
        batch_key: BatchKey | None = None,
        max_batch: int = 4,
    ) -> None:
        self._decode = decode
        self._decode_batch = decode_batch if batch_key is not None else None
        self._batch_key = batch_key
        self.max_batch = max(1, max_batch)
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

    def _take(self, corrid: str) -> _Job | None:
        """Dequeue one stream's asks and its audio so far (caller holds the lock)."""
        try:
            stream = self._states.get(corrid)
        except UnknownSequence:
            return None
        stream.queued = False
        waiters, stream.waiters = stream.waiters, []
        if len(stream.chunks) > 1:
            stream.chunks = [np.concatenate(stream.chunks)]
        audio = stream.chunks[0] if stream.chunks else np.zeros(0, np.int16)
        return corrid, stream, audio, waiters

    def _key(self, stream: _Stream) -> object:
        assert self._batch_key is not None
        return self._batch_key(stream.samples, stream.hints, final=False)

    def _next(self) -> list[_Job] | None:
        """The next decode: one final, or up to ``max_batch`` partials with one batch key."""
        with self._cond:
            while not self._closed:
                urgent = bool(self._finals)
                queue = self._finals or self._partials
                if queue:
                    job = self._take(queue.popleft())
                    if job is None:
                        continue
                    jobs = [job]
                    if not urgent and self._decode_batch is not None and self.max_batch > 1:
                        key = self._key(job[1])
                        for corrid in list(self._partials):
                            if len(jobs) >= self.max_batch:
                                break
                            stream = self._states.peek(corrid)
                            if stream is not None and self._key(stream) == key:
                                self._partials.remove(corrid)
                                more = self._take(corrid)
                                if more is not None:
                                    jobs.append(more)
                    return jobs
                self._cond.wait(timeout=1.0)
                self._states.expire()
            return None

    def _run(self) -> None:
        while True:
            jobs = self._next()
            if jobs is None:
                return
            results = self._decode_jobs(jobs)
            for (corrid, stream, audio, waiters), (hyp, error) in zip(jobs, results, strict=True):
                for reply, _best in waiters:
                    _safe(reply, hyp, int(audio.size), error)
                with self._cond:
                    if stream.ended and not stream.waiters and not stream.queued:
                        self._states.end_if(corrid, stream)

    def _decode_jobs(self, jobs: list[_Job]) -> list[tuple[Hypothesis | None, BaseException | None]]:
        """Each job's hypothesis (or error): memo hits first, the rest in one call when there are several."""
        out: list[tuple[Hypothesis | None, BaseException | None]] = [(None, None)] * len(jobs)
        todo: list[int] = []
        for i, (_corrid, stream, audio, waiters) in enumerate(jobs):
            best = any(b for _, b in waiters)
            memo = stream.memo
            if memo is not None and memo[0] == int(audio.size) and (memo[1] or not best):
                out[i] = (memo[2], None)
            else:
                todo.append(i)
        if len(todo) > 1 and self._decode_batch is not None:
            try:
                hyps = self._decode_batch([(jobs[i][2], jobs[i][1].hints) for i in todo], final=False)
            except Exception:  # a failed batch is retried one by one: one bad stream fails only itself
                log.exception("batched decode of %d streams failed; decoding one by one", len(todo))
            else:
                for i, hyp in zip(todo, hyps, strict=True):
                    jobs[i][1].memo = (int(jobs[i][2].size), False, hyp)
                    out[i] = (hyp, None)
                return out
        for i in todo:
            corrid, stream, audio, waiters = jobs[i]
            best = any(b for _, b in waiters)
            try:
                hyp = self._decode(audio, stream.hints, final=best)
                stream.memo = (int(audio.size), best, hyp)
                out[i] = (hyp, None)
            except Exception as exc:  # one bad decode fails its asks, not the worker
                log.exception("decode of stream %s failed", corrid)
                out[i] = (None, exc)
        return out


def _safe(reply: Reply, hyp: Hypothesis | None, n: int, error: BaseException | None) -> None:
    try:
        reply(hyp, n, error)
    except Exception:  # a failed send (client gone) must not stop the worker
        log.exception("sending an ASR answer failed")
