"""Time and date (``GetTime``, ``GetDate``) with :mod:`zoneinfo`.

City names map to time zones through the offline forecast file's places plus a
small table here; an unknown city gets a spoken "I don't know that one".

``GetDate`` also answers which day a date or a holiday falls on ("what day is christmas",
"what day is march fifteenth"): the next such day from today, with its weekday. Holidays
are computed, not looked up (Easter by the Gregorian computus, Thanksgiving as the fourth
Thursday of November: the US holidays, as the rest of the assistant speaks US English).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from core.numbers import spoken_number
from dialog.skills.base import Reply, Skill, SkillConfig, SkillContext, display_name, find_phrase, skill
from dialog.skills.reminders import frame_day
from dialog.speech_format import spoken_date, spoken_time
from dialog.state import Frame

_EXTRA_ZONES = {
    "los angeles": "America/Los_Angeles", "denver": "America/Denver", "toronto": "America/Toronto",
    "mexico city": "America/Mexico_City", "sao paulo": "America/Sao_Paulo", "dublin": "Europe/Dublin",
    "amsterdam": "Europe/Amsterdam", "moscow": "Europe/Moscow", "cairo": "Africa/Cairo", "dubai": "Asia/Dubai",
    "delhi": "Asia/Kolkata", "beijing": "Asia/Shanghai", "shanghai": "Asia/Shanghai", "hong kong": "Asia/Hong_Kong",
    "singapore": "Asia/Singapore", "seoul": "Asia/Seoul", "auckland": "Pacific/Auckland", "honolulu": "Pacific/Honolulu",
    "lisbon": "Europe/Lisbon", "vienna": "Europe/Vienna", "nairobi": "Africa/Nairobi", "lagos": "Africa/Lagos",
    "bangkok": "Asia/Bangkok", "france": "Europe/Paris", "germany": "Europe/Berlin", "japan": "Asia/Tokyo", "england": "Europe/London",
    "tokyo": "Asia/Tokyo", "osaka": "Asia/Tokyo", "kyoto": "Asia/Tokyo", "london": "Europe/London", "paris": "Europe/Paris",
    "new york": "America/New_York", "new york city": "America/New_York", "nyc": "America/New_York",
    "chicago": "America/Chicago", "houston": "America/Chicago", "dallas": "America/Chicago", "phoenix": "America/Phoenix",
    "san francisco": "America/Los_Angeles", "seattle": "America/Los_Angeles", "vancouver": "America/Vancouver",
    "miami": "America/New_York", "atlanta": "America/New_York", "washington": "America/New_York",
    "boston": "America/New_York", "montreal": "America/Toronto", "buenos aires": "America/Argentina/Buenos_Aires",
    "rio de janeiro": "America/Sao_Paulo", "lima": "America/Lima", "bogota": "America/Bogota",
    "berlin": "Europe/Berlin", "munich": "Europe/Berlin", "madrid": "Europe/Madrid", "barcelona": "Europe/Madrid",
    "rome": "Europe/Rome", "milan": "Europe/Rome", "athens": "Europe/Athens", "istanbul": "Europe/Istanbul",
    "stockholm": "Europe/Stockholm", "oslo": "Europe/Oslo", "copenhagen": "Europe/Copenhagen",
    "helsinki": "Europe/Helsinki", "warsaw": "Europe/Warsaw", "prague": "Europe/Prague", "zurich": "Europe/Zurich",
    "brussels": "Europe/Brussels", "edinburgh": "Europe/London", "kyiv": "Europe/Kyiv", "kiev": "Europe/Kyiv",
    "johannesburg": "Africa/Johannesburg", "cape town": "Africa/Johannesburg", "tel aviv": "Asia/Jerusalem",
    "jerusalem": "Asia/Jerusalem", "riyadh": "Asia/Riyadh", "tehran": "Asia/Tehran", "karachi": "Asia/Karachi",
    "mumbai": "Asia/Kolkata", "new delhi": "Asia/Kolkata", "bangalore": "Asia/Kolkata", "kolkata": "Asia/Kolkata",
    "dhaka": "Asia/Dhaka", "jakarta": "Asia/Jakarta", "manila": "Asia/Manila", "taipei": "Asia/Taipei",
    "kuala lumpur": "Asia/Kuala_Lumpur", "hanoi": "Asia/Ho_Chi_Minh", "sydney": "Australia/Sydney",
    "melbourne": "Australia/Melbourne", "brisbane": "Australia/Brisbane", "perth": "Australia/Perth",
    "wellington": "Pacific/Auckland", "anchorage": "America/Anchorage", "hawaii": "Pacific/Honolulu",
    "china": "Asia/Shanghai", "india": "Asia/Kolkata", "italy": "Europe/Rome", "spain": "Europe/Madrid",
    "australia": "Australia/Sydney", "brazil": "America/Sao_Paulo", "mexico": "America/Mexico_City",
    "canada": "America/Toronto", "korea": "Asia/Seoul", "south korea": "Asia/Seoul", "russia": "Europe/Moscow",
    "ireland": "Europe/Dublin", "scotland": "Europe/London", "uk": "Europe/London", "united kingdom": "Europe/London",
    "egypt": "Africa/Cairo", "greece": "Europe/Athens", "turkey": "Europe/Istanbul", "thailand": "Asia/Bangkok",
    "california": "America/Los_Angeles", "texas": "America/Chicago", "florida": "America/New_York",
    "new zealand": "Pacific/Auckland", "portugal": "Europe/Lisbon", "netherlands": "Europe/Amsterdam",
}  # fmt: skip


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The *n*-th *weekday* (0 = Monday) of the month; ``n=-1`` the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def easter(year: int) -> date:
    """Western Easter Sunday (the anonymous Gregorian computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return date(year, month, day + 1)


HOLIDAYS: dict[str, tuple[str, Callable[[int], date]]] = {
    "christmas": ("Christmas", lambda y: date(y, 12, 25)),
    "christmas eve": ("Christmas Eve", lambda y: date(y, 12, 24)),
    "boxing day": ("Boxing Day", lambda y: date(y, 12, 26)),
    "new years day": ("New Year's Day", lambda y: date(y, 1, 1)),
    "new years eve": ("New Year's Eve", lambda y: date(y, 12, 31)),
    "halloween": ("Halloween", lambda y: date(y, 10, 31)),
    "valentines day": ("Valentine's Day", lambda y: date(y, 2, 14)),
    "st patricks day": ("Saint Patrick's Day", lambda y: date(y, 3, 17)),
    "april fools day": ("April Fools' Day", lambda y: date(y, 4, 1)),
    "independence day": ("Independence Day", lambda y: date(y, 7, 4)),
    "juneteenth": ("Juneteenth", lambda y: date(y, 6, 19)),
    "veterans day": ("Veterans Day", lambda y: date(y, 11, 11)),
    "cinco de mayo": ("Cinco de Mayo", lambda y: date(y, 5, 5)),
    "earth day": ("Earth Day", lambda y: date(y, 4, 22)),
    "groundhog day": ("Groundhog Day", lambda y: date(y, 2, 2)),
    "thanksgiving": ("Thanksgiving", lambda y: _nth_weekday(y, 11, 3, 4)),
    "easter": ("Easter", easter),
    "good friday": ("Good Friday", lambda y: easter(y) - timedelta(days=2)),
    "easter monday": ("Easter Monday", lambda y: easter(y) + timedelta(days=1)),
    "mothers day": ("Mother's Day", lambda y: _nth_weekday(y, 5, 6, 2)),
    "fathers day": ("Father's Day", lambda y: _nth_weekday(y, 6, 6, 3)),
    "memorial day": ("Memorial Day", lambda y: _nth_weekday(y, 5, 0, -1)),
    "labor day": ("Labor Day", lambda y: _nth_weekday(y, 9, 0, 1)),
    "martin luther king day": ("Martin Luther King Day", lambda y: _nth_weekday(y, 1, 0, 3)),
    "presidents day": ("Presidents' Day", lambda y: _nth_weekday(y, 2, 0, 3)),
    "columbus day": ("Columbus Day", lambda y: _nth_weekday(y, 10, 0, 2)),
}
_HOLIDAY_SYNONYMS = {
    "xmas": "christmas", "christmas day": "christmas", "new year": "new years day", "new years": "new years day",
    "new year day": "new years day", "new year eve": "new years eve", "valentines": "valentine", "valentine": "valentines day",
    "fourth of july": "independence day", "july fourth": "independence day", "4th of july": "independence day",
    "july 4th": "independence day", "thanksgiving day": "thanksgiving", "easter sunday": "easter",
    "st patrick": "st patricks day", "saint patricks day": "st patricks day", "st paddys day": "st patricks day",
    "mlk day": "martin luther king day", "labour day": "labor day", "halloween day": "halloween",
}  # fmt: skip


def holiday_key(said: str | None) -> str | None:
    """``"New Year's Eve" -> "new years eve"``, ``"xmas" -> "christmas"``; ``None`` if not a known holiday."""
    s = " ".join(re.sub(r"[^a-z0-9 ]", "", (said or "").lower().replace("'s", "s")).split())
    s = re.sub(r"^(?:the|this|next)\s+", "", s)
    for _ in range(2):
        s = _HOLIDAY_SYNONYMS.get(s, s)
    return s if s in HOLIDAYS else None


def next_holiday(key: str, today: date) -> date:
    """The next day (today included) the holiday falls on."""
    when = HOLIDAYS[key][1](today.year)
    return when if when >= today else HOLIDAYS[key][1](today.year + 1)


@skill("clock", intents=("GetTime", "GetDate"))
class ClockSkill(Skill):
    slots = {"GetTime": ("city", "country", "state", "timeRange"), "GetDate": ("city", "timeRange", "holiday", "date")}

    def __init__(self, config: SkillConfig) -> None:
        super().__init__(config)
        self.zones = dict(_EXTRA_ZONES)
        try:
            places = json.loads((config.data_dir / "forecast.json").read_text())["places"]
            self.zones.update({k: v["tz"] for k, v in places.items() if "tz" in v})
        except (OSError, KeyError, ValueError):
            pass

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        if slot == "city":
            return find_phrase(text, list(self.zones))
        if slot == "holiday":
            low = text.lower().replace("'s", "s")
            phrases = [*HOLIDAYS, *_HOLIDAY_SYNONYMS]
            got = find_phrase(low, phrases)
            return (got[0], holiday_key(got[0]) or got[0]) if got else None
        return None

    def _zone(self, place: str) -> str | None:
        key = re.sub(r"[^a-z ]", "", place.lower()).strip().removeprefix("the ")
        return self.zones.get(key) or self.zones.get(key.split(",")[0].strip())

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        if frame.intent == "GetDate" and (frame.get("holiday") or frame.get("date")):
            return self._which_day(ctx, frame)
        place = display_name(frame.get("city") or frame.get("state") or frame.get("country")) or None
        now = ctx.now
        if place:
            zone = self._zone(place)
            if zone is None:
                return Reply("GetTime.unknown_place", {"place": place})
            now = ctx.now.astimezone(ZoneInfo(zone))
        if frame.intent == "GetDate":
            key = "GetDate.place" if place else "GetDate.today"
            return Reply(key, {"date": spoken_date(now.date()), "place": place or ""})
        key = "GetTime.place" if place else "GetTime.here"
        return Reply(key, {"time": spoken_time(now.hour, now.minute), "place": place or ""})

    def _which_day(self, ctx: SkillContext, frame: Frame) -> Reply:
        """"What day is christmas" / "what day is march fifteenth": the weekday and how far off."""
        today = ctx.today
        if frame.get("holiday"):
            key = holiday_key(frame.norm("holiday")) or holiday_key(frame.get("holiday"))
            if key is None:
                return Reply("GetDate.unknown_holiday", {"holiday": frame.get("holiday")})
            name, day = HOLIDAYS[key][0], next_holiday(key, today)
        else:
            found = frame_day(frame, today)
            if found is None:
                return Reply("GetDate.unknown_date", {"said": frame.get("date")})
            name, day = spoken_date(found).split(", ", 1)[1], found
        delta = (day - today).days
        v = {"name": name, "date": spoken_date(day), "weekday": spoken_date(day).split(",")[0]}
        if frame.get("date") and not frame.get("holiday") and delta > 1:
            return Reply("GetDate.weekday", v)
        if delta == 0:
            return Reply("GetDate.is_today", v)
        if delta == 1:
            return Reply("GetDate.is_tomorrow", v)
        if delta < 0:
            return Reply("GetDate.was", {**v, "days": spoken_number(-delta)})
        return Reply("GetDate.falls_on", {**v, "days": f"{spoken_number(delta)} day{'s' if delta != 1 else ''}"})
