"""ASR-style text normalisation for the disfluency stage.

The tagger sees exactly what the ASR stage emits: lower case, no punctuation,
single spaces, apostrophes kept inside words ("what's", "o'clock"). Training
data (Disfl-QA, SNIPS, generated commands) goes through the same function so
the model never meets casing or punctuation it will not see at run time.
"""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s']+")
_LONE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Lower-case, drop punctuation (keeping in-word apostrophes), squeeze spaces."""
    text = unicodedata.normalize("NFC", text).lower().replace("\u2019", "'").replace("_", " ")
    text = _PUNCT.sub(" ", text)
    text = _LONE_APOSTROPHE.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def words_of(text: str) -> list[str]:
    """The normalised words of ``text``."""
    cleaned = normalize(text)
    return cleaned.split(" ") if cleaned else []
