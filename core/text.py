"""Text normalisation shared by every stage, and the one rule for cutting a reply into phrases.

* :func:`normalize_transcript`: what the ASR stage emits: lower case, digits spelled out, no
  punctuation, a few abbreviations said in full;
* :func:`normalize_text`: the form the disfluency and NLU models read: lower case, no
  punctuation, single spaces, apostrophes kept inside words ("what's", "o'clock"). Their training
  data goes through the same function, so neither model meets casing or punctuation it will not
  see at run time; :func:`words` splits it (slot and label indices refer to that list);
* :func:`split_phrases`: the reply cut for streaming TTS, first phrase short.

("Clean text" means one thing in QuickTurn: the transcript with the disfluencies removed,
:func:`core.types.clean_text`.)
"""

from __future__ import annotations

import re
import unicodedata

from core.numbers import spell_numbers

_PUNCT = re.compile(r"[^\w\s']+")
_LONE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")
_SPACES = re.compile(r"\s+")
_ASR_PUNCT = re.compile(r"[^\w\s']")


def normalize_text(text: str) -> str:
    """Lower-case, drop punctuation (keeping in-word apostrophes), squeeze spaces."""
    text = unicodedata.normalize("NFC", text).lower().replace("\u2019", "'").replace("_", " ")
    text = _PUNCT.sub(" ", text)
    text = _LONE_APOSTROPHE.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def words(text: str) -> list[str]:
    """The normalized words of ``text`` (slot and label indices refer to this list)."""
    cleaned = normalize_text(text)
    return cleaned.split(" ") if cleaned else []


_ABBREV = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint", "ok": "okay", "oz": "ounce"}


def normalize_transcript(text: str) -> str:
    """ASR output as the next stages expect it: lower case, digits spelled out, no punctuation."""
    text = spell_numbers(text.lower()).replace("-", " ")
    text = _ASR_PUNCT.sub(" ", text)
    return " ".join(_ABBREV.get(w, w) for w in text.split())


_FIRST_CLAUSE = re.compile(r"^(.+?[,.!?:;])(?:\s+|$)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
FIRST_PHRASE_MAX_WORDS = 6
"""The first phrase's synthesis time is what the user waits for: it is kept this short."""
PHRASE_MAX_WORDS = 16
"""Later phrases are cut to about this length too: one phrase is one synthesis call, which holds a
CPU core until it is done, so a long sentence (the help list, a long list read back) would hold the
core other sessions' replies need; and synthesis is paced to playback phrase by phrase."""
_CLAUSE_END = re.compile(r"[,;:]$")


def split_phrases(text: str, first_max_words: int = FIRST_PHRASE_MAX_WORDS) -> list[str]:
    """Cut a reply into TTS phrases: the first (short) clause, then whole sentences.

    The first phrase ends at the first punctuation mark; if it would still be longer than
    ``first_max_words + 2`` words, it is cut after ``first_max_words`` words, so the TTS can
    start speaking after synthesizing only a few words. A later sentence longer than
    ``PHRASE_MAX_WORDS + 2`` words is cut at commas (:data:`PHRASE_MAX_WORDS`).

    ``"Sure. What size: small, medium or large?" -> ["Sure.", "What size: small, medium or large?"]``
    ``"Okay, a large latte." -> ["Okay,", "a large latte."]``
    """
    text = " ".join(text.split())
    if not text:
        return []
    m = _FIRST_CLAUSE.match(text)
    if m and m.end() < len(text):
        first, rest = m.group(1), [s for s in _SENTENCE_END.split(text[m.end() :]) if s]
    else:
        first, rest = (m.group(1) if m else text), []
    head = first.split()
    if len(head) > first_max_words + 2:
        first, rest = " ".join(head[:first_max_words]), [" ".join(head[first_max_words:]), *rest]
    return [first, *(piece for phrase in rest for piece in _cap(phrase.split(), PHRASE_MAX_WORDS))]


def _cap(words: list[str], max_words: int) -> list[str]:
    """One sentence in pieces of at most ``max_words + 2`` words, each cut after the last comma
    (or semicolon, colon) of its first ``max_words`` words when there is one past the first
    quarter, else after ``max_words`` words: a comma is where a speaker pauses anyway."""
    pieces: list[str] = []
    while len(words) > max_words + 2:
        cut = next((i + 1 for i in range(max_words - 1, max_words // 4 - 1, -1) if _CLAUSE_END.search(words[i])), max_words)
        pieces.append(" ".join(words[:cut]))
        words = words[cut:]
    if words:
        pieces.append(" ".join(words))
    return pieces
