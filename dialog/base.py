"""The dialog stage's interface, as the orchestrator sees it."""

from __future__ import annotations

from typing import Protocol

from services.nlu.base import NluHints, NluResult


class DialogReply(Protocol):
    """What a dialog backend returns for one turn."""

    text: str
    phrases: list[str]
    action: str
    end_session: bool
    hint_words: list[str]
    expected: NluHints | None


class DialogBackend(Protocol):
    """Decides the reply for one user turn; commits its state before returning."""

    def handle(
        self, session_id: str, turn_id: str, nlu: NluResult, transcript: str = "", clean_text: str = ""
    ) -> DialogReply: ...
