"""Time and date (``GetTime``, ``GetDate``) with :mod:`zoneinfo`.

City names map to time zones through the offline forecast file's places plus a
small table here; an unknown city gets a spoken "I don't know that one".
"""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from dialog.skills.base import Reply, Skill, SkillConfig, SkillContext, display_name, find_phrase, skill
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
}  # fmt: skip


@skill("clock", intents=("GetTime", "GetDate"))
class ClockSkill(Skill):
    slots = {"GetTime": ("city", "country", "state", "timeRange"), "GetDate": ("city", "timeRange")}

    def __init__(self, config: SkillConfig) -> None:
        super().__init__(config)
        self.zones = dict(_EXTRA_ZONES)
        try:
            places = json.loads((config.data_dir / "forecast.json").read_text())["places"]
            self.zones.update({k: v["tz"] for k, v in places.items() if "tz" in v})
        except (OSError, KeyError, ValueError):
            pass

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        return find_phrase(text, list(self.zones)) if slot == "city" else None

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        place = display_name(frame.get("city") or frame.get("state") or frame.get("country")) or None
        now = ctx.now
        if place:
            zone = self.zones.get(place.lower().strip().removeprefix("the "))
            if zone is None:
                return Reply("GetTime.unknown_place", {"place": place})
            now = ctx.now.astimezone(ZoneInfo(zone))
        if frame.intent == "GetDate":
            key = "GetDate.place" if place else "GetDate.today"
            return Reply(key, {"date": spoken_date(now.date()), "place": place or ""})
        key = "GetTime.place" if place else "GetTime.here"
        return Reply(key, {"time": spoken_time(now.hour, now.minute), "place": place or ""})
