"""Book rating (``RateBook``): ratings are stored as records, one per book (re-rating replaces)."""

from __future__ import annotations

import re

from core.numbers import spoken_number
from dialog.skills.base import Reply, Skill, SkillContext, display_name, skill
from dialog.speech_format import parse_int
from dialog.state import Frame


@skill("books", intents=("RateBook",))
class BookSkill(Skill):
    slots = {"RateBook": ("object_name", "rating_value", "best_rating", "rating_unit", "object_type",
                          "object_select", "object_part_of_series_type")}  # fmt: skip

    def required(self, ctx: SkillContext, frame: Frame) -> list[str]:
        return ["object_name", "rating_value"]

    def hints(self, ctx: SkillContext, intent: str, slot: str) -> list[str]:
        if slot == "rating_value":
            return ["one", "two", "three", "four", "five", "stars"]
        return []

    def ask_vars(self, ctx: SkillContext, frame: Frame, slot: str) -> dict[str, object]:
        return {
            **super().ask_vars(ctx, frame, slot),
            "object_name": display_name(frame.get("object_name")) or "it",
        }

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        if slot != "rating_value":
            return None
        m = re.search(r"\b(\w+)\s+(?:stars?|points?|out of)\b", text.lower())
        said = m.group(1) if m else (text if frame.expected_slot == slot else "")
        n = parse_int(said) if said else None
        return (said, str(n)) if n is not None else None

    def _best(self, frame: Frame) -> int:
        return parse_int(frame.norm("best_rating"), frame.get("best_rating")) or 5

    def check(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        if frame.get("rating_value"):
            value = parse_int(frame.norm("rating_value"), frame.get("rating_value"))
            best = self._best(frame)
            if value is None or not 0 <= value <= best:
                frame.drop("rating_value")
                return Reply(
                    "RateBook.bad_rating",
                    {"best": spoken_number(best)},
                    action="ask_slot",
                    ask="rating_value",
                )
        return None

    def _save(self, ctx: SkillContext, frame: Frame) -> dict[str, object]:
        title = display_name(frame.get("object_name"))
        value = parse_int(frame.norm("rating_value"), frame.get("rating_value")) or 0
        data = {
            "title": title,
            "rating": value,
            "best": self._best(frame),
            "type": frame.get("object_type") or "book",
        }
        for old in ctx.store.records("rating", ctx.session_id):
            if old.data.get("title", "").lower() == title.lower():
                ctx.store.update_record(old.record_id, status="replaced")
        record_id = ctx.store.add_record(ctx.session_id, "rating", data)
        return {"record_id": record_id, **data}

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        rec = self._save(ctx, frame)
        return Reply("RateBook.done", {"title": rec["title"], "rating": spoken_number(int(str(rec["rating"]))),
                                       "best": spoken_number(int(str(rec["best"])))}, record=rec)  # fmt: skip

    def amend(self, ctx: SkillContext, done: Frame, correction: Frame) -> Reply | None:
        if not correction.get("rating_value") or correction.get("object_name"):
            return None
        merged = Frame(done.intent, {**done.slots, **correction.slots})
        if parse_int(merged.norm("rating_value"), merged.get("rating_value")) is None:
            return None
        rec = self._save(ctx, merged)
        return Reply("RateBook.changed", {"title": rec["title"], "rating": spoken_number(int(str(rec["rating"]))),
                                          "best": spoken_number(int(str(rec["best"])))}, record=rec)  # fmt: skip
