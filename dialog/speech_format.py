"""Say numbers, times, durations and dates the way a person would, and parse them back.

Everything here is pure (no clock, no I/O), so the dialog manager and the tests
can call it freely. Two directions:

- *speaking*: ``spoken_number(21) == "twenty one"``,
  ``spoken_time(8, 30) == "eight thirty a m"``,
  ``spoken_duration(300) == "five minutes"``,
  ``spoken_date(date(2026, 11, 26)) == "Thursday, November twenty sixth"``;
- *parsing* what the NLU hands over, tolerant of both its ``normalized`` form
  (``"08:30"``, ``"PT5M"``, ``"300"``, ``"4"``) and the words as spoken
  (``"eight thirty"``, ``"five minutes"``, ``"four"``). Each parser returns
  ``None`` when it cannot make sense of the text instead of raising.

"a m" / "p m" are written as two letters so every TTS voice says them as letters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from core.numbers import WORD_NUMBERS, find_number, spoken_number, spoken_ordinal

_MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


# --------------------------------------------------------------------------- speaking


def spoken_time(hour: int, minute: int) -> str:
    """A clock time, 12-hour style: ``(8, 30) -> "eight thirty a m"``, ``(12, 0) -> "noon"``."""
    if (hour, minute) == (12, 0):
        return "noon"
    if (hour, minute) == (0, 0):
        return "midnight"
    suffix = "a m" if hour < 12 else "p m"
    h12 = hour % 12 or 12
    if minute == 0:
        return f"{spoken_number(h12)} {suffix}"
    if minute < 10:
        return f"{spoken_number(h12)} oh {spoken_number(minute)} {suffix}"
    return f"{spoken_number(h12)} {spoken_number(minute)} {suffix}"


def _unit(n: int, word: str) -> str:
    return f"{spoken_number(n)} {word}{'' if n == 1 else 's'}"


def spoken_duration(seconds: float) -> str:
    """A length of time: ``300 -> "five minutes"``, ``5400 -> "one hour and thirty minutes"``."""
    total = int(round(seconds))
    if total <= 0:
        return "zero seconds"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        _unit(v, w) for v, w in ((days, "day"), (hours, "hour"), (minutes, "minute"), (secs, "second")) if v
    ]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def spoken_date(d: date, today: date | None = None) -> str:
    """A date: ``"Thursday, November twenty sixth"``; "today"/"tomorrow" when *today* is given and close."""
    if today is not None:
        delta = (d - today).days
        if delta == 0:
            return "today"
        if delta == 1:
            return "tomorrow"
        if delta == -1:
            return "yesterday"
        if 1 < delta < 7:
            return WEEKDAYS[d.weekday()]
    return f"{WEEKDAYS[d.weekday()]}, {_MONTHS[d.month - 1]} {spoken_ordinal(d.day)}"


def spoken_when(d: date, today: date) -> str:
    """A date as an adverbial: ``"today"``, ``"tomorrow"``, ``"on Friday"``, ``"on Monday, December first"``."""
    said = spoken_date(d, today)
    return said if said in {"today", "tomorrow", "yesterday"} else "on " + said


def spoken_list(items: list[str], conj: str = "and") -> str:
    """``["a", "b", "c"] -> "a, b and c"``."""
    items = [i for i in items if i]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {conj} " + items[-1]


# --------------------------------------------------------------------------- parsing

def parse_int(*candidates: str | None) -> int | None:
    """The first candidate that parses as a number, as an int."""
    for c in candidates:
        n = find_number(c)
        if n is not None:
            return int(n)
    return None


_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_UNIT_SECONDS = {
    "second": 1, "sec": 1, "s": 1, "minute": 60, "min": 60, "m": 60,
    "hour": 3600, "hr": 3600, "h": 3600, "day": 86400, "d": 86400,
}  # fmt: skip


def _parse_duration_one(text: str) -> float | None:
    t = text.strip()
    if not t:
        return None
    m = _ISO_DURATION.match(t.upper())
    if m and any(m.groupdict().values()):
        g = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
        return g["d"] * 86400 + g["h"] * 3600 + g["m"] * 60 + g["s"]
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        return float(t)
    low = t.lower().replace("-", " ")
    if re.search(r"\bhalf an? hour\b", low):
        low = low.replace("half an hour", "thirty minutes").replace("half a hour", "thirty minutes")
    if re.search(r"\bquarter of an hour\b|\ba quarter hour\b", low):
        return 900.0
    total, found = 0.0, False
    # "<number words> <unit>[s] [and a half]" repeated
    for m2 in re.finditer(
        r"([\w. ]+?)\s*(seconds?|secs?|minutes?|mins?|hours?|hrs?|days?)\b(\s+and\s+a\s+half)?", low
    ):
        qty_words = m2.group(1).replace("and", " ").strip()
        qty = find_number(qty_words.split(" and ")[-1]) if qty_words else None
        if qty is None:
            qty = 1.0 if re.search(r"\b(an?|one)\s*$", qty_words) or not qty_words else None
        if qty is None:
            continue
        unit = m2.group(2).rstrip("s") or "s"
        unit_s = _UNIT_SECONDS.get(unit, _UNIT_SECONDS.get(unit[:3], 60))
        if m2.group(3):
            qty += 0.5
        total += qty * unit_s
        found = True
    return total if found else None


def parse_duration(normalized: str | None, value: str | None = None) -> float | None:
    """Seconds from ``"PT5M"``, ``"300"``, ``"five minutes"``, ``"an hour and a half"``; else ``None``."""
    for c in (normalized, value):
        if c:
            d = _parse_duration_one(c)
            if d is not None and d > 0:
                return d
    return None


_TIME_DIGITS = re.compile(
    r"(?<![\d:])(\d{1,2})(?::|\.|h)?(\d{2})?\s*(a\.?\s?m\.?|p\.?\s?m\.?)?(?![\d])", re.I
)


def _ampm(hour: int, marker: str | None, text: str) -> int:
    low = text.lower()
    pm = bool(marker and marker.lower().startswith("p")) or bool(
        re.search(r"\b(evening|tonight|afternoon|at night)\b", low)
    )
    am = bool(marker and marker.lower().startswith("a")) or bool(re.search(r"\bmorning\b", low))
    if pm and hour < 12:
        return hour + 12
    if am and hour == 12:
        return 0
    return hour


def _parse_time_one(text: str) -> tuple[int, int] | None:
    t = text.strip().lower()
    if not t:
        return None
    iso = re.search(r"\d{4}-\d{2}-\d{2}[t ](\d{2}):(\d{2})", t)
    if iso:
        return int(iso.group(1)), int(iso.group(2))
    if re.search(r"\bnoon\b|\bmidday\b", t):
        return 12, 0
    if re.search(r"\bmidnight\b", t):
        return 0, 0
    marker_m = re.search(r"\b([ap])\.?\s?m\b\.?", t)
    marker = marker_m.group(1) + "m" if marker_m else None
    m = _TIME_DIGITS.search(t)
    if m and not re.fullmatch(r"\d{3,}", m.group(0).strip()):
        hour, minute = int(m.group(1)), int(m.group(2) or 0)
        if hour <= 24 and minute < 60:
            return _ampm(hour % 24, m.group(3) or marker, t), minute
    # words: "half past seven", "quarter to eight", "eight thirty", "seven o'clock"
    words = re.sub(r"[^a-z ]", " ", t.replace("o'clock", " ")).split()
    words = [
        w
        for w in words
        if w not in {"at", "for", "the", "around", "about", "a", "m", "p", "am", "pm", "o", "clock"}
    ]
    phrase = " ".join(words)
    rel = re.search(r"\b(half|quarter|[a-z ]+?)\s+(past|after|to|before|til)\s+([a-z]+)", phrase)
    if rel:
        minutes = {"half": 30, "quarter": 15}.get(rel.group(1).strip())
        if minutes is None:
            mins_f = find_number(rel.group(1).replace("minutes", ""))
            minutes = int(mins_f) if mins_f is not None else None
        hour_f = find_number(rel.group(3))
        if minutes is not None and hour_f is not None:
            hour = int(hour_f)
            if rel.group(2) in {"to", "before", "til"}:
                hour, minute = (hour - 1) % 24, 60 - minutes
            else:
                minute = minutes
            return _ampm(hour, marker, t), minute
    nums = [w for w in words if w in WORD_NUMBERS and w not in {"a", "an", "o", "couple", "dozen", "single"}]
    if not nums or nums[0] not in WORD_NUMBERS:
        return None
    hour = WORD_NUMBERS[nums[0]]
    if not 0 < hour <= 12 and nums[0] not in {"zero"}:
        return None
    rest = nums[1:]
    minute = 0
    if rest:
        if rest[0] in {"oh", "zero"} and len(rest) > 1:
            minute = WORD_NUMBERS[rest[1]]
        else:
            minute_f = find_number(" ".join(rest))
            minute = int(minute_f) if minute_f is not None else 0
    if minute >= 60:
        return None
    return _ampm(hour, marker, t), minute


def parse_time(normalized: str | None, value: str | None = None) -> tuple[int, int] | None:
    """``(hour, minute)`` in 24-hour time from ``"08:30"``, ``"8:30 pm"``, ``"eight thirty"``, ``"noon"``."""
    for c in (normalized, value):
        if c:
            got = _parse_time_one(c)
            if got is not None:
                return got
    return None


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A resolved ``timeRange`` slot: a day, maybe a clock time, and how to say it."""

    day: date
    at: time | None = None
    part_of_day: str | None = None
    explicit_day: bool = True
    """False when no day was said ("at seven") and *day* defaulted to today."""

    def spoken(self, today: date) -> str:
        when = spoken_when(self.day, today)
        if self.at is not None and self.day == today and self.part_of_day in {"evening", "night"}:
            return f"tonight at {spoken_time(self.at.hour, self.at.minute)}"
        if self.at is not None:
            return f"{when} at {spoken_time(self.at.hour, self.at.minute)}"
        if self.part_of_day:
            if self.day == today and self.part_of_day == "night":
                return "tonight"
            if self.day == today:
                return f"this {self.part_of_day}"
            if when == "tomorrow":
                return f"tomorrow {self.part_of_day}"
            return f"{when} {self.part_of_day}"
        return when


_PARTS_OF_DAY = {"morning": "morning", "afternoon": "afternoon", "evening": "evening", "tonight": "night",
                 "night": "night"}  # fmt: skip


_CLOCK_WORDS = re.compile(r"\d{1,2}:\d{2}|\d\s*[ap]\.?m\b|\bat\b|o'clock|\bnoon\b|\bmidnight\b")


def _parse_range_one(text: str, today: date) -> TimeRange | None:
    t = text.strip().lower()
    if not t:
        return None
    day: date | None = None
    iso = re.search(r"(\d{4})-(\d{2})-(\d{2})", t)
    if iso:
        try:
            day = date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        except ValueError:
            day = None
    elif re.search(r"\bday after tomorrow\b", t):
        day = today + timedelta(days=2)
    elif re.search(r"\btomorrow\b", t):
        day = today + timedelta(days=1)
    elif re.search(r"\b(today|now|tonight|this (morning|afternoon|evening))\b", t):
        day = today
    elif re.search(r"\bthis weekend\b|\bweekend\b", t):
        day = today + timedelta(days=(5 - today.weekday()) % 7)
    elif re.search(r"\bnext week\b", t):
        day = today + timedelta(days=7 - today.weekday())
    else:
        m = re.search(r"\bin (\w+(?: \w+)?) days?\b", t)
        if m and find_number(m.group(1)) is not None:
            day = today + timedelta(days=int(find_number(m.group(1)) or 0))
        for i, name in enumerate(WEEKDAYS):
            if re.search(rf"\b{name.lower()}\b", t):
                ahead = (i - today.weekday()) % 7
                if ahead == 0 or "next" in t:
                    ahead = ahead or 7
                day = today + timedelta(days=ahead)
                break
    part = None
    for word, name in _PARTS_OF_DAY.items():
        if re.search(rf"\b{word}\b", t):
            part = name
            break
    clock: time | None = None
    has_clock = _CLOCK_WORDS.search(t)
    stripped = re.sub(
        r"\b(today|tomorrow|tonight|this|next|on|day after|morning|afternoon|evening|night)\b", " ", t
    )
    for name in WEEKDAYS:
        stripped = stripped.replace(name.lower(), " ")
    if iso and "t" in t[iso.end() : iso.end() + 1]:
        hm = _parse_time_one(t)
        clock = time(*hm) if hm else None
    elif has_clock or (day is None and part is None):
        hm = _parse_time_one(stripped if stripped.strip() else t)
        if hm is not None:
            hour = hm[0]
            if part in {"evening", "night", "afternoon"} and hour < 12:
                hour += 12
            clock = time(hour % 24, hm[1])
    if day is None and clock is None and part is None:
        return None
    return TimeRange(day or today, clock, part, explicit_day=day is not None)


def parse_time_range(normalized: str | None, value: str | None, today: date) -> TimeRange | None:
    """A day (and maybe a clock time) from ``"tomorrow"``, ``"friday at 7 pm"``, ``"2026-11-27T19:00"``.

    Both forms are read: an ISO date in *normalized* fixes the day, while the spoken *value*
    keeps what a bare date drops ("tonight", "at seven").
    """
    by_norm = _parse_range_one(normalized, today) if normalized else None
    by_value = _parse_range_one(value, today) if value and value != normalized else None
    if by_norm is None or by_value is None:
        return by_norm or by_value
    iso_day = bool(re.match(r"\s*\d{4}-\d{2}-\d{2}", normalized or ""))
    # With the day fixed by an ISO date, a clock time comes from the words only if they say one:
    # the bare-number guess would read "jan 9" as nine o'clock.
    value_at = by_value.at if not iso_day or _CLOCK_WORDS.search(value.lower()) else None
    return TimeRange(
        by_norm.day if iso_day or not by_value.explicit_day else by_value.day,
        by_norm.at or value_at,
        by_value.part_of_day or by_norm.part_of_day,
        explicit_day=by_norm.explicit_day or by_value.explicit_day,
    )


_NUMBER_WORD = r"(?:\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|noon|midnight)"
_RANGE_START = re.compile(
    r"\b(today|tonight|tomorrow|day after tomorrow|this (?:morning|afternoon|evening|weekend)|next week|"
    r"(?:next |on )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|in \w+ days?|"
    rf"at {_NUMBER_WORD}\b|\d{{1,2}}(?::\d{{2}})?\s*[ap]\.?\s?m\b|noon|midnight)",
    re.I,
)


def find_time_range(text: str, today: date) -> str | None:
    """The part of free text that names a day or a clock time ("... tomorrow at seven pm"), or ``None``.

    Stricter than :func:`parse_time_range`: a bare number ("a table for four") is not a time here,
    because this reads whole sentences the NLU did not tag.
    """
    m = _RANGE_START.search(text or "")
    if not m:
        return None
    said = text[m.start() :].strip(" ?.!,")
    return said if _parse_range_one(said, today) is not None else None


def parse_datetime_iso(text: str) -> datetime | None:
    """``datetime.fromisoformat`` that returns ``None`` instead of raising."""
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
