"""Streaming commit policies for the disfluency tagger (Sans-I/O: words in, labels out).

* :class:`LookaheadSession`: commit word ``i`` once ``k`` more words exist
  (fixed lookahead; the rule tagger uses it);
* :func:`keep_consistent`: keep committed labels of an unchanged prefix;
* the wait-head policy lives with the model (:class:`services.disfluency.bert.WaitSession`).

The no-wait baseline and the streaming metrics (Chen et al., NAACL 2022) are
evaluation code: :mod:`training.disfluency.streaming_eval`.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.types import TaggedToken
from services.disfluency.base import StreamingTagger, Tagger


def keep_consistent(committed: list[TaggedToken], words: Sequence[str]) -> list[TaggedToken]:
    """The committed labels whose words are unchanged in the new prefix."""
    keep = 0
    for tok, w in zip(committed, words, strict=False):
        if tok.word != w:
            break
        keep += 1
    return committed[:keep]


class LookaheadSession(StreamingTagger):
    """Fixed lookahead: commit word ``i`` once ``i + 1 + k`` words exist.

    Committed labels never change while words arrive; a prefix that rewrites an
    already committed word drops the commitment from that word on. ``finish``
    gives the full-context labels of the final transcript.
    """

    def __init__(self, tagger: Tagger, lookahead_words: int) -> None:
        self._tagger = tagger
        self._k = lookahead_words
        self._committed: list[TaggedToken] = []

    def update(self, words: Sequence[str]) -> list[TaggedToken]:
        self._committed = keep_consistent(self._committed, words)
        ready = max(len(words) - self._k, 0)
        if ready > len(self._committed):
            labels = self._tagger.tag(words)
            self._committed.extend(labels[len(self._committed) : ready])
        return list(self._committed)

    def finish(self, words: Sequence[str]) -> list[TaggedToken]:
        """Full-context labels of the final transcript (may correct a committed label)."""
        self._committed = self._tagger.tag(words)
        return list(self._committed)
