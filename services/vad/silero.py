"""Silero VAD v5 through onnxruntime (no torch): speech probability per 32 ms frame."""

from __future__ import annotations

import numpy as np

from services.model_files import SILERO_VAD, verified_dir

FRAME_SAMPLES = 512  # Silero's frame at 16 kHz (32 ms)
_CONTEXT = 64


class SileroVad:
    """Stateful frame classifier; one instance per audio stream (call :meth:`reset` per stream)."""

    def __init__(self) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        path = verified_dir(SILERO_VAD) / "silero_vad.onnx"
        self._session = onnxruntime.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self._sr = np.array(16000, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, _CONTEXT), dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> float:
        """Speech probability of one 512-sample int16 frame."""
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"Silero needs frames of {FRAME_SAMPLES} samples, got {frame.shape}")
        x = (frame.astype(np.float32) / 32768.0)[None, :]
        x = np.concatenate([self._context, x], axis=1)
        out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = x[:, -_CONTEXT:]
        return float(out[0][0])
