"""Text cleaning shared by training, domains and run time.

The NLU sees what the ASR + disfluency stages emit: lower case, no punctuation,
words separated by single spaces. Training data is cleaned the same way so that
the model never meets a casing or punctuation pattern it will not see at run
time. Apostrophes inside words are kept ("what's", "o'clock").
"""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s']+")
_LONE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")
_SPACES = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Lower-case, drop punctuation (keeping in-word apostrophes), squeeze spaces."""
    text = unicodedata.normalize("NFC", text).lower().replace("’", "'").replace("_", " ")
    text = _PUNCT.sub(" ", text)
    text = _LONE_APOSTROPHE.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def words(text: str) -> list[str]:
    """The cleaned words of ``text`` (word indices in slots refer to this list)."""
    cleaned = clean_text(text)
    return cleaned.split(" ") if cleaned else []
