"""A scripted scorer for the BERT tagger wait policies: word labels and wait probabilities given by hand, so the policies are tested without the model."""

from __future__ import annotations

import numpy as np


def words(text: str) -> list[str]:
    return text.split()


class ScriptedScorer:
    """Scores scripted per prefix length: one ``(label_id, wait_prob)`` per word (label 0 = keep)."""

    def __init__(self, script: dict[int, list[tuple[int, float]]]) -> None:
        self.script = script

    def scores(self, ws):
        from services.disfluency.bert import WordScores

        rows = self.script[len(ws)]
        labels = np.array([label for label, _ in rows], dtype=np.int64)
        return WordScores(labels, (labels == 0).astype(float), np.array([w for _, w in rows]))

    def token(self, word: str, label_id: int):
        from core.types import TaggedToken

        return TaggedToken(word, label_id != 0, "repair" if label_id else None)

    def tag(self, ws):
        return [self.token(w, label) for w, (label, _) in zip(ws, self.script[len(ws)], strict=True)]


def wait_session(script, threshold=0.1, max_wait=6, **kw):
    from services.disfluency.bert import WaitSession

    return WaitSession(ScriptedScorer(script), threshold, max_wait, **kw)


def committed(session, ws) -> list[int]:
    """How many words were committed after each word arrived."""
    return [len(session.update(ws[:t])) for t in range(1, len(ws) + 1)]


# A Disfl-QA-like start: "what" is uncertain on arrival and stays so (wait
# >= 0.6, kept). "when" is uncertain on arrival (0.1) and trusted once "is"
# follows (0.2); "is" and "it" are certain.
UNCERTAIN_START = {
    1: [(0, 0.30)],
    2: [(0, 0.60), (0, 0.10)],
    3: [(0, 0.60), (0, 0.20), (0, 0.01)],
    4: [(0, 0.60), (0, 0.01), (0, 0.01), (0, 0.01)],
}


def two_threshold_session(script):
    return wait_session(script, threshold=0.04, later_threshold=0.5, out_of_order=True)
