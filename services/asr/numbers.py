"""Spell out digits the way people say them, so every stage sees words.

Whisper writes "10 of clubs" and "7:30"; the NLU, the disfluency tagger and the
WER references use words ("ten of clubs", "seven thirty"). Years-like and
clock forms are read the common spoken way.
"""

from __future__ import annotations

import re

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORD = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def int_to_words(n: int) -> str:
    """0 ≤ n < 10**9 in words ("one hundred twenty three")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + int_to_words(rest))
    for div, name in ((10**6, "million"), (1000, "thousand")):
        if n >= div:
            rest = n % div
            return int_to_words(n // div) + f" {name}" + ("" if rest == 0 else " " + int_to_words(rest))
    raise ValueError(n)


def ordinal_words(n: int) -> str:
    words = int_to_words(n).split()
    last = words[-1]
    if last in _ORD:
        words[-1] = _ORD[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _number(token: str) -> str:
    n = int(token)
    if len(token) == 4 and 1100 <= n <= 2099 and n % 100 != 0 and n // 100 != 20:
        return int_to_words(n // 100) + " " + (int_to_words(n % 100) if n % 100 >= 10 else "oh " + int_to_words(n % 100))
    if len(token) > 1 and token.startswith("0"):
        return " ".join(_ONES[int(c)] for c in token)
    if n >= 10**9:
        return " ".join(_ONES[int(c)] for c in token)
    return int_to_words(n)


def _clock(m: re.Match[str]) -> str:
    h, mm = int(m.group(1)), int(m.group(2))
    if mm == 0:
        return int_to_words(h) + (" o'clock" if not m.group(3) else "")
    minutes = int_to_words(mm) if mm >= 10 else "oh " + int_to_words(mm)
    return f"{int_to_words(h)} {minutes}"


_CLOCK = re.compile(r"\b(\d{1,2}):(\d{2})(\s*[ap]\.?m\.?)?")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_PERCENT = re.compile(r"\b(\d+)%")
_DECIMAL = re.compile(r"\b(\d+)\.(\d+)\b")
_INT = re.compile(r"\d+")


_AT_TIME = re.compile(r"\b(at|for|until|till|by)\s+(\d{1,2})\.?(\d{2})\b")


def spell_numbers(text: str) -> str:
    """Replace digit sequences with spoken words."""
    # "at 730" / "at 7.30" is a clock time (Whisper drops or changes the colon), read "seven thirty".
    text = _AT_TIME.sub(lambda m: f"{m.group(1)} {m.group(2)}:{m.group(3)}" if int(m.group(3)) < 60 else m.group(0), text)
    text = _CLOCK.sub(lambda m: _clock(m) + (m.group(3) or ""), text)
    text = _ORDINAL.sub(lambda m: ordinal_words(int(m.group(1))), text)
    text = _PERCENT.sub(lambda m: _number(m.group(1)) + " percent", text)
    text = _DECIMAL.sub(lambda m: _number(m.group(1)) + " point " + " ".join(_ONES[int(c)] for c in m.group(2)), text)
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    return _INT.sub(lambda m: " " + _number(m.group(0)) + " ", text)
