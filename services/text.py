"""ASR-style text normalisation shared by the disfluency and NLU stages.

Both models see exactly what the ASR stage emits: lower case, no punctuation,
single spaces, apostrophes kept inside words ("what's", "o'clock"). Their
training data goes through the same function, so neither model meets casing or
punctuation it will not see at run time.
"""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s']+")
_LONE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")
_SPACES = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Lower-case, drop punctuation (keeping in-word apostrophes), squeeze spaces."""
    text = unicodedata.normalize("NFC", text).lower().replace("\u2019", "'").replace("_", " ")
    text = _PUNCT.sub(" ", text)
    text = _LONE_APOSTROPHE.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def words(text: str) -> list[str]:
    """The cleaned words of ``text`` (slot and label indices refer to this list)."""
    cleaned = clean_text(text)
    return cleaned.split(" ") if cleaned else []
