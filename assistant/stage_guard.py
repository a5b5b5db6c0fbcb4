"""Deadlines and fallbacks for the stages: a dead or frozen backend costs one turn's wait, not the session.

A remote stage (Triton, Riva) can fail three ways: refused at once (the server
was killed), an error (a model unloaded), or no answer at all (the server is
frozen, the network silently dropped). The first two raise; the third is only
seen by waiting, so every remote call gets a deadline (``backend.deadline_s``,
1.5 s by default: far above a healthy call, which takes tens to a few hundred
milliseconds on a loaded CPU server, far below the transport's own timeout, and
short enough that a frozen server is noticed within 2 s of the end of speech). When a call misses its deadline
or raises, the turn goes on with the stage's local baseline
(:mod:`services.local_baseline`) and the session hears about it in an
``error`` event that names the stage and what happened.

One failure opens the *circuit* for ``backend.retry_after_s``: calls during
that time go straight to the fallback, so the next stages and turns do not each
wait out a deadline against a server known to be down; the first call after it
tries the server again. The remote stages share one server, so a fault in one
opens the circuit of all of them (a frozen Triton found by the ASR is not
waited on again by the tagger, the NLU and the TTS of the same turn). The state
is shared by every session of the process, like the backends themselves.

Embedded stages get no deadline (a slow local decode is load, not a fault, and
there is nothing faster to fall back to) but an exception still falls back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from core.errors import BackendUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StageFault:
    """What went wrong with one stage call, as the session's ``error`` event says it."""

    stage: str
    code: str  # "backend-timeout" | "backend-unavailable"
    message: str


class StageGuard:
    """Runs stage calls under a deadline, with a per-stage circuit and a fallback.

    Args:
        deadline_s: the longest wait for a call to a remote stage.
        retry_after_s: how long a failed stage is bypassed before the server is tried again.
        backend: the deployment's name, for messages (``triton://host:8001``).
        remote_stages: the stages served by that server (deadline, and one circuit for all of them).
    """

    def __init__(self, deadline_s: float, retry_after_s: float = 5.0, backend: str = "embedded",
                 remote_stages: frozenset[str] = frozenset()) -> None:
        self.deadline_s = deadline_s
        self.retry_after_s = retry_after_s
        self.backend = backend
        self.remote_stages = remote_stages
        self._open_until: dict[str, float] = {}

    def is_remote(self, stage: str) -> bool:
        return stage in self.remote_stages

    def is_open(self, stage: str) -> bool:
        """True while ``stage`` is bypassed after a failure."""
        return time.monotonic() < self._open_until.get(stage, 0.0)

    def _trip(self, stage: str) -> None:
        until = time.monotonic() + self.retry_after_s
        for s in self.remote_stages if stage in self.remote_stages else (stage,):
            self._open_until[s] = until

    def _fault(self, stage: str, exc: BaseException) -> StageFault:
        where = f"the {stage} backend ({self.backend if self.is_remote(stage) else 'embedded'})"
        if isinstance(exc, TimeoutError):
            return StageFault(stage, "backend-timeout", f"{where} did not answer within {self.deadline_s:g} s")
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return StageFault(stage, "backend-unavailable", f"{where} failed: {detail}")

    async def call(
        self,
        stage: str,
        primary: Callable[[], Awaitable[T]],
        fallback: Callable[[], Awaitable[T]] | None,
        on_fault: Callable[[StageFault], Awaitable[None]] | None = None,
    ) -> T:
        """``primary()`` under the deadline; on a miss or an error, ``fallback()``.

        ``on_fault`` hears about each failure (once per call; not for calls skipped
        while the circuit is open, which were reported when it opened).

        Raises:
            BackendUnavailable: the primary failed and there is no fallback (or the fallback failed too).
        """
        if fallback is not None and self.is_open(stage):
            return await fallback()
        try:
            if not self.is_remote(stage):
                return await primary()
            return await asyncio.wait_for(primary(), self.deadline_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            fault = self._fault(stage, exc)
            log.warning("%s", fault.message)
            self._trip(stage)
            if on_fault is not None:
                await on_fault(fault)
            if fallback is None:
                raise BackendUnavailable(fault.message) from exc
        try:
            return await fallback()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise BackendUnavailable(f"the local {stage} fallback failed too: {exc}") from exc
