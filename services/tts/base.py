"""The TTS stage's interface: text phrases in, PCM16 audio out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TtsBackend(Protocol):
    """A speech synthesizer.

    ``synthesize`` is synchronous and CPU-bound; the pipeline runs it in a
    worker thread one phrase at a time, so a cancelled turn stops after the
    current phrase.
    """

    name: str
    sample_rate_hz: int

    def synthesize(self, text: str) -> np.ndarray:
        """Speak one phrase; returns int16 mono samples at ``sample_rate_hz``."""
        ...

    def warm(self, phrases: list[str]) -> int:
        """Prepare ``phrases`` so that speaking them later costs a lookup; returns how many were added.

        Default: nothing (an engine without a phrase cache).
        """
        return 0
