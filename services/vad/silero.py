"""Silero VAD v5 through onnxruntime (no torch): speech probability per 32 ms frame.

The network is stateless as far as onnxruntime is concerned: Silero's recurrent state and
its 64-sample context are inputs and outputs of every call. So one
:class:`SileroModel` (one ``InferenceSession``) serves every audio stream in the process,
and a :class:`SileroVad` stream holds only its own two small arrays.

Why it matters (issue 29, item 4; docs/experiments/memory-churn.md): a session per
stream cost each websocket connection 30 ms of event-loop time to build, ~8 MB of native
memory while alive, and, with sessions created and freed in an interleaved order, left
about 1.3 MB of fragmented native heap behind per connection (+370 MB after 300
connections, 8 at a time, measured with ``quickturn bench churn``).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from services.model_files import SILERO_VAD, verified_dir

FRAME_SAMPLES = 512  # Silero's frame at 16 kHz (32 ms)
_CONTEXT = 64
_STATE_SHAPE = (2, 1, 128)


class SileroModel:
    """The loaded Silero network: one onnxruntime session, shared by every stream.

    Thread-safety: ``InferenceSession.run`` may be called from several threads at once, and
    :meth:`run` keeps no state between calls (the caller passes and keeps it), so one model
    may serve streams driven from the event loop and from worker threads together.
    """

    def __init__(self) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        path = verified_dir(SILERO_VAD) / "silero_vad.onnx"
        self._session = onnxruntime.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self._sr = np.array(16000, dtype=np.int64)

    def run(self, x: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        """One step: ``x`` is float32 ``(1, 64 + 512)`` (context then frame); returns the speech
        probability and the next state (a new array: ``state`` is not written)."""
        out: Any
        out, new_state = self._session.run(None, {"input": x, "state": state, "sr": self._sr})
        return float(out[0][0]), new_state

    def stream(self) -> SileroVad:
        """A new stream (its own state) on this model."""
        return SileroVad(self)


_shared: SileroModel | None = None
_shared_lock = threading.Lock()


def load_silero() -> SileroModel:
    """The process-wide Silero model, loaded on first use (sha256-verified file)."""
    global _shared
    with _shared_lock:  # two first sessions at once must not load it twice
        if _shared is None:
            _shared = SileroModel()
        return _shared


class SileroVad:
    """Stateful frame classifier; one instance per audio stream (call :meth:`reset` per stream).

    ``model`` defaults to the process-wide :func:`load_silero`; a stream costs two small arrays.
    """

    def __init__(self, model: SileroModel | None = None) -> None:
        self._model = model if model is not None else load_silero()
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros((1, _CONTEXT), dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> float:
        """Speech probability of one 512-sample int16 frame."""
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"Silero needs frames of {FRAME_SAMPLES} samples, got {frame.shape}")
        x = (frame.astype(np.float32) / 32768.0)[None, :]
        x = np.concatenate([self._context, x], axis=1)
        probability, self._state = self._model.run(x, self._state)
        self._context = x[:, -_CONTEXT:].copy()  # a copy: a view would keep the whole 576-sample input alive
        return probability
