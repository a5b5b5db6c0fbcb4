"""Restaurant booking (``BookRestaurant``) against a local list of restaurants.

A booking needs a party size and a time; the restaurant comes from its name,
or from cuisine / dish / type / city (best rated first). Booking is costly, so
it is read back and confirmed before it is stored; a correction right after
("actually make it six people") changes the stored booking.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any

from core.numbers import spoken_number
from dialog.skills.base import Reply, Skill, SkillConfig, SkillContext, find_phrase, skill
from dialog.speech_format import TimeRange, find_time_range, parse_int, parse_time_range
from dialog.state import Frame

_PARTY_WORDS = {"me": 1, "myself": 1, "just me": 1, "me and my wife": 2, "me and my husband": 2,
                "me and my partner": 2, "the two of us": 2, "couple": 2, "us two": 2}  # fmt: skip
MAX_PARTY = 20


def _norm(s: str | None) -> str:
    return re.sub(r"[^a-z0-9 ]", "", (s or "").lower()).strip()


@skill("restaurant", intents=("BookRestaurant",))
class RestaurantSkill(Skill):
    slots = {
        "BookRestaurant": ("restaurant_type", "party_size_number", "party_size_description", "timeRange", "city",
                           "state", "country", "restaurant_name", "sort", "served_dish", "cuisine", "facility",
                           "poi", "spatial_relation"),
    }  # fmt: skip

    def __init__(self, config: SkillConfig) -> None:
        super().__init__(config)
        data = config.load_json("restaurants.json")
        self.restaurants: list[dict[str, Any]] = data["restaurants"]
        self.default_city: str = data.get("default_city", "")

    def _party(self, frame: Frame) -> int | None:
        n = parse_int(frame.norm("party_size_number"), frame.get("party_size_number"))
        if n is None and frame.get("party_size_description"):
            desc = _norm(frame.get("party_size_description"))
            n = _PARTY_WORDS.get(desc) or parse_int(desc)
        return n

    def required(self, ctx: SkillContext, frame: Frame) -> list[str]:
        need = [] if frame.get("party_size_description") else ["party_size_number"]
        return [*need, "timeRange"]

    def hints(self, ctx: SkillContext, intent: str, slot: str) -> list[str]:
        if slot == "party_size_number":
            return ["two", "three", "four", "five", "six", "people"]
        if slot == "timeRange":
            return ["tonight", "tomorrow", "at", "seven", "eight", "p m"]
        if slot == "restaurant_name":
            return [r["name"] for r in self.restaurants]
        return []

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        low = text.lower()
        if slot == "party_size_number":
            m = re.search(r"\b(\w+)\s+(?:people|persons|guests|of us)\b", low) or re.search(
                r"\b(?:for|party of)\s+(\w+)\b(?!\s*(?:pm|am|p m|a m|o'clock|thirty|fifteen|forty))", low
            )
            if m and (n := parse_int(m.group(1))) is not None:
                return m.group(1), str(n)
            if frame.expected_slot == slot and (n := parse_int(low)) is not None:
                return low, str(n)
            return None
        if slot == "timeRange" and (said := find_time_range(text, ctx.today)):
            return said, said
        if slot == "restaurant_name":
            return find_phrase(text, [r["name"] for r in self.restaurants])
        if slot == "cuisine":
            return find_phrase(text, sorted({r["cuisine"] for r in self.restaurants}))
        return None

    def _when(self, ctx: SkillContext, frame: Frame) -> TimeRange | None:
        if not frame.get("timeRange"):
            return None
        tr = parse_time_range(frame.norm("timeRange"), frame.get("timeRange"), ctx.today)
        if tr is not None and not tr.explicit_day and frame.get("_day"):
            tr = TimeRange(date.fromisoformat(frame.get("_day") or ""), tr.at, tr.part_of_day)
        return tr

    def _pick(self, frame: Frame) -> list[dict[str, Any]]:
        name = _norm(frame.get("restaurant_name"))
        if name:
            return [r for r in self.restaurants if name in _norm(r["name"]) or _norm(r["name"]) in name]
        city = _norm(frame.get("city")) or self.default_city
        hits = [r for r in self.restaurants if r["city"] == city]
        for slot in ("cuisine", "restaurant_type", "served_dish"):
            want = _norm(frame.get(slot))
            if want and want not in {"restaurant", "place", "table"}:
                want = want.removesuffix("s") if slot != "cuisine" else want
                hits = [r for r in hits if want in _norm(" ".join([r["cuisine"], r["type"], *r["dishes"]]))]
        return sorted(hits, key=lambda r: -float(r["rating"]))

    def check(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        if frame.get("party_size_number") and self._party(frame) is None:
            bad = frame.get("party_size_number")
            frame.drop("party_size_number")
            return Reply(
                "BookRestaurant.bad_party", {"said": bad}, action="ask_slot", ask="party_size_number"
            )
        party = self._party(frame)
        if party is not None and not 0 < party <= MAX_PARTY:
            frame.drop("party_size_number", "party_size_description")
            return Reply("BookRestaurant.too_many", {"max": spoken_number(MAX_PARTY)}, action="ask_slot",
                         ask="party_size_number")  # fmt: skip
        tr = self._when(ctx, frame)
        if frame.get("timeRange") and (tr is None or tr.at is None):
            # A day without an hour ("tomorrow"): keep the day, ask for the time.
            if tr is not None:
                frame.set("_day", tr.day.isoformat())
            frame.drop("timeRange")
            return Reply("BookRestaurant.ask_time", {"day": tr.spoken(ctx.today) if tr else ""}, action="ask_slot",
                         ask="timeRange")  # fmt: skip
        hits = self._pick(frame)
        if not hits:
            what = " ".join(v for v in (frame.get("cuisine"), frame.get("served_dish"), frame.get("restaurant_type"),
                                        frame.get("restaurant_name")) if v) or "restaurant"  # fmt: skip
            return Reply(
                "BookRestaurant.none", {"what": what, "city": frame.get("city") or self.default_city.title()}
            )
        frame.record = {"restaurant": hits[0]["name"]}
        return None

    def _booking(self, ctx: SkillContext, frame: Frame) -> dict[str, Any]:
        tr = self._when(ctx, frame)
        assert tr is not None and tr.at is not None
        party = self._party(frame) or 2
        at = datetime.combine(tr.day, time(tr.at.hour, tr.at.minute))
        return {"restaurant": frame.record.get("restaurant") or self._pick(frame)[0]["name"], "party": party,
                "at": at.isoformat(timespec="minutes"), "spoken_when": tr.spoken(ctx.today)}  # fmt: skip

    def _vars(self, b: dict[str, Any]) -> dict[str, Any]:
        return {"restaurant": b["restaurant"], "party": spoken_number(b["party"]), "when": b["spoken_when"]}

    def confirm(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        return Reply("confirm.BookRestaurant", self._vars(self._booking(ctx, frame)), action="confirm")

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        booking = self._booking(ctx, frame)
        record_id = ctx.store.add_record(ctx.session_id, "booking", booking)
        return Reply("BookRestaurant.done", self._vars(booking), record={"record_id": record_id, **booking})

    def amend(self, ctx: SkillContext, done: Frame, correction: Frame) -> Reply | None:
        record_id = done.record.get("record_id")
        if record_id is None or not (correction.get("party_size_number") or correction.get("timeRange")):
            return None
        merged = Frame(done.intent, {**done.slots, **correction.slots}, record=dict(done.record))
        if self._party(merged) is None:
            return None
        tr = self._when(ctx, merged)
        if tr is None or tr.at is None:
            return None
        if not tr.explicit_day:  # "make it eight" keeps the booked day
            old_day = datetime.fromisoformat(done.record["at"]).date()
            merged.set("_day", old_day.isoformat())
        booking = self._booking(ctx, merged)
        ctx.store.update_record(int(record_id), booking)
        return Reply(
            "BookRestaurant.changed", self._vars(booking), record={"record_id": record_id, **booking}
        )
