"""Creative-work and screening search (``SearchCreativeWork``, ``SearchScreeningEvent``), offline.

Works come from ``dialog/data/creative.json``; showtimes from
``dialog/data/screenings.json`` (they repeat daily, so the file never goes stale).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from core.numbers import spoken_number
from dialog.skills.base import Reply, Skill, SkillConfig, SkillContext, display_name, find_phrase, skill
from dialog.speech_format import (
    TimeRange,
    find_time_range,
    parse_time,
    parse_time_range,
    spoken_list,
    spoken_time,
)
from dialog.state import Frame


def _norm(s: str | None) -> str:
    return re.sub(r"[^a-z0-9 ]", "", (s or "").lower()).removeprefix("the ").strip()


_TYPES = {"movie": ("movie", "film"), "book": ("book", "novel"), "TV show": ("tv", "show", "series", "television"),
          "game": ("game", "video game"), "album": ("album", "record"), "song": ("song", "track")}  # fmt: skip


def _year_words(year: int) -> str:
    head, tail = divmod(year, 100)
    if 2000 <= year < 2010:
        return spoken_number(year)
    return f"{spoken_number(head)} {'hundred' if tail == 0 else ('oh ' if tail < 10 else '') + spoken_number(tail)}"


@skill("search", intents=("SearchCreativeWork", "SearchScreeningEvent"))
class SearchSkill(Skill):
    slots = {
        "SearchCreativeWork": ("object_name", "object_type"),
        "SearchScreeningEvent": ("movie_name", "location_name", "timeRange", "object_type", "movie_type",
                                 "object_location_type", "spatial_relation"),
    }  # fmt: skip
    carry_over = {"SearchScreeningEvent": (("location_name",), ("timeRange",))}

    def __init__(self, config: SkillConfig) -> None:
        super().__init__(config)
        self.works: list[dict[str, Any]] = config.load_json("creative.json")["works"]
        sc = config.load_json("screenings.json")
        self.cinemas: list[dict[str, Any]] = sc["cinemas"]
        self.showings: list[dict[str, Any]] = sc["showings"]

    def required(self, ctx: SkillContext, frame: Frame) -> list[str]:
        return ["object_name"] if frame.intent == "SearchCreativeWork" else []

    def hints(self, ctx: SkillContext, intent: str, slot: str) -> list[str]:
        if slot in ("object_name", "movie_name"):
            return [w["title"] for w in self.works]
        if slot == "location_name":
            return [c["name"] for c in self.cinemas]
        return []

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        if slot == "timeRange" and (said := find_time_range(text, ctx.today)):
            return said, said
        if slot == "location_name":
            return find_phrase(text, [n for c in self.cinemas for n in (c["name"], *c.get("aliases", []))])
        if slot in ("object_name", "movie_name"):
            return super().extract(ctx, frame, slot, text)
        return None

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        if frame.intent == "SearchCreativeWork":
            return self._work(frame)
        return self._screenings(ctx, frame)

    def _work(self, frame: Frame) -> Reply:
        title = _norm(frame.get("object_name"))
        hits = [w for w in self.works if _norm(w["title"]) == title] or [
            w for w in self.works if title and (title in _norm(w["title"]) or _norm(w["title"]) in title)
        ]
        kind = _norm(frame.get("object_type"))
        if kind:
            typed = [w for w in hits if any(k in kind for k in _TYPES.get(w["type"], (w["type"].lower(),)))]
            hits = typed or hits
        if not hits:
            return Reply("SearchCreativeWork.not_found", {"title": frame.get("object_name") or "that"})
        w = hits[0]
        return Reply("SearchCreativeWork.found", {"title": w["title"], "type": w["type"], "year": _year_words(int(w["year"])),
                                                  "creator": w["creator"], "about": w["about"]})  # fmt: skip

    def _cinema(self, name: str | None) -> dict[str, Any] | None:
        want = _norm(name)
        if not want:
            return None
        for c in self.cinemas:
            if (
                want in {_norm(c["name"]), *(_norm(a) for a in c.get("aliases", []))}
                or _norm(c["name"]) in want
            ):
                return c
        return None

    def _screenings(self, ctx: SkillContext, frame: Frame) -> Reply:
        tr = (
            parse_time_range(frame.norm("timeRange"), frame.get("timeRange"), ctx.today)
            if frame.get("timeRange")
            else None
        )
        day: date = tr.day if tr else ctx.today
        when = TimeRange(tr.day, None, tr.part_of_day).spoken(ctx.today) if tr else "today"
        weekend = day.weekday() >= 5
        shows = [s for s in self.showings if weekend or not s.get("weekend_only")]
        cinema = self._cinema(frame.get("location_name"))
        if frame.get("location_name") and cinema is None:
            return Reply("SearchScreeningEvent.no_cinema", {"cinema": frame.get("location_name")})
        if cinema is not None:
            shows = [s for s in shows if s["cinema"] == cinema["name"]]
        movie = _norm(frame.get("movie_name"))
        if movie:
            shows = [s for s in shows if movie in _norm(s["movie"]) or _norm(s["movie"]) in movie]
        if tr is not None and tr.part_of_day in {"evening", "night"}:
            shows = [{**s, "times": [t for t in s["times"] if t >= "17:00"]} for s in shows]
        shows = [s for s in shows if s["times"]]
        if not shows:
            return Reply("SearchScreeningEvent.none", {"movie": display_name(frame.get("movie_name")) or "anything",
                                                       "when": when, "cinema": cinema["name"] if cinema else "the cinemas nearby"})  # fmt: skip
        if movie:
            parts = []
            for s in shows:
                times = spoken_list([spoken_time(*(parse_time(t) or (0, 0))) for t in s["times"]])
                parts.append(f"at {s['cinema']} at {times}")
            return Reply(
                "SearchScreeningEvent.movie",
                {"movie": shows[0]["movie"], "when": when, "showings": "; and ".join(parts)},
            )
        titles = sorted({s["movie"] for s in shows})
        return Reply("SearchScreeningEvent.list", {"when": when, "cinema": cinema["name"] if cinema else "nearby cinemas",
                                                   "movies": spoken_list(titles), "count": spoken_number(len(titles))})  # fmt: skip
