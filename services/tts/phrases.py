"""Split a reply into phrases so the first one can be spoken while the rest synthesize.

The first phrase is kept short (a clause up to the first comma or sentence end,
cut at ``first_max_words``) because its synthesis time is the user-visible
latency; later phrases are whole sentences.
"""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[.!?;])\s+")


def split_phrases(text: str, first_max_words: int = 6) -> list[str]:
    """Split ``text`` into speakable phrases (first one short)."""
    text = " ".join(text.split())
    if not text:
        return []
    sentences = [s for s in _SENTENCE.split(text) if s.strip()]
    first = sentences[0]
    rest = sentences[1:]
    if "," in first:
        head, tail = first.split(",", 1)
        if len(head.split()) <= first_max_words and tail.strip():
            first, rest = head + ",", [tail.strip(), *rest]
    words = first.split()
    if len(words) > first_max_words + 2:
        first, rest = " ".join(words[:first_max_words]), [" ".join(words[first_max_words:]), *rest]
    return [first, *rest]
