"""TTS on a Riva server (or ``quickturn serve riva``) through ``nvidia-riva-client``."""

from __future__ import annotations

import numpy as np

from core.errors import BackendUnavailable
from services.tts.base import TtsBackend


class RivaTts(TtsBackend):
    """The TtsBackend protocol on Riva's ``Synthesize`` (LINEAR_PCM at ``sample_rate_hz``).

    Construction checks the server with a one-word synthesis.
    """

    name = "riva"

    def __init__(self, address: str, timeout_s: float = 10.0, sample_rate_hz: int = 22050,
                 voice_name: str | None = None) -> None:
        try:
            import riva.client
        except ImportError as exc:
            raise BackendUnavailable("the Riva client is not installed: pip install 'quickturn[riva]'") from exc
        self.address = address
        self.timeout_s = timeout_s
        self.sample_rate_hz = sample_rate_hz
        self.voice_name = voice_name
        self.service = riva.client.SpeechSynthesisService(riva.client.Auth(uri=address))
        self.synthesize("Okay.")

    def synthesize(self, text: str) -> np.ndarray:
        from services.asr.riva_client import riva_error

        try:
            response = self.service.synthesize(text, voice_name=self.voice_name, sample_rate_hz=self.sample_rate_hz)
        except Exception as exc:
            raise riva_error(self.address, exc) from exc
        return np.frombuffer(response.audio, dtype="<i2").astype(np.int16)
