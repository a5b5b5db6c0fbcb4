"""Turn speech probabilities into speech start / pause / end decisions (Sans-I/O).

The endpointer sees one probability per frame and answers with what happened.
It knows nothing of models or event loops, so the embedded pipeline and the
Triton adapter drive the same logic.

Decisions:
    * ``start``: ``min_speech_ms`` of consecutive speech; the turn begins at the
      first of those frames.
    * ``pause``: ``speculate_ms`` of silence inside a turn. The ASR decodes
      speculatively here, so the final is ready when the endpoint fires.
    * ``resume``: speech came back after a pause (the speculative result is stale).
    * ``end``: ``silence_ms`` of silence; the turn is over. With the semantic turn
      policy this is only the longest hold: :meth:`Endpointer.end_now` ends the
      turn earlier when the policy (or the client) decides it is over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Decision = Literal["start", "pause", "resume", "end"]


@dataclass(frozen=True, slots=True)
class EndpointEvent:
    """A decision and the audio position (ms) it refers to."""

    kind: Decision
    audio_ms: float


class Endpointer:
    """Hysteresis state machine over per-frame speech probabilities."""

    def __init__(
        self,
        *,
        frame_ms: float = 32.0,
        threshold: float = 0.5,
        silence_ms: int = 400,
        min_speech_ms: int = 64,
        speculate_ms: int = 160,
    ) -> None:
        self.frame_ms = frame_ms
        self.on = threshold
        self.off = max(0.05, threshold - 0.15)
        self.silence_ms = silence_ms
        self.min_speech_ms = min_speech_ms
        self.speculate_ms = min(speculate_ms, silence_ms)
        self.reset()

    def reset(self) -> None:
        self.in_speech = False
        self.pos_ms = 0.0
        self._speech_run = 0.0
        self._run_start = 0.0
        self._silence_run = 0.0
        self._last_speech_ms = 0.0
        self._paused = False

    def push(self, probability: float) -> list[EndpointEvent]:
        """Feed one frame's speech probability; returns the decisions it caused."""
        events: list[EndpointEvent] = []
        frame_start = self.pos_ms
        self.pos_ms += self.frame_ms
        if not self.in_speech:
            if probability >= self.on:
                if self._speech_run == 0.0:
                    self._run_start = frame_start
                self._speech_run += self.frame_ms
                if self._speech_run >= self.min_speech_ms:
                    self.in_speech = True
                    self._silence_run = 0.0
                    self._last_speech_ms = self.pos_ms
                    self._paused = False
                    events.append(EndpointEvent("start", self._run_start))
            else:
                self._speech_run = 0.0
            return events
        if probability >= self.off:
            self._last_speech_ms = self.pos_ms
            self._silence_run = 0.0
            if self._paused:
                self._paused = False
                events.append(EndpointEvent("resume", frame_start))
            return events
        self._silence_run += self.frame_ms
        if not self._paused and self._silence_run >= self.speculate_ms:
            self._paused = True
            events.append(EndpointEvent("pause", self._last_speech_ms))
        if self._silence_run >= self.silence_ms:
            self.in_speech = False
            self._speech_run = 0.0
            self._paused = False
            events.append(EndpointEvent("end", self._last_speech_ms))
        return events

    def end_now(self) -> EndpointEvent:
        """End the turn here, before ``silence_ms`` (the end-of-turn policy or the client decided);
        the next speech starts a new turn."""
        self.in_speech = False
        self._speech_run = 0.0
        self._paused = False
        return EndpointEvent("end", self._last_speech_ms)

    @property
    def last_speech_ms(self) -> float:
        return self._last_speech_ms
