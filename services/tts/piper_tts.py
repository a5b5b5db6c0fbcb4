"""Piper neural TTS with the packaged en_US joe voice (GPL-3.0, like this project)."""

from __future__ import annotations

import numpy as np

from services.model_files import PIPER_JOE, verified_dir
from services.tts.base import TtsBackend


class PiperTts(TtsBackend):
    """Piper voice loaded once; ``synthesize`` returns int16 samples."""

    name = "piper"

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        directory = verified_dir(PIPER_JOE)
        model = directory / "en_US-joe-medium.onnx"
        voice = PiperVoice.load(model, config_path=directory / "en_US-joe-medium.onnx.json")
        # Re-create the session with explicit thread counts: the default grabs
        # every core, which starves the ASR decoder running beside it.
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        voice.session = onnxruntime.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
        self._voice = voice
        config: PiperConfig = voice.config
        self.sample_rate_hz = int(config.sample_rate)

    def synthesize(self, text: str, length_scale: float | None = None) -> np.ndarray:
        """Speak ``text``; ``length_scale`` > 1 speaks slower (None: the voice's default)."""
        from piper.config import SynthesisConfig

        config = SynthesisConfig(length_scale=length_scale) if length_scale is not None else None
        parts = [chunk.audio_int16_array for chunk in self._voice.synthesize(text, config)]
        if not parts:
            return np.zeros(0, np.int16)
        return np.concatenate(parts).astype(np.int16)
