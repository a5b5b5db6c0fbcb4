"""The disfluency stage's interface.

A tagger labels every word of an ASR-style transcript (lower case, no
punctuation) as kept or removed, with the kind of disfluency. Two ways in:

* ``tag(words)``: the whole utterance at once (final transcripts);
* ``stream()``: a :class:`StreamingTagger` fed growing word prefixes (partial
  transcripts) that commits a word's label only once it is trusted, so the
  cleaned text shown while the user speaks does not flicker.

Backends subclass :class:`Tagger` / :class:`StreamingTagger`; the ``a*`` methods,
for callers on an event loop, have defaults here (inline: the embedded taggers
answer in about a millisecond) that a remote backend overrides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from core.types import TaggedToken


@runtime_checkable
class StreamingTagger(Protocol):
    """Incremental tagging of one utterance."""

    holds_for_context: bool = False
    """True when a word left uncommitted means the tagger doubts it and waits for the next words
    (a wait head), so the end-of-turn policy may read it as "the sentence goes on"; False when words
    wait by construction (a fixed lookahead always holds the last ones)."""

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

    async def aupdate(self, words: Sequence[str]) -> list[TaggedToken]:
        """:meth:`update` without blocking the event loop (default: inline)."""
        return self.update(words)

    async def afinish(self, words: Sequence[str]) -> list[TaggedToken]:
        """:meth:`finish` without blocking the event loop (default: inline)."""
        return self.finish(words)


@runtime_checkable
class Tagger(Protocol):
    """A disfluency tagger backend."""

    name: str

    def tag(self, words: Sequence[str]) -> list[TaggedToken]:
        """Label every word of a complete utterance."""
        ...

    def stream(self) -> StreamingTagger:
        """A fresh streaming session for one utterance."""
        ...

    async def atag(self, words: Sequence[str]) -> list[TaggedToken]:
        """:meth:`tag` without blocking the event loop (default: inline)."""
        return self.tag(words)
