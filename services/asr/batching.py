"""Cross-stream batching of Whisper decodes: one ``generate`` call for several conversations.

Without it every stream's decode runs alone, one after the other behind the
decoder's lock, so N streams cost N decodes in a row. With it, the decodes that
queued up while one ran are taken together and decoded in one CTranslate2 call
(encoder batch + batched ``generate``), which costs less than the same decodes
one by one (``quickturn bench batch``; the curve and what it predicts are in
docs/scaling.md).

The strategy is Triton's *direct* sequence batching without a queue delay by
default: a request that finds the decoder idle starts at once (no waiting for
company: on 2 cores an idle decoder is the common case and waiting would only
add latency), and whatever arrives while a decode runs forms the next batch.
``queue_delay_ms`` > 0 holds the first request of an idle decoder that long for
others (Triton's ``max_queue_delay_microseconds``), useful only when arrivals are
bursty and the curve's per-stream saving is larger than the delay.

Scheduling under load:

* finals and speculative finals before partials (a final is what a user waits
  for; a partial is superseded within 300 ms); partials are what gets batched
  (greedy: the batched result is exactly the single one, and with a partial
  every 300 ms of speech they are most of the decoding), finals only with
  ``batch_finals``;
* a batch holds requests of one :meth:`~services.asr.decoder.WhisperDecoder.batch_key`
  only (beam, prompt length, window), so each result is the one the stream
  would get alone;
* partials are thinned when the decoder is behind: a partial that waited longer
  than ``partial_max_wait_ms``, or that a newer partial of the same stream
  replaced, is answered with an empty hypothesis instead of being decoded (the
  pipeline emits nothing for an empty partial). Finals are never dropped;
* the queue is bounded by construction: each stream has at most one partial and
  one final queued (the stream memoizes its decodes by audio length), and a
  closed stream's queued partials are dropped.

The worker is one thread per decoder; callers get a ``concurrent.futures.Future``
(wrap it with ``asyncio.wrap_future``), so no event loop ever blocks on a decode.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np

from core.types import Hypothesis
from services.asr.decoder import WhisperDecoder

log = logging.getLogger(__name__)

DROPPED = Hypothesis(text="", raw_text="", avg_logprob=0.0)
"""The answer to a thinned partial: empty, so the pipeline emits no partial for it."""

DEFAULT_MAX_BATCH = 4
"""Largest batch: on this 2-core machine the per-stream cost stops falling after 4 (docs/scaling.md)."""

DEFAULT_PARTIAL_MAX_WAIT_MS = 600.0
"""A partial queued this long is dropped: two partial intervals (300 ms) behind, a newer one is due."""


@dataclass
class _Request:
    pcm: np.ndarray
    hints: list[str] | None
    final: bool
    stream: Hashable
    key: tuple[int, int, int, bool]
    seq: int
    t_s: float
    future: concurrent.futures.Future[Hypothesis] = field(default_factory=concurrent.futures.Future)


@dataclass
class BatchStats:
    """Counters for benchmarks and tests (read without the lock: approximate while running)."""

    batches: int = 0
    decoded: int = 0
    dropped_partials: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)


def _resolve(future: concurrent.futures.Future[Hypothesis], outcome: Hypothesis | BaseException) -> None:
    """Set a result or an exception unless the waiter cancelled the future meanwhile."""
    try:
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except concurrent.futures.InvalidStateError:
        pass


class BatchScheduler:
    """Gathers concurrent decode requests of different streams into batched decodes.

    Args:
        decoder: the one decoder every stream shares.
        max_batch: most requests per ``generate`` call (1: no batching, but the same
            priorities and thinning).
        queue_delay_ms: how long the first request of an idle decoder waits for others
            (0: Triton's direct strategy without delay).
        partial_max_wait_ms: a partial still queued after this long is dropped.
        batch_finals: decode finals in batches too. Off by default: a batched beam search
            that hits its token cap must be decoded again alone to stay exact, one to three
            in ten real finals hit it (Whisper tiny loops on short windows), and a batch waits
            for its longest, looping sequence; with four real-time sessions, batching finals
            made replies slower (``quickturn bench capacity --modes batched-finals,batched``,
            docs/scaling.md). Partials are greedy: batched exactly.
    """

    def __init__(self, decoder: WhisperDecoder, *, max_batch: int = DEFAULT_MAX_BATCH, queue_delay_ms: float = 0.0,
                 partial_max_wait_ms: float = DEFAULT_PARTIAL_MAX_WAIT_MS, batch_finals: bool = False) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.decoder = decoder
        self.max_batch = max_batch
        self.batch_finals = batch_finals
        self.queue_delay_s = max(0.0, queue_delay_ms) / 1000
        self.partial_max_wait_s = partial_max_wait_ms / 1000
        self.stats = BatchStats()
        self._queue: list[_Request] = []
        self._cond = threading.Condition()
        self._closed = False
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._run, name="asr-batcher", daemon=True)
        self._thread.start()

    def submit(self, pcm: np.ndarray, hints: list[str] | None, *, final: bool,
               stream: Hashable) -> concurrent.futures.Future[Hypothesis]:
        """Queue one decode of ``pcm`` for ``stream``; the future resolves with its hypothesis.

        A partial replaces the same stream's partial still queued (that one resolves
        to :data:`DROPPED`): only the newest audio is worth a partial decode.
        """
        key = self.decoder.batch_key(len(pcm), hints, final=final)
        req = _Request(pcm, hints, final, stream, key, next(self._seq), time.monotonic())
        with self._cond:
            if self._closed:
                raise RuntimeError("the ASR batch scheduler is closed")
            if not final:
                self._drop(lambda r: not r.final and r.stream == stream)
            self._queue.append(req)
            self._cond.notify()
        return req.future

    def forget(self, stream: Hashable) -> None:
        """A stream closed: its queued partials are not decoded (its finals still are: someone awaits them)."""
        with self._cond:
            self._drop(lambda r: not r.final and r.stream == stream)

    def close(self) -> None:
        """Stop the worker after the queued finals; queued partials are dropped."""
        with self._cond:
            self._closed = True
            self._drop(lambda r: not r.final)
            self._cond.notify()
        self._thread.join(timeout=30)

    def _drop(self, which: Callable[[_Request], bool]) -> None:
        """Answer the queued requests ``which`` selects with :data:`DROPPED` (call with the lock held)."""
        keep = []
        for r in self._queue:
            if which(r):
                self.stats.dropped_partials += 1
                _resolve(r.future, DROPPED)
            else:
                keep.append(r)
        self._queue = keep

    def _take(self) -> list[_Request] | None:
        """The next batch: the most urgent request and those of its key, oldest first; None when closed."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            if self.queue_delay_s > 0 and len(self._queue) < self.max_batch:
                deadline = min(r.t_s for r in self._queue) + self.queue_delay_s
                while not self._closed and len(self._queue) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
            now = time.monotonic()
            # Behind: partials that waited too long are stale; never a final.
            self._drop(lambda r: not r.final and now - r.t_s > self.partial_max_wait_s)
            if not self._queue:
                return []
            first = min(self._queue, key=lambda r: (not r.final, r.seq))
            size = self.max_batch if self.batch_finals or not first.final else 1
            batch = sorted((r for r in self._queue if r.key == first.key), key=lambda r: r.seq)[:size]
            taken = {id(r) for r in batch}
            self._queue = [r for r in self._queue if id(r) not in taken]
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            if not batch:
                continue
            live = [r for r in batch if r.future.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                hyps = self.decoder.decode_batch([(r.pcm, r.hints) for r in live], final=live[0].final)
            except Exception as exc:  # every waiter of this batch gets the error; the worker goes on
                log.warning("batched ASR decode failed: %s", exc)
                for r in live:
                    _resolve(r.future, exc)
                continue
            self.stats.batches += 1
            self.stats.decoded += len(live)
            self.stats.batch_sizes[len(live)] = self.stats.batch_sizes.get(len(live), 0) + 1
            for r, hyp in zip(live, hyps, strict=True):
                _resolve(r.future, hyp)
