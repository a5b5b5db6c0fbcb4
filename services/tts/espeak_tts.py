"""espeak-ng through its command line: the fast, robotic fallback voice."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import soundfile as sf

from core.errors import BackendUnavailable
from services.tts.base import TtsBackend


class EspeakTts(TtsBackend):
    """Calls ``espeak-ng --stdout`` per phrase (~10 ms on this machine)."""

    name = "espeak"
    sample_rate_hz = 22050

    def __init__(self, voice: str = "en-us", speed_wpm: int = 175) -> None:
        exe = shutil.which("espeak-ng") or shutil.which("espeak")
        if exe is None:
            raise BackendUnavailable("espeak-ng is not installed (apt-get install espeak-ng)")
        self._exe = exe
        self.voice = voice
        self.speed_wpm = speed_wpm

    def synthesize(self, text: str) -> np.ndarray:
        proc = subprocess.run(
            [self._exe, "-v", self.voice, "-s", str(self.speed_wpm), "--stdout", text],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if proc.returncode != 0 or not proc.stdout:
            raise BackendUnavailable(f"espeak-ng failed: {proc.stderr.decode(errors='replace').strip()[:200]}")
        data, rate = sf.read(io.BytesIO(proc.stdout), dtype="int16")
        self.sample_rate_hz = int(rate)
        return np.asarray(data, dtype=np.int16).reshape(-1)
