"""Slot normalization: spoken words -> canonical values for the dialog manager.

* numbers: ``twenty two`` -> ``22``, ``a hundred and five`` -> ``105``, ``3`` -> ``3``
* times: ``eight thirty`` -> ``08:30``, ``7 pm`` -> ``19:00``, ``quarter to eight`` -> ``07:45``,
  ``noon`` -> ``12:00``
* durations (ISO 8601): ``five minutes`` -> ``PT5M``, ``an hour and a half`` -> ``PT1H30M``
* dates: ``tomorrow`` -> ISO date relative to ``today``; ``next friday``, ``jan 9``,
  ``two weeks from now`` -> the date; ``tomorrow at 7 pm`` -> ``2026-11-27T19:00``;
  anything else is returned as the words.

Every function returns ``None`` when it cannot make sense of the words;
:func:`normalize_slot` then falls back to the words themselves.
"""

from __future__ import annotations

import datetime as dt
import re

from core.numbers import parse_number

_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _number_prefix(tokens: list[str]) -> tuple[int | None, int]:
    """Longest number at the start of ``tokens``: (value, tokens used)."""
    for n in range(len(tokens), 0, -1):
        if tokens[n - 1] == "and":
            continue
        value = parse_number(" ".join(tokens[:n]))
        if value is not None:
            return value, n
    return None, 0


def normalize_time(text: str) -> str | None:
    """A clock time as ``HH:MM`` (24 h): ``seven thirty pm`` -> ``19:30``."""
    t = re.sub(r"\b(at|around|about|by|for|the)\b", " ", text.lower())
    t = t.replace("a m", "am").replace("p m", "pm").replace("o'clock", "").replace("oclock", "")
    t = re.sub(r"(\d)(am|pm)\b", r"\1 \2", t)
    tokens = t.split()
    pm = am = False
    for marker in ("pm", "tonight", "evening", "afternoon", "night"):
        if marker in tokens or f"in the {marker}" in t:
            pm = True
    for marker in ("am", "morning"):
        if marker in tokens:
            am = True
    tokens = [x for x in tokens if x not in {"am", "pm", "tonight", "in", "this", "tomorrow", "today", "morning", "evening", "afternoon", "night"}]
    if not tokens:
        return None
    if tokens == ["noon"] or tokens == ["midday"]:
        return "12:00"
    if tokens == ["midnight"]:
        return "00:00"
    hour = minute = None
    joined = " ".join(tokens)
    m = re.fullmatch(r"(\d{1,2})[: ](\d{2})", joined)
    if m:
        hour, minute = int(m.group(1)), int(m.group(2))
    elif tokens[0] in ("half", "quarter") and len(tokens) >= 3 and tokens[1] in ("past", "to"):
        h = parse_number(" ".join(tokens[2:]))
        if h is None:
            return None
        delta = 30 if tokens[0] == "half" else 15
        hour, minute = (h, delta) if tokens[1] == "past" else ((h - 1) % 24, 60 - delta)
    elif len(tokens) >= 3 and tokens[-2] in ("past", "to"):
        mins, n = _number_prefix(tokens[:-2])
        h = parse_number(tokens[-1])
        if mins is None or h is None or n != len(tokens) - 2:
            return None
        hour, minute = (h, mins) if tokens[-2] == "past" else ((h - 1) % 24, 60 - mins)
    else:
        h = parse_number(tokens[0])
        if h is None:
            return None
        rest = tokens[1:]
        if rest and rest[0] in ("oh", "o") and len(rest) == 2:
            rest = rest[1:]
        mins = parse_number(" ".join(rest)) if rest else 0
        if mins is None:
            return None
        hour, minute = h, mins
    if hour is None or minute is None or not (0 <= hour <= 24 and 0 <= minute < 60):
        return None
    if pm and hour < 12:
        hour += 12
    if am and hour == 12:
        hour = 0
    return f"{hour % 24:02d}:{minute:02d}"


_DURATION_UNITS = {
    "second": "S", "seconds": "S", "sec": "S", "secs": "S",
    "minute": "M", "minutes": "M", "min": "M", "mins": "M",
    "hour": "H", "hours": "H", "hr": "H", "hrs": "H",
    "day": "D", "days": "D",
}


def normalize_duration(text: str) -> str | None:
    """An ISO 8601 duration: ``five minutes`` -> ``PT5M``, ``an hour and a half`` -> ``PT1H30M``."""
    tokens = [t for t in text.lower().replace("-", " ").split() if t not in ("for", "of", "about", "around", "just")]
    unit_s = {"S": 1, "M": 60, "H": 3600, "D": 86400}
    seconds = 0.0
    pending: float | None = None
    last_unit: int | None = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tokens[i : i + 3] == ["and", "a", "half"] or tokens[i : i + 2] == ["and", "half"]:
            step = 3 if tokens[i + 1] == "a" else 2
            if pending is not None:
                pending += 0.5
            elif last_unit is not None:
                seconds += 0.5 * last_unit
            else:
                return None
            i += step
            continue
        if tok == "half" and i + 2 < len(tokens) and tokens[i + 1] in ("a", "an") and tokens[i + 2] in _DURATION_UNITS:
            seconds += 0.5 * unit_s[_DURATION_UNITS[tokens[i + 2]]]
            last_unit = unit_s[_DURATION_UNITS[tokens[i + 2]]]
            i += 3
            continue
        if tok in ("and", "plus"):
            i += 1
            continue
        if tok in ("couple", "few"):
            pending = 2.0 if tok == "couple" else 3.0
            i += 1
            continue
        if tok in _DURATION_UNITS:
            last_unit = unit_s[_DURATION_UNITS[tok]]
            seconds += (1.0 if pending is None else pending) * last_unit
            pending = None
            i += 1
            continue
        num, n = _number_prefix(tokens[i:])
        if num is None:
            return None
        pending = float(num)
        i += n
    if last_unit is None or seconds <= 0:
        return None
    total = int(round(seconds))
    d, rem = divmod(total, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    out = "P" + (f"{d}D" if d else "")
    if h or m or s:
        out += "T" + (f"{h}H" if h else "") + (f"{m}M" if m else "") + (f"{s}S" if s else "")
    return out


def duration_seconds(iso: str) -> int:
    """``PT1H30M`` -> 5400."""
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", iso)
    if not m:
        raise ValueError(f"not an ISO 8601 duration: {iso!r}")
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s


_WEEKDAY_ABBREVIATIONS = {
    "mon": "monday", "tue": "tuesday", "tues": "tuesday", "wed": "wednesday", "weds": "wednesday",
    "thu": "thursday", "thur": "thursday", "thurs": "thursday", "fri": "friday", "sat": "saturday",
    "sun": "sunday",
}  # fmt: skip
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]  # fmt: skip
_MONTH_NAMES = {name: k for k, name in enumerate(_MONTHS, start=1)} | {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10,
    "nov": 11, "dec": 12,
}  # fmt: skip
_CLOCK_HINT = re.compile(r"\bat\b|\d{1,2}:\d{2}|\b\d{1,2}\s*[ap]\.?\s?m\b|\b[ap]m\b|o'?clock|\bnoon\b|\bmidnight\b")


def _add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole months, clamped to the month's last day (Jan 31 + 1 month = Feb 28/29)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def _day_number(tokens: list[str]) -> int | None:
    """``5``, ``5th``, ``fifth``, ``twenty first`` -> the day of the month (1-31), else None."""
    if not tokens:
        return None
    words = [re.sub(r"^(\d{1,2})(st|nd|rd|th)$", r"\1", t) for t in tokens]
    n = parse_number(" ".join(words))
    return n if n is not None and 1 <= n <= 31 else None


def _calendar_date(tokens: list[str], today: dt.date) -> dt.date | None:
    """``jan 9``, ``december 25th 2027``, ``5th of may``, ``june the third``: the date, else None.

    Without a year, the next such day from ``today`` on (a request is about the future).
    """
    months = [k for k, t in enumerate(tokens) if t in _MONTH_NAMES]
    if len(months) != 1:
        return None
    k = months[0]
    month = _MONTH_NAMES[tokens[k]]
    before = [t for t in tokens[:k] if t != "of"]
    after = list(tokens[k + 1 :])
    year: int | None = None
    if after and re.fullmatch(r"\d{4}", after[-1]):
        year = int(after.pop())
    if before and after:
        return None
    day = _day_number(after or before)
    if day is None:
        return None
    if year is not None:
        try:
            return dt.date(year, month, day)
        except ValueError:
            return None
    when = _next_valid(today.year, month, day)
    if when is not None and when < today:
        when = _next_valid(today.year + 1, month, day)
    return when


def _next_valid(year: int, month: int, day: int) -> dt.date | None:
    """The first ``month``/``day`` from ``year`` on that exists (Feb 29: the next leap year)."""
    for y in range(year, year + 8):
        try:
            return dt.date(y, month, day)
        except ValueError:
            continue
    return None


def _date_only(t: str, today: dt.date) -> dt.date | None:
    """The day named by ``t`` (already lower case, filler words removed), or None."""
    if t in ("today", "tonight", "now", "right now", "evening", "morning", "afternoon", "night"):
        return today
    if t in ("tomorrow", "tomorrow morning", "tomorrow evening", "tomorrow night", "tomorrow afternoon"):
        return today + dt.timedelta(days=1)
    if t in ("day after tomorrow",):
        return today + dt.timedelta(days=2)
    if t == "yesterday":
        return today - dt.timedelta(days=1)
    # The weekend is its Saturday and next week its Monday, as the dialog reads them (dialog/speech_format.py).
    if t in ("weekend", "next weekend"):
        saturday = today + dt.timedelta(days=(5 - today.weekday()) % 7)
        return saturday + dt.timedelta(days=7 if t.startswith("next") else 0)
    if t == "next week":
        return today + dt.timedelta(days=7 - today.weekday())
    m = re.fullmatch(r"(?:in (.+) (day|week|month|year)s?)|(?:(.+) (day|week|month|year)s? from (?:now|today))", t)
    if m:
        n = parse_number(m.group(1) or m.group(3))
        unit = m.group(2) or m.group(4)
        if n is None:
            return None
        if unit in ("month", "year"):
            return _add_months(today, n * (12 if unit == "year" else 1))
        return today + dt.timedelta(days=n * (7 if unit == "week" else 1))
    m = re.fullmatch(r"(next )?(\w+)", t)
    if m and (m.group(2) in _WEEKDAYS or m.group(2) in _WEEKDAY_ABBREVIATIONS):
        name = _WEEKDAY_ABBREVIATIONS.get(m.group(2), m.group(2))
        ahead = (_WEEKDAYS.index(name) - today.weekday()) % 7
        if ahead == 0 or m.group(1):
            ahead = ahead or 7
        return today + dt.timedelta(days=ahead)
    return _calendar_date(t.split(), today)


def normalize_date(text: str, today: dt.date | None = None) -> str | None:
    """A day as ISO ``YYYY-MM-DD``, with a clock time ``YYYY-MM-DDTHH:MM`` when one is said.

    Relative days (``tomorrow``, ``in three days``, ``two weeks from now``, ``in a month``),
    weekdays (``next friday``, ``mon``), ``this weekend`` (its Saturday), ``next week`` (its
    Monday) and calendar dates (``jan 9``, ``the 5th of may``, ``december 25th 2027``: without a
    year, the next one from today); ``tomorrow at 7 pm`` and ``7 pm on friday`` give the day and
    the time. Why ISO: the dialog manager reads one form (``parse_time_range``), whatever was said.
    Anything else (``sometime in june``, holidays, meal times) returns None: the words stay.
    """
    today = today or dt.date.today()
    t = " ".join(w for w in text.lower().replace(",", " ").split() if w not in ("on", "the", "for", "this", "coming"))
    day = _date_only(t, today)
    if day is not None:
        return day.isoformat()
    if not _CLOCK_HINT.search(t):
        return None
    # A day and a clock time: try each cut into a day part and a time part, either order.
    words = t.split()
    for cut in range(1, len(words)):
        for day_words, time_words in ((words[:cut], words[cut:]), (words[cut:], words[:cut])):
            when = _date_only(" ".join(day_words), today)
            if when is None:
                continue
            # "tonight at 8" is 20:00: the part of the day goes with the time words.
            parts = [w for w in day_words if w in ("tonight", "morning", "afternoon", "evening", "night")]
            clock = normalize_time(" ".join(time_words + parts))
            if clock is not None:
                return f"{when.isoformat()}T{clock}"
    return None


_NUMBER_SLOTS = {"party_size_number", "rating_value", "best_rating", "year", "level", "number"}
_TIME_SLOTS = {"time"}
_DURATION_SLOTS = {"duration"}
_DATE_SLOTS = {"timeRange", "date"}


def normalize_slot(slot: str, value: str, kind: str | None = None, today: dt.date | None = None) -> str:
    """The canonical value for ``slot`` (by its kind, else by its name), or ``value`` itself."""
    kind = kind or ""
    out: str | None = None
    if kind == "number" or slot in _NUMBER_SLOTS:
        n = parse_number(value)
        if n is None:
            m = re.match(r"^(.*?)\s*(percent|degrees?|%)$", value)
            if m:
                n = parse_number(m.group(1))
        out = None if n is None else str(n)
    elif kind == "time" or slot in _TIME_SLOTS:
        out = normalize_time(value)
    elif kind == "duration" or slot in _DURATION_SLOTS:
        out = normalize_duration(value)
    elif kind == "date" or slot in _DATE_SLOTS:
        out = normalize_date(value, today)
    return out if out is not None else value
