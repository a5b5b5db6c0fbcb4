"""Per-sequence state for the stateful Triton models (Sans-I/O, thread-safe).

Triton's sequence batcher routes every request of a sequence to one model
instance and tells the model, through the START / END / CORRID control
inputs, where a sequence begins and ends. The model keeps whatever the stream
needs (audio so far, committed disfluency labels) in a :class:`SequenceStates`
keyed by the correlation id, and frees it on END and after
``idle_s`` without a request. Triton forgets an idle sequence on its own after
``max_sequence_idle_microseconds``; the model must forget it too, or a client
that vanished leaks its state forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

S = TypeVar("S")


class UnknownSequence(KeyError):
    """A request names a sequence the model holds no state for."""

    def __init__(self, corrid: str, idle_s: float) -> None:
        super().__init__(corrid)
        self.corrid = corrid
        self.message = (
            f"unknown sequence {corrid!r}: no open stream with this id (send the first request with "
            f"sequence_start=True; a stream idle for more than {idle_s:g} s is closed)"
        )

    def __str__(self) -> str:
        return self.message


@dataclass
class _Entry(Generic[S]):
    state: S
    last_seen: float


class SequenceStates(Generic[S]):
    """Correlation id → state, with idle expiry.

    Args:
        factory: builds the state of a new sequence.
        idle_s: a sequence with no request for this long is dropped (seconds);
            match the model's ``max_sequence_idle_microseconds``.
        on_drop: called with (corrid, state) when a sequence expires.
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        factory: Callable[[], S],
        idle_s: float,
        on_drop: Callable[[str, S], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self.idle_s = idle_s
        self._on_drop = on_drop
        self._clock = clock
        self._entries: dict[str, _Entry[S]] = {}
        self._lock = threading.Lock()

    def start(self, corrid: str) -> S:
        """A new sequence (a START with a known id restarts it)."""
        with self._lock:
            entry = _Entry(self._factory(), self._clock())
            self._entries[corrid] = entry
            return entry.state

    def get(self, corrid: str) -> S:
        """The state of an open sequence; refreshes its idle timer.

        Raises:
            UnknownSequence: never started, ended, or expired.
        """
        with self._lock:
            entry = self._entries.get(corrid)
            if entry is None:
                raise UnknownSequence(corrid, self.idle_s)
            entry.last_seen = self._clock()
            return entry.state

    def peek(self, corrid: str) -> S | None:
        """The state of an open sequence without refreshing its idle timer (None when unknown)."""
        with self._lock:
            entry = self._entries.get(corrid)
            return entry.state if entry is not None else None

    def end(self, corrid: str) -> S | None:
        """Forget a sequence; returns its state (None if unknown)."""
        with self._lock:
            entry = self._entries.pop(corrid, None)
        return entry.state if entry else None

    def end_if(self, corrid: str, state: S) -> None:
        """Forget a sequence only if it still holds ``state`` (not a restarted sequence)."""
        with self._lock:
            entry = self._entries.get(corrid)
            if entry is not None and entry.state is state:
                del self._entries[corrid]

    def expire(self) -> list[str]:
        """Drop the sequences idle for longer than ``idle_s``; returns their ids."""
        now = self._clock()
        with self._lock:
            dead = [(k, e) for k, e in self._entries.items() if now - e.last_seen > self.idle_s]
            for k, _ in dead:
                del self._entries[k]
        for k, e in dead:
            if self._on_drop is not None:
                self._on_drop(k, e.state)
        return [k for k, _ in dead]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, corrid: object) -> bool:
        return corrid in self._entries


def idle_seconds(model_config: dict[str, object], default_s: float = 30.0) -> float:
    """``sequence_batching.max_sequence_idle_microseconds`` of a parsed model config, in seconds."""
    batching = model_config.get("sequence_batching") or {}
    assert isinstance(batching, dict)
    micros = batching.get("max_sequence_idle_microseconds")
    return int(micros) / 1e6 if micros else default_s


def string_parameters(model_config: dict[str, object]) -> dict[str, str]:
    """The ``parameters { key: ..., value: { string_value: ... } }`` of a parsed model config."""
    params = model_config.get("parameters") or {}
    assert isinstance(params, dict)
    return {k: str(v.get("string_value", "")) for k, v in params.items() if isinstance(v, dict)}
