"""The NLU stage's interface: text in, intent + slots out.

A backend subclasses :class:`NluBackend` and implements :meth:`~NluBackend.parse`;
optional capabilities have their defaults here.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from core.types import NluHints, NluResult


@runtime_checkable
class NluBackend(Protocol):
    """An NLU backend."""

    name: str

    def parse(self, text: str, hints: NluHints | None = None) -> NluResult:
        """Classify the intent and extract slots from a cleaned transcript."""
        ...

    async def aparse(self, text: str, hints: NluHints | None = None) -> NluResult:
        """:meth:`parse` for callers on an event loop.

        Default: inline, because the embedded backends answer in a few milliseconds of CPU; a
        remote backend (Triton) overrides it so that waiting for the server never blocks the loop
        that serves every other session.
        """
        return self.parse(text, hints)
