"""Text cleaning for the NLU stage: the shared ASR-style normalisation (services/text.py)."""

from __future__ import annotations

from services.text import clean_text, words

__all__ = ["clean_text", "words"]
