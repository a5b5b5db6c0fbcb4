"""The ASR stage's interface: one stream per turn.

The orchestrator pushes audio as it arrives and asks for hypotheses when it
wants them (every ~300 ms of new speech, at a pause, at the endpoint). Keeping
the *when* in the orchestrator lets every backend (embedded, Triton sequence,
Riva streaming) share one scheduling policy.

Backends subclass :class:`AsrBackend` / :class:`AsrStream`; optional capabilities
have their defaults here.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from core.types import Hypothesis


@runtime_checkable
class AsrStream(Protocol):
    """Recognition of one turn."""

    async def accept(self, pcm: np.ndarray) -> None:
        """Append int16 16 kHz audio."""
        ...

    async def hypothesis(self) -> Hypothesis:
        """Decode everything accepted so far (a partial, or a speculative final).

        Cancelling it abandons the result; the decoder finishes its current
        window in the background.
        """
        ...

    async def speculate(self) -> Hypothesis:
        """A final-quality decode at a pause, reused by :meth:`final` if no audio follows.

        Default: :meth:`hypothesis` (a backend without a final-quality speculative decode
        gives its partial; :meth:`final` then decodes again).
        """
        return await self.hypothesis()

    async def final(self) -> Hypothesis:
        """The final transcript; reuses a speculative decode of the same audio.

        Optional capability: ``Hypothesis.alternatives``, the decoder's other hypotheses (the
        embedded Whisper's beam, ``asr.n_best``); a backend without an n-best list leaves it empty,
        and the NLU then parses the transcript alone.
        """
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class AsrBackend(Protocol):
    """A recognizer that opens streams."""

    name: str

    def open_stream(self, session_id: str, turn_id: str, hint_words: list[str] | None = None) -> AsrStream: ...

    async def aclose(self) -> None: ...
