"""The acoustic end-of-turn signal: Pipecat's Smart Turn v3.2 on onnxruntime.

Smart Turn (BSD-2-Clause, https://github.com/pipecat-ai/smart-turn) is a Whisper tiny
encoder with a small classification head (8 M parameters, int8 ONNX, 8.7 MB), trained on
human and synthetic speech in 23 languages, with turns labelled complete or incomplete.
It hears what a transcript cannot: intonation, lengthening of the last syllable, a
trailing filler. It is one signal among several (the transcript's syntax and the NLU's
frame say the rest); on its own it is noisy, see ``tests/services/turn``.

We use the model file only. It ships inside the ``pipecat-ai`` wheel, installed with
``--no-deps`` by ``deploy/install.sh``; the file is located with ``importlib.util.find_spec``
and its sha256 checked by :mod:`services.model_files`. Pipecat is never imported: its
analyzer drags in its whole framework, and the model needs twenty lines of glue.

How audio reaches the model, exactly as Pipecat 1.14.0 feeds it
(``pipecat/audio/turn/smart_turn/local_smart_turn_v3.py``):

* int16 → float32 by ``/ 32768``;
* the last 8 s are kept; shorter audio is padded with zeros **at the front**, so the end of
  the turn always sits at the end of the window, where the model was trained to look;
* the 8 s window is normalised to zero mean and unit variance (padding included);
* 80-bin Whisper log-mel features, 25 ms frames every 10 ms → ``(80, 800)``;
* input ``input_features`` ``(batch, 80, 800)``; the output (named ``logits``) already
  holds the sigmoid: the probability that the turn is complete.

Pipecat asks the model once its VAD has heard 200 ms of silence (its recommended
``stop_secs``), so the audio it was tuned on ends with a short pause; the probability rises
as that pause grows, whatever was said (measured here on "wake me up at|": 0.02 with 100 or
200 ms of trailing silence, 0.60 with 300 ms, 0.98 with 500 ms). Ask early in the pause
(100-200 ms) and let the other signals and a maximum hold decide longer pauses.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import onnxruntime as ort
from faster_whisper.feature_extractor import FeatureExtractor

from core.errors import InvalidAudio, ModelFileError
from services.model_files import SMART_TURN_V3, verified_dir

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
SAMPLE_RATE_HZ = 16_000
_NORM_EPS = 1e-7  # transformers' WhisperFeatureExtractor zero-mean unit-variance epsilon


class SmartTurn:
    """Smart Turn v3.2 (Pipecat, BSD-2-Clause) on onnxruntime: the probability that a speaker has finished.

    Thread-safety: one instance may be shared by every session and called from several
    threads at once (e.g. through ``asyncio.to_thread``). ``InferenceSession.run`` is
    thread-safe, the feature extractor only reads its mel filters, and every call works
    on its own buffers. Concurrent calls each use up to ``threads`` intra-op threads.

    Features: faster-whisper's numpy ``FeatureExtractor`` (already a dependency) computes
    the same Slaney mel filters, periodic Hann window, reflect-padded STFT, log10 floor,
    ``max - 8`` clamp and ``(x + 4) / 4`` scaling as the transformers extractor Pipecat
    vendors in ``_whisper_features.py``; with ``padding=0`` it yields the same 800 frames
    for 8 s (both drop the STFT's last frame). It lacks only the waveform normalisation,
    which :meth:`features` applies first. Measured: at most 3e-6 apart from Pipecat's
    features on speech, noise and > 8 s input, and the same probability to 1e-7
    (``test_features_equal_pipecats``).
    """

    WINDOW_S = 8.0

    def __init__(self, threads: int = 1) -> None:
        """Load the sha256-verified model file; ``threads`` is onnxruntime's intra-op thread count.

        Raises:
            ModelFileError: the pipecat-ai wheel is not installed, or the file is missing
                or fails its sha256 check.
        """
        path = verified_dir(SMART_TURN_V3) / MODEL_FILE
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = max(1, int(threads))
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelFileError(f"{path}: onnxruntime cannot load the Smart Turn model ({exc})") from exc
        inputs = self._session.get_inputs()
        if [i.name for i in inputs] != ["input_features"] or list(inputs[0].shape[1:]) != [80, 800]:
            found = [(i.name, i.shape) for i in inputs]
            raise ModelFileError(f"{path}: unexpected Smart Turn inputs {found}")
        self._window = int(self.WINDOW_S * SAMPLE_RATE_HZ)
        self._extractor = FeatureExtractor(
            feature_size=80, sampling_rate=SAMPLE_RATE_HZ, hop_length=160, n_fft=400, chunk_length=8
        )

    def features(self, pcm: np.ndarray) -> np.ndarray:
        """The model's input for ``pcm``: float32 ``(80, 800)`` log-mel of the last 8 s, front-padded.

        Raises:
            InvalidAudio: not a non-empty one-dimensional int16 array.
        """
        if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
            what = f"{pcm.dtype} {pcm.shape}" if isinstance(pcm, np.ndarray) else type(pcm).__name__
            raise InvalidAudio(f"Smart Turn needs mono int16 16 kHz audio, got {what}")
        if pcm.size == 0:
            raise InvalidAudio("Smart Turn needs audio, got an empty array")
        tail = pcm[-self._window :]
        x = np.zeros(self._window, dtype=np.float32)
        x[self._window - tail.size :] = tail
        x *= np.float32(1.0 / 32768.0)  # exact: a power of two, same as Pipecat's / 32768.0
        mean, var = x.mean(), x.var()  # float32, as Pipecat computes them
        x -= mean
        x /= np.sqrt(var + _NORM_EPS)  # the same expression (and precision) as Pipecat
        return self._extractor(x, padding=0)

    def probability(self, pcm: np.ndarray) -> float:
        """Probability in [0, 1] that the turn is complete, from int16 mono 16 kHz audio of the turn so far.

        Uses the last 8 s (a turn's ending is what the model judges; older audio is dropped).
        Include the pause heard so far: the model expects the audio to end in ~200 ms of silence.

        Raises:
            InvalidAudio: not a non-empty one-dimensional int16 array.
        """
        feats = self.features(pcm)[np.newaxis]
        (out,) = self._session.run(None, {"input_features": feats})
        return float(out.reshape(-1)[0])


@cache
def load_smart_turn(threads: int = 1) -> SmartTurn:
    """The process-wide Smart Turn model: every session shares one onnxruntime session."""
    return SmartTurn(threads=threads)
