"""Named lists (``CreateList``, ``AddToList``, ``RemoveFromList``, ``ReadList``, ``ClearList``, ``DeleteList``).

Lists belong to the household, not to one session: the shopping list written from the
kitchen is read back in the bedroom. Each list is one row of the ``kv`` table (namespace
``list``, key the normalized name, value ``{"name", "items"}``), written inside the turn's
transaction, so an item the user heard confirmed survives ``kill -9``.

Names are normalized the way people vary them: "my shopping list", "the Shopping List" and
"shopping" are one list; "todo", "to do" and "to-do" are one list. ``item`` is free text and
may hold several items ("milk, eggs and butter"): it is split on commas and "and".

Which list, when none is named: the only one if there is one; otherwise the skill asks
"To which list?" (and, for a removal, first looks for the item on every list). A list named
on ``AddToList`` that does not exist yet is created, and the reply says so.
"""

from __future__ import annotations

import re
from typing import Any

from core.numbers import spoken_number
from dialog.skills.base import Reply, Skill, SkillContext, skill
from dialog.speech_format import spoken_list
from dialog.state import Frame

NAMESPACE = "list"

_ALIASES = {"todo": "to-do", "to do": "to-do", "todos": "to-do", "to dos": "to-do", "to-dos": "to-do",
            "groceries": "grocery", "shopping": "shopping"}  # fmt: skip
_LEAD = re.compile(r"^(?:(?:to|on|onto|from|off|in|for)\s+(?!dos?\b))?(?:(?:my|the|our|a|an|new)\s+)*")
_TRAIL = re.compile(r"\s+(?:list|lists)$")
_ITEM_LEAD = re.compile(r"^(?:(?:some|a|an|the|more|a few|a couple of|a bag of|a box of)\s+)+")
_SPLIT = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+|\s+plus\s+|\s*&\s*")
_NOT_NAMES = {"yes", "no", "yeah", "yep", "nope", "okay", "ok", "sure", "please", "what", "huh", "hmm"}
_NAMED_LIST = re.compile(r"\b(?:to|on|onto|from|off|in)\s+(?:my|the|our)\s+([a-z0-9' -]+?)\s+list\b")


def list_key(name: str | None) -> str:
    """The key a list is stored under: ``"My Shopping List" -> "shopping"``, ``"todo" -> "to-do"``."""
    s = re.sub(r"[^a-z0-9' -]", " ", (name or "").lower())
    s = " ".join(s.split())
    s = _TRAIL.sub("", _LEAD.sub("", s)).strip()
    return _ALIASES.get(s, s)


def split_items(text: str | None) -> list[str]:
    """``"milk, eggs and butter" -> ["milk", "eggs", "butter"]``; leading "some"/"a" dropped.

    A dish named with "and" ("mac and cheese") is split too: the NLU gives one ``item`` span,
    and two items is the more common reading of "X and Y" in a list request.
    """
    out: list[str] = []
    for part in _SPLIT.split((text or "").lower()):
        part = _ITEM_LEAD.sub("", " ".join(re.sub(r"[^a-z0-9' -]", " ", part).split())).strip()
        if part and part not in out:
            out.append(part)
    return out


def _same_item(a: str, b: str) -> bool:
    """Items match in singular or plural ("egg" / "eggs", "tomato" / "tomatoes")."""
    def stem(s: str) -> str:
        s = s.strip().lower()
        return re.sub(r"(?:es|s)$", "", s) if len(s) > 3 else s
    return a.strip().lower() == b.strip().lower() or stem(a) == stem(b)


@skill("lists", intents=("CreateList", "AddToList", "RemoveFromList", "ReadList", "ClearList", "DeleteList"))
class ListSkill(Skill):
    slots = {
        "CreateList": ("listName",),
        "AddToList": ("item", "listName"),
        "RemoveFromList": ("item", "listName"),
        "ReadList": ("listName",),
        "ClearList": ("listName",),
        "DeleteList": ("listName",),
    }
    carry_over = {"AddToList": (("listName",),)}
    """"add eggs to the shopping list", then "and bread": the same list."""

    # ------------------------------------------------------------------ storage

    def lists(self, ctx: SkillContext) -> dict[str, dict[str, Any]]:
        """Every list, by key (public: the story runner checks lists through it)."""
        return ctx.store.kv_all(NAMESPACE)

    def _save(self, ctx: SkillContext, key: str, items: list[str]) -> None:
        ctx.store.kv_put(NAMESPACE, key, {"name": key, "items": items})

    def _live(self, ctx: SkillContext) -> dict[str, list[str]]:
        return {k: list(v.get("items", [])) for k, v in self.lists(ctx).items()}

    # ------------------------------------------------------------------ slots

    def _target(self, ctx: SkillContext, frame: Frame) -> str | None:
        """The list the request is about: the one named, else the only one there is."""
        if frame.get("listName"):
            return list_key(frame.norm("listName")) or list_key(frame.get("listName"))
        live = self._live(ctx)
        return next(iter(live)) if len(live) == 1 else None

    def required(self, ctx: SkillContext, frame: Frame) -> list[str]:
        need: list[str] = []
        if frame.intent in ("AddToList", "RemoveFromList"):
            need.append("item")
        if frame.intent == "CreateList" or self._target(ctx, frame) is None:
            need.append("listName")
        return need

    def hints(self, ctx: SkillContext, intent: str, slot: str) -> list[str]:
        if slot == "listName":
            return sorted(self._live(ctx))
        if slot == "item" and intent == "RemoveFromList":
            return sorted({i for items in self._live(ctx).values() for i in items})
        return []

    def ask_vars(self, ctx: SkillContext, frame: Frame, slot: str) -> dict[str, object]:
        v = dict(super().ask_vars(ctx, frame, slot))
        options = self.hints(ctx, frame.intent, slot)[:4] if slot == "listName" else []
        v["options"] = f", {spoken_list(options, 'or')}" if len(options) > 1 else ""
        return v

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        low = text.lower().strip(" .?!")
        if slot == "listName":
            m = _NAMED_LIST.search(low)
            if m:
                return m.group(1), list_key(m.group(1))
            if frame.expected_slot == "listName" and low and len(low.split()) <= 5 and low not in _NOT_NAMES:
                # The answer to "To which list?": "shopping", "the to-do list", "my christmas gifts".
                key = list_key(low)
                return (low, key) if key else None
            return None
        if slot == "item" and frame.expected_slot == "item" and low:
            said = re.sub(r"^(?:add|put|remove|take|delete)\s+", "", low)
            said = re.sub(r"\s+(?:to|on|from|off)\s+(?:my|the|our)\s+[a-z0-9' -]+\s+list$", "", said)
            return (said, said) if split_items(said) else None
        return None

    def check(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        if frame.intent == "AddToList" and frame.get("item") and not split_items(frame.norm("item")):
            frame.drop("item")
            return Reply("AddToList.no_item", action="ask_slot", ask="item")
        if frame.intent == "RemoveFromList" and frame.get("item") and not frame.get("listName"):
            items = split_items(frame.norm("item"))
            holding = [k for k, v in self._live(ctx).items() if any(_same_item(i, x) for i in items for x in v)]
            if not holding and self._live(ctx):
                return Reply("RemoveFromList.nowhere", {"items": spoken_list(items, "or")})
            if len(holding) == 1:
                frame.set("listName", holding[0])
        if frame.intent in ("RemoveFromList", "ReadList", "ClearList", "DeleteList"):
            live = self._live(ctx)
            if not live:
                return Reply("list.none")
            key = self._target(ctx, frame)
            if key is not None and key not in live:
                return Reply("list.unknown", {"list": key, "lists": spoken_list(sorted(live))})
        return None

    def confirm(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        key = self._target(ctx, frame)
        if key is None:
            return None
        items = self._live(ctx).get(key, [])
        if frame.intent == "ClearList" and items:
            return Reply("confirm.ClearList", {"list": key, "count": _count(len(items))}, action="confirm")
        if frame.intent == "DeleteList":
            return Reply("confirm.DeleteList", {"list": key}, action="confirm")
        return None

    # ------------------------------------------------------------------ intents

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        key = self._target(ctx, frame) or "shopping"
        live = self._live(ctx)
        items = live.get(key)
        record = {"list": key}
        if frame.intent == "CreateList":
            if items is not None:
                return Reply("CreateList.exists", {"list": key}, record=record)
            self._save(ctx, key, [])
            return Reply("CreateList.done", {"list": key}, record=record)
        if frame.intent == "AddToList":
            return self._add(ctx, key, items, split_items(frame.norm("item")))
        if frame.intent == "RemoveFromList":
            return self._remove(ctx, key, items or [], split_items(frame.norm("item")))
        if frame.intent == "ReadList":
            if not items:
                return Reply("ReadList.empty", {"list": key}, record=record)
            return Reply("ReadList.done", {"list": key, "items": spoken_list(items), "count": _count(len(items))},
                         record=record)  # fmt: skip
        if frame.intent == "ClearList":
            if not items:
                return Reply("ReadList.empty", {"list": key}, record=record)
            self._save(ctx, key, [])
            return Reply("ClearList.done", {"list": key}, record=record)
        ctx.store.kv_delete(NAMESPACE, key)  # DeleteList, confirmed
        return Reply("DeleteList.done", {"list": key})

    def _add(self, ctx: SkillContext, key: str, items: list[str] | None, new: list[str]) -> Reply:
        created = items is None
        current = list(items or [])
        added = [i for i in new if not any(_same_item(i, x) for x in current)]
        already = [i for i in new if i not in added]
        current.extend(added)
        self._save(ctx, key, current)
        record = {"list": key, "items": added}
        if not added:
            return Reply("AddToList.already", {"items": spoken_list(already), "list": key}, record=record)
        v = {"items": spoken_list(added), "list": key,
             "also": f" It already had {spoken_list(already)}." if already else ""}  # fmt: skip
        return Reply("AddToList.created" if created else "AddToList.done", v, record=record)

    def _remove(self, ctx: SkillContext, key: str, items: list[str], gone: list[str]) -> Reply:
        removed = [x for x in items if any(_same_item(g, x) for g in gone)]
        if not removed:
            return Reply("RemoveFromList.not_there", {"items": spoken_list(gone, "or"), "list": key})
        self._save(ctx, key, [x for x in items if x not in removed])
        return Reply("RemoveFromList.done", {"items": spoken_list(removed), "list": key},
                     record={"list": key, "removed": removed})  # fmt: skip

    def amend(self, ctx: SkillContext, done: Frame, correction: Frame) -> Reply | None:
        """"No, to the to-do list": move the items just added to the list named now."""
        if done.intent != "AddToList" or not correction.get("listName") or correction.get("item"):
            return None
        old, added = done.record.get("list"), list(done.record.get("items") or [])
        new = list_key(correction.norm("listName"))
        if not old or not new or new == old or not added:
            return None
        live = self._live(ctx)
        self._save(ctx, old, [x for x in live.get(old, []) if x not in added])
        reply = self._add(ctx, new, live.get(new), added)
        return Reply("AddToList.moved", {**reply.vars, "old": old}, record=reply.record)


def _count(n: int) -> str:
    return f"{spoken_number(n)} item{'s' if n != 1 else ''}"
