"""ASR on Triton: one sequence (and one gRPC stream) per turn.

The protocol of ``models/asr`` (tensor names in :mod:`services.triton_tensors`):

1. the first request carries ``sequence_start`` and the prompt HINTS;
2. audio goes in AUDIO, batched on the client into ~``flush_ms`` requests
   that get no answer;
3. ``hypothesis()`` sends the pending audio with DECODE=true and awaits the
   transcript of the whole turn so far;
4. ``speculate()`` (at a pause) asks the same with SPECULATE=true: a
   final-quality decode (the decoder's final beam) served ahead of partials;
5. ``final()`` asks with ``sequence_end``; when no audio arrived since a
   final-quality decode (the speculative one), it returns that result and only
   sends END;
6. while the turn is open and quiet, a keepalive (an empty AUDIO request)
   goes out every ``keepalive_s`` so Triton does not expire the sequence.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

import numpy as np

from core.errors import BackendUnavailable, QuickTurnError
from core.types import Hypothesis
from services import triton_tensors as T
from services.asr.base import AsrBackend, AsrStream
from services.triton_transport import TritonConnection, TritonStream, new_sequence_id

_OUTPUTS = [T.TRANSCRIPT, T.RAW_TRANSCRIPT, T.AVG_LOGPROB, T.IS_FINAL, T.AUDIO_SAMPLES, T.DECODE_FLAGS]


def _inputs(audio: np.ndarray, decode: bool, hints: str | None, speculate: bool = False) -> list[object]:
    from tritonclient.grpc import InferInput

    pcm = InferInput(T.AUDIO, [1, int(audio.size)], "INT16")
    pcm.set_data_from_numpy(audio.reshape(1, -1).astype(np.int16, copy=False))
    flag = InferInput(T.DECODE, [1, 1], "BOOL")
    flag.set_data_from_numpy(np.array([[decode]], np.bool_))
    inputs: list[object] = [pcm, flag]
    if speculate:
        spec = InferInput(T.SPECULATE, [1, 1], "BOOL")
        spec.set_data_from_numpy(np.array([[True]], np.bool_))
        inputs.append(spec)
    if hints is not None:
        h = InferInput(T.HINTS, [1, 1], "BYTES")
        h.set_data_from_numpy(np.array([[hints.encode("utf-8")]], np.object_))
        inputs.append(h)
    return inputs


def hypothesis_from(result: object) -> tuple[Hypothesis, int, bool]:
    """(Hypothesis, samples covered, is_final) from an ``InferResult`` of models/asr."""
    get = result.as_numpy  # type: ignore[attr-defined]
    text = get(T.TRANSCRIPT).reshape(-1)[0]
    raw = get(T.RAW_TRANSCRIPT).reshape(-1)[0]
    flags = get(T.DECODE_FLAGS).reshape(-1)
    hyp = Hypothesis(
        text=text.decode("utf-8") if isinstance(text, bytes) else str(text),
        raw_text=raw.decode("utf-8") if isinstance(raw, bytes) else str(raw),
        avg_logprob=float(get(T.AVG_LOGPROB).reshape(-1)[0]),
        loop_cut=bool(flags[0]),
        fallback=bool(flags[1]),
    )
    return hyp, int(get(T.AUDIO_SAMPLES).reshape(-1)[0]), bool(get(T.IS_FINAL).reshape(-1)[0])


class TritonAsrStream(AsrStream):
    """One turn on models/asr; see the module docstring for the exchange."""

    def __init__(self, conn: TritonConnection, model: str, sequence_id: int, hint_words: list[str] | None,
                 flush_ms: int, keepalive_s: float) -> None:
        self.conn = conn
        self.sequence_id = sequence_id
        self._hints = " ".join(hint_words) if hint_words else ""
        self._stream: TritonStream = conn.stream(model, keepalive_s=keepalive_s)
        self._stream.keepalive = self._keepalive
        self._flush = max(1, int(16000 * flush_ms / 1000))
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._total = 0
        self._started = False
        self._ended = False
        # (samples, final quality) -> answer; only the current length is kept
        self._answers: dict[tuple[int, bool], concurrent.futures.Future[Hypothesis]] = {}

    # The sends below run in the caller's thread and are queued in order on
    # the client loop; only the answers are awaited.
    def _send(self, decode: bool, end: bool, speculate: bool = False) -> concurrent.futures.Future[Hypothesis] | None:
        audio = np.concatenate(self._pending) if self._pending else np.zeros(0, np.int16)
        self._pending, self._pending_n = [], 0
        first = not self._started
        self._started = True
        future: concurrent.futures.Future[Hypothesis] | None = None
        handler = None
        if decode:
            future = concurrent.futures.Future()
            handler = _resolver(future)
        # A lost stream is reported by the next hypothesis()/final(), which
        # fail at once; accept() never raises, so the pipeline ends the turn
        # with an error event instead of losing its audio loop.
        self._stream.send(_inputs(audio, decode, self._hints if first else None, speculate), _OUTPUTS if decode else [],
                          handler, sequence_id=self.sequence_id, start=first, end=end)
        return future

    def _keepalive(self) -> None:  # on the client loop; only while the sequence is open
        if self._started and not self._ended:
            self._stream.send(_inputs(np.zeros(0, np.int16), False, None), [], None, sequence_id=self.sequence_id)

    async def accept(self, pcm: np.ndarray) -> None:
        """Buffer audio; a full buffer is sent without waiting for the server (never raises for a lost server)."""
        if self._ended:
            raise QuickTurnError("accept() after final()")
        self._pending.append(pcm.astype(np.int16, copy=False))
        self._pending_n += len(pcm)
        self._total += len(pcm)
        if self._pending_n >= self._flush:
            self._send(decode=False, end=False)

    async def _await(self, future: concurrent.futures.Future[Hypothesis]) -> Hypothesis:
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.conn.timeout_s)
        except TimeoutError as exc:
            raise BackendUnavailable(
                f"Triton asr: no transcript within {self.conn.timeout_s:g} s (sequence {self.sequence_id})"
            ) from exc

    def _ask(self, best: bool) -> concurrent.futures.Future[Hypothesis]:
        future = self._answers.get((self._total, True)) or (None if best else self._answers.get((self._total, False)))
        if future is None:
            future = self._send(decode=True, end=False, speculate=best)
            assert future is not None
            self._answers = {k: v for k, v in self._answers.items() if k[0] == self._total}
            self._answers[(self._total, best)] = future
        return future

    async def hypothesis(self) -> Hypothesis:
        """A partial (greedy) transcript of the turn so far. Cancelling abandons the answer."""
        return await self._await(self._ask(best=False))

    async def speculate(self) -> Hypothesis:
        """A final-quality transcript of the audio so far (at a pause); :meth:`final` reuses it if no audio follows."""
        return await self._await(self._ask(best=True))

    async def final(self) -> Hypothesis:
        """The final transcript; ends the sequence."""
        if self._ended:
            raise QuickTurnError("final() called twice")
        future = self._answers.get((self._total, True))
        if future is not None and not self._pending_n:
            self._ended = True
            self._send(decode=False, end=True)  # frees the sequence; the answer is already known
        else:
            self._ended = True
            future = self._send(decode=True, end=True)
            assert future is not None
        self._stream.close()
        return await self._await(future)

    async def aclose(self) -> None:
        """End the sequence if ``final()`` was not called, and half-close the stream."""
        if not self._ended:
            self._ended = True
            if self._started:
                self._send(decode=False, end=True)
            self._stream.close()
        self._answers.clear()

    @property
    def audio_s(self) -> float:
        return self._total / 16000


def _resolver(future: concurrent.futures.Future[Hypothesis]):  # type: ignore[no-untyped-def]
    def handle(result: object, error: QuickTurnError | None, final: bool) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        elif result is not None:
            future.set_result(hypothesis_from(result)[0])
        elif final:
            future.set_exception(BackendUnavailable("Triton asr: the request completed without a transcript"))

    return handle


class TritonAsr(AsrBackend):
    """The AsrBackend protocol on ``models/asr``.

    Args:
        conn: the shared connection.
        flush_ms: client-side audio batching (fewer, larger requests).
        keepalive_s: quiet time after which an open turn sends a keepalive;
            well under the model's 30 s ``max_sequence_idle_microseconds``.
    """

    name = "triton"

    def __init__(self, conn: TritonConnection, model: str = T.ASR_MODEL, flush_ms: int = 256,
                 keepalive_s: float = 5.0) -> None:
        self.conn = conn
        self.model = model
        self.flush_ms = flush_ms
        self.keepalive_s = keepalive_s

    def open_stream(self, session_id: str, turn_id: str, hint_words: list[str] | None = None) -> TritonAsrStream:
        seq = new_sequence_id()
        return TritonAsrStream(self.conn, self.model, seq, hint_words, self.flush_ms, self.keepalive_s)

    async def aclose(self) -> None:
        return None
