"""The dialog stage's interface, as the orchestrator sees it.

A backend subclasses :class:`DialogBackend` and implements :meth:`~DialogBackend.handle`;
every optional capability has a default here, so the orchestrator calls it on any backend
instead of probing with ``getattr``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from core.types import NluHints, NluResult


class DialogReply(Protocol):
    """What a dialog backend returns for one turn."""

    text: str
    phrases: list[str]
    action: str
    end_session: bool
    hint_words: list[str]
    """Words likely in the user's next answer (ASR prompt hints); empty when none."""
    expected: NluHints | None
    """What the next turn is expected to answer (biases the NLU); None when nothing in particular."""
    volume: int | None
    """The session's speaker volume after this turn, 0 (muted) to 10; None when the backend keeps none."""
    intent: str | None
    """The intent the reply is about (the task's, or a meta intent); None when the backend does not say."""
    frame: dict[str, str] | None
    """Slot -> value of the task this turn was about; None when the backend does not report its task."""


@runtime_checkable
class DialogBackend(Protocol):
    """Decides the reply for one user turn; commits its state before returning."""

    def handle(
        self, session_id: str, turn_id: str, nlu: NluResult, transcript: str = "", clean_text: str = ""
    ) -> DialogReply: ...

    async def ahandle(
        self, session_id: str, turn_id: str, nlu: NluResult, transcript: str = "", clean_text: str = ""
    ) -> DialogReply:
        """:meth:`handle` for callers on an event loop.

        Default: inline, because an in-process manager answers in well under a millisecond; a
        remote backend (Rasa over HTTP) overrides it so its wait does not stall other sessions.
        """
        return self.handle(session_id, turn_id, nlu, transcript, clean_text)

    def plan(
        self, session_id: str, turn_id: str, nlu: NluResult, transcript: str = "", clean_text: str = ""
    ) -> DialogReply | None:
        """The reply :meth:`handle` would give, with no side effect at all (nothing stored, no timer set,
        no device switched): what the orchestrator speaks *speculatively* while it is not yet sure the
        user has finished. :meth:`handle` with the same arguments later commits the turn and must
        give the same reply.

        Default: None, "this backend cannot plan" (a remote dialog server keeps its own state),
        and the reply is only prepared once the turn is over.
        """
        return None

    async def aplan(
        self, session_id: str, turn_id: str, nlu: NluResult, transcript: str = "", clean_text: str = ""
    ) -> DialogReply | None:
        """:meth:`plan` for callers on an event loop (default: inline)."""
        return self.plan(session_id, turn_id, nlu, transcript, clean_text)

    def expectation(self, session_id: str) -> tuple[NluHints | None, list[str]]:
        """What the session's last committed reply left open: the NLU hints and the ASR hint words
        the next turn needs (a question asked, its expected values). Read from the backend's store,
        so a session continued by another process (``say --session``, a reconnecting client) hears
        "large" as the answer to "what size?". Default: nothing open.
        """
        return None, []

    def warm(self) -> None:
        """Build what the first turns would otherwise build on the spot (called in a background thread
        by long-running front ends: the web server, ``quickturn mic``). Default: nothing to build."""

    def log_latencies(self, session_id: str, turn_id: str, latencies_ms: dict[str, float]) -> None:
        """Record the turn's per-stage latencies with the turn (default: not recorded)."""

    def mark_interrupted(self, session_id: str, turn_id: str, played_ms: int) -> None:
        """The user heard only ``played_ms`` of the turn's reply (default: not recorded)."""
