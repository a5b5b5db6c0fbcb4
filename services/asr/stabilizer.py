"""Stable prefixes of partial hypotheses (Sans-I/O).

A word is stable once two consecutive decodes agree on it and on every word
before it. Stable words are never taken back in later partials, which is what
lets the UI show them in a firm colour and the disfluency tagger commit them.
"""

from __future__ import annotations


class PrefixStabilizer:
    """Tracks agreement between consecutive partial hypotheses of one turn."""

    def __init__(self) -> None:
        self._previous: list[str] = []
        self.stable: list[str] = []

    def update(self, words: list[str]) -> int:
        """Feed a new hypothesis; returns how many leading words of it are stable."""
        agree = 0
        for a, b in zip(self._previous, words, strict=False):
            if a != b:
                break
            agree += 1
        self._previous = list(words)
        # Never shrink: once stable, a word stays, even if the decoder wavers later.
        if agree > len(self.stable) and words[: len(self.stable)] == self.stable:
            self.stable = words[:agree]
        return len(self.stable) if words[: len(self.stable)] == self.stable else 0
