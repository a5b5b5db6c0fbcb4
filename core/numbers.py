"""Numbers between words and digits, in one place for every stage.

* *speaking*: ``spoken_number(21) == "twenty one"``, ``spoken_ordinal(22) == "twenty second"``;
* *spelling out*: :func:`spell_numbers` rewrites digits in a transcript as words. Whisper writes
  "10 of clubs" and "7:30"; the NLU, the disfluency tagger and the WER references use words
  ("ten of clubs", "seven thirty"). Years-like and clock forms are read the common spoken way;
* *parsing*, two different questions with two names: :func:`parse_number` reads a phrase that *is*
  a number ("one hundred and five" -> 105, anything else -> None: the NLU's slot normalizer needs
  that strictness), :func:`find_number` finds the first number *in* free text ("4 people" -> 4,
  "a couple" -> 2: the dialog reads slot values that way).
"""

from __future__ import annotations

import re

_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]  # fmt: skip
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINAL_IRREGULAR = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip


# --------------------------------------------------------------------------- speaking


def spoken_number(n: int | float) -> str:
    """Words for a number: ``1234 -> "one thousand two hundred thirty four"``, ``2.5 -> "two point five"``."""
    if isinstance(n, float) and not n.is_integer():
        whole, _, frac = f"{n:.2f}".rstrip("0").partition(".")
        return f"{spoken_number(int(whole))} point {' '.join(_ONES[int(d)] for d in frac)}"
    n = int(n)
    if n < 0:
        return "minus " + spoken_number(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (" " + _ONES[ones] if ones else "")
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            return f"{spoken_number(head)} {name}" + (" " + spoken_number(rest) if rest else "")
    raise AssertionError("unreachable")


def spoken_ordinal(n: int) -> str:
    """``1 -> "first"``, ``22 -> "twenty second"``, ``30 -> "thirtieth"``."""
    words = spoken_number(n).split(" ")
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*words[:-1], last])


# --------------------------------------------------------------------------- spelling out


def _number(token: str) -> str:
    n = int(token)
    if len(token) == 4 and 1100 <= n <= 2099 and n % 100 != 0 and n // 100 != 20:
        return spoken_number(n // 100) + " " + (spoken_number(n % 100) if n % 100 >= 10 else "oh " + spoken_number(n % 100))
    if len(token) > 1 and token.startswith("0"):
        return " ".join(_ONES[int(c)] for c in token)
    if n >= 10**9:
        return " ".join(_ONES[int(c)] for c in token)
    return spoken_number(n)


def _clock(m: re.Match[str]) -> str:
    h, mm = int(m.group(1)), int(m.group(2))
    if mm == 0:
        return spoken_number(h) + (" o'clock" if not m.group(3) else "")
    minutes = spoken_number(mm) if mm >= 10 else "oh " + spoken_number(mm)
    return f"{spoken_number(h)} {minutes}"


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
    text = _ORDINAL.sub(lambda m: spoken_ordinal(int(m.group(1))), text)
    text = _PERCENT.sub(lambda m: _number(m.group(1)) + " percent", text)
    text = _DECIMAL.sub(lambda m: _number(m.group(1)) + " point " + " ".join(_ONES[int(c)] for c in m.group(2)), text)
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    return _INT.sub(lambda m: " " + _number(m.group(0)) + " ", text)


# --------------------------------------------------------------------------- parsing

_UNIT_VALUES = {
    "zero": 0, "oh": 0, "o": 0, "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TEN_VALUES = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALE_VALUES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_ORDINAL_VALUES = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fifteenth": 15, "twentieth": 20,
    "thirtieth": 30,
}


def parse_number(text: str) -> int | None:
    """``twenty two`` -> 22, ``one hundred and five`` -> 105, ``12`` -> 12; None if not a number."""
    tokens = [t for t in text.replace("-", " ").split() if t != "and"]
    if not tokens:
        return None
    if len(tokens) == 1 and tokens[0].isdigit():
        return int(tokens[0])
    total = current = 0
    seen = False
    for pos, tok in enumerate(tokens):
        if tok.isdigit():
            current += int(tok)
        elif tok in ("a", "an"):
            if pos != 0:
                return None
            current += 1
        elif tok in _UNIT_VALUES:
            current += _UNIT_VALUES[tok]
        elif tok in _TEN_VALUES:
            current += _TEN_VALUES[tok]
        elif tok in _ORDINAL_VALUES:
            current += _ORDINAL_VALUES[tok]
        elif tok in _SCALE_VALUES:
            scale = _SCALE_VALUES[tok]
            current = max(current, 1) * scale
            if scale >= 1000:
                total += current
                current = 0
        else:
            return None
        seen = True
    return total + current if seen else None


WORD_NUMBERS: dict[str, int] = {w: i for i, w in enumerate(_ONES)}
"""Number words (and a, couple, dozen...) to their values."""
WORD_NUMBERS.update({w: 10 * i for i, w in enumerate(_TENS) if w})
WORD_NUMBERS.update({"a": 1, "an": 1, "single": 1, "couple": 2, "dozen": 12, "oh": 0, "o": 0})
_ORDINAL_WORDS = {spoken_ordinal(i): i for i in range(1, 32)}


def find_number(text: str | None) -> float | None:
    """The first number in free text, digits or words: ``"4" -> 4``, ``"twenty one" -> 21``, ``"a couple" -> 2``.

    Returns ``None`` when *text* holds no number.
    """
    if not text:
        return None
    t = text.strip().lower().replace("-", " ").replace(",", "")
    t = re.sub(r"\ban? (?=couple|dozen|hundred|thousand)", "", t)
    m = re.search(r"-?\d+(?:\.\d+)?", t)
    if m:
        return float(m.group())
    total, current, seen = 0, 0, False
    for word in t.split():
        if word in _ORDINAL_WORDS:
            current += _ORDINAL_WORDS[word]
            seen = True
        elif word in WORD_NUMBERS:
            current += WORD_NUMBERS[word]
            seen = seen or word not in {"a", "an", "o"}
        elif word == "hundred" and seen:
            current *= 100
        elif word == "thousand" and seen:
            total += current * 1000
            current = 0
        elif word == "half" and seen:
            current += 0.5  # type: ignore[assignment]
    return float(total + current) if seen else None
