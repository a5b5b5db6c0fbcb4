"""Text normalisation for the disfluency stage: the shared ASR-style normalisation (services/text.py)."""

from __future__ import annotations

from services.text import clean_text as normalize
from services.text import words as words_of

__all__ = ["normalize", "words_of"]
