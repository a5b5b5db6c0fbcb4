"""The disfluency stage's interface.

A tagger labels every word of an ASR-style transcript (lower case, no
punctuation) as kept or removed, with the kind of disfluency. Two ways in:

* ``tag(words)``: the whole utterance at once (final transcripts);
* ``stream()``: a :class:`StreamingTagger` fed growing word prefixes (partial
  transcripts) that commits a word's label only once it is trusted, so the
  cleaned text shown while the user speaks does not flicker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

DisfluencyKind = Literal["filler", "repetition", "repair", "restart", "interregnum"]

#: Triton wire format: the KIND string of a ``pending`` word (the label tensors have
#: no pending flag).
PENDING_KIND = "pending"


@dataclass(frozen=True, slots=True)
class TaggedToken:
    """One word with its keep/remove decision."""

    word: str
    remove: bool
    kind: DisfluencyKind | None = None
    #: Streaming only: the word's label is not committed yet (a later word's
    #: already is); ``remove`` means nothing until it is.
    pending: bool = False


def clean_text(tokens: Sequence[TaggedToken]) -> str:
    """The transcript with removed words (and words whose label is still pending) dropped."""
    return " ".join(t.word for t in tokens if not t.remove and not t.pending)


class StreamingTagger(Protocol):
    """Incremental tagging of one utterance."""

    def update(self, words: Sequence[str]) -> list[TaggedToken]:
        """Feed the current word prefix; return the labels committed so far.

        The returned list only grows between calls with extending prefixes:
        committed labels never change (a prefix that rewrites earlier words
        restarts the commitment from the first changed word). A policy that
        commits out of order marks an earlier word still waiting with
        ``pending=True``; it is committed (pending cleared) by a later call.
        """
        ...

    def finish(self, words: Sequence[str]) -> list[TaggedToken]:
        """The utterance is final: label every word."""
        ...


class Tagger(Protocol):
    """A disfluency tagger backend."""

    name: str

    def tag(self, words: Sequence[str]) -> list[TaggedToken]:
        """Label every word of a complete utterance."""
        ...

    def stream(self) -> StreamingTagger:
        """A fresh streaming session for one utterance."""
        ...
