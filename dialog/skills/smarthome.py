"""Smart-home devices (``DeviceOn``, ``DeviceOff``, ``SetDeviceLevel``, ``SetDeviceColor``) with a registry
and stored state.

The registry is ``dialog/data/devices.json`` (id, name, room, aliases, level
unit, a ``color`` for lights that can change it; smart plugs are switch-only
devices); each device's state (``on``, ``level``, ``color``) lives in the ``kv``
table (namespace ``device``), so it survives restarts. A name found in several
rooms asks "which room?"; an unknown device is refused by name. "The volume" is
not a device: it is the speaker's, and ``SetVolume`` (:mod:`dialog.skills.media`)
handles it, so a device request naming it says how to ask.
"""

from __future__ import annotations

import re
from typing import Any

from core.numbers import parse_number, spoken_number
from dialog.skills.base import Reply, Skill, SkillConfig, SkillContext, find_phrase, skill
from dialog.speech_format import parse_int, spoken_list
from dialog.state import Frame, Slot


def _norm(s: str | None) -> str:
    s = re.sub(r"[^a-z0-9 ]", "", (s or "").lower())
    return re.sub(r"^(the|my|all the|all)\s+", "", s).strip()


_LEVEL_WORDS = {"half": 0.5, "halfway": 0.5, "medium": 0.5, "low": 0.2, "minimum": 0.0, "min": 0.0, "high": 1.0,
                "maximum": 1.0, "max": 1.0, "full": 1.0}  # fmt: skip


COLORS = ("red", "blue", "green", "white", "warm white", "cool white", "yellow", "orange", "purple", "pink",
          "violet", "cyan", "turquoise", "magenta", "lavender", "gold", "amber")
_COLOR_SYNONYMS = {"warm": "warm white", "soft white": "warm white", "daylight": "cool white", "cold white": "cool white",
                   "cool": "cool white", "normal": "warm white", "teal": "turquoise", "aqua": "cyan", "lilac": "lavender",
                   "night mode": "amber", "reading mode": "cool white", "relax mode": "warm white"}  # fmt: skip
_NOT_DEVICES = {"volume", "sound", "speaker volume", "music", "speaker", "speakers"}


def color_name(said: str | None) -> str | None:
    """A color the lights can take: ``"Warm"`` -> ``"warm white"``; ``None`` if not one."""
    c = " ".join(re.sub(r"[^a-z ]", " ", (said or "").lower()).split()).removesuffix(" color").removesuffix(" colour")
    c = _COLOR_SYNONYMS.get(c, c)
    return c if c in COLORS else None


_LEVEL_FILLERS = {"percent", "per", "cent", "%", "degrees", "degree", "level", "to", "the", "at", "up", "down", "by"}


def is_level_phrase(said: str) -> bool:
    """A level as people say it for a device: a number with at most a device unit, or "half"/"max"...

    "ten meters" is not one: meters is no device's unit, so "go forward ten meters" is
    not a device command, whatever the NLU's nearest intent was.
    """
    words = [w for w in re.sub(r"[^a-z0-9% ]", " ", said.lower()).split() if w not in _LEVEL_FILLERS]
    if not words:
        return False
    if len(words) == 1 and words[0] in _LEVEL_WORDS:
        return True
    return parse_number(" ".join(words)) is not None


def _level(frame: Frame, dev: dict[str, Any]) -> int | None:
    """The level asked for, in the device's unit: digits, number words, or "half"/"maximum"/"low"."""
    said = (frame.get("level") or "").lower().strip()
    for word, fraction in _LEVEL_WORDS.items():
        if said in (word, f"{word} level", f"to {word}"):
            lo, hi = dev.get("min", 0), dev.get("max", 100)
            return (
                round(lo + fraction * (hi - lo))
                if fraction
                else max(lo, 1 if dev.get("kind") == "light" else lo)
            )
    return parse_int(frame.norm("level"), frame.get("level"))


@skill("smarthome", intents=("DeviceOn", "DeviceOff", "SetDeviceLevel", "SetDeviceColor"))
class SmartHomeSkill(Skill):
    slots = {
        "DeviceOn": ("device", "room"),
        "DeviceOff": ("device", "room"),
        "SetDeviceLevel": ("device", "room", "level"),
        "SetDeviceColor": ("device", "room", "color"),
    }
    carry_over = {"DeviceOn": (("device",),), "DeviceOff": (("device",),), "SetDeviceLevel": (("device",),),
                  "SetDeviceColor": (("device",),)}  # fmt: skip

    def __init__(self, config: SkillConfig) -> None:
        super().__init__(config)
        self.devices: list[dict[str, Any]] = config.load_json("devices.json")["devices"]
        self.rooms = sorted({d["room"] for d in self.devices})

    def _matches(self, frame: Frame) -> list[dict[str, Any]]:
        name = _norm(frame.get("device"))
        room = _norm(frame.get("room"))
        hits = []
        for d in self.devices:
            names = {d["name"], *d.get("aliases", [])}
            full = {f"{d['room']} {n}" for n in names}
            if name in names or name in full or name.rstrip("s") in {n.rstrip("s") for n in names}:
                hits.append(d)
        if frame.intent == "SetDeviceColor" and not room and any("color" in d for d in hits):
            hits = [d for d in hits if "color" in d]  # "make the lights blue": the lights that can
        if room:
            in_room = [d for d in hits if d["room"] == room or room in d["room"]]
            return in_room if in_room else []
        return hits

    def understood(self, ctx: SkillContext, intent: str, slots: dict[str, Slot]) -> bool:
        # A level request that names no device must at least say a level a device can take.
        if intent != "SetDeviceLevel" or "device" in slots or "level" not in slots:
            return True
        return is_level_phrase(slots["level"].value)

    def required(self, ctx: SkillContext, frame: Frame) -> list[str]:
        need = ["device"]
        if frame.get("device") and len(self._matches(frame)) > 1 and not frame.get("room"):
            need.append("room")
        if frame.intent == "SetDeviceLevel":
            need.append("level")
        if frame.intent == "SetDeviceColor":
            need.append("color")
        return need

    def hints(self, ctx: SkillContext, intent: str, slot: str) -> list[str]:
        if slot == "device":
            return sorted({d["name"] for d in self.devices})
        if slot == "room":
            return self.rooms
        if slot == "level":
            return ["percent", "fifty", "twenty", "degrees"]
        if slot == "color":
            return list(COLORS)
        return []

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        if slot == "device":
            names = {n for d in self.devices for n in (d["name"], *d.get("aliases", []))}
            return find_phrase(text, names)
        if slot == "level":
            m = re.search(r"\b([\w ]+?)\s*(?:percent|%|degrees?)", text.lower())
            said = m.group(1) if m else (text if frame.expected_slot == "level" else "")
            n = parse_int(said.split(" to ")[-1]) if said else None
            return (said, str(n)) if n is not None else None
        return super().extract(ctx, frame, slot, text)

    def ask_vars(self, ctx: SkillContext, frame: Frame, slot: str) -> dict[str, object]:
        v = dict(super().ask_vars(ctx, frame, slot))
        if slot == "room":
            v["options"] = spoken_list([d["room"] for d in self._matches(frame)], "or")
        return v

    def check(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        if frame.intent == "SetDeviceColor" and frame.get("color") and color_name(frame.norm("color")) is None \
                and color_name(frame.get("color")) is None:
            bad = frame.get("color")
            frame.drop("color")
            return Reply("device.bad_color", {"said": bad, "options": spoken_list(list(COLORS[:6]), "or")},
                         action="ask_slot", ask="color")  # fmt: skip
        if not frame.get("device"):
            return None
        if _norm(frame.get("device")) in _NOT_DEVICES:
            return Reply("device.volume")
        hits = self._matches(frame)
        if not hits:
            where = f" in the {frame.get('room')}" if frame.get("room") else ""
            return Reply("device.unknown", {"device": frame.get("device"), "where": where})
        if frame.intent == "SetDeviceLevel" and frame.get("level"):
            dev = hits[0]
            if "level_unit" not in dev:
                return Reply("device.no_level", {"device": dev["name"]})
            level = _level(frame, dev)
            lo, hi = dev.get("min", 0), dev.get("max", 100)
            if level is None or not lo <= level <= hi:
                frame.drop("level")
                return Reply("device.bad_level", {"low": spoken_number(lo), "high": spoken_number(hi)},
                             action="ask_slot", ask="level")  # fmt: skip
        if frame.intent == "SetDeviceColor" and "color" not in hits[0]:
            where = f"{hits[0]['room']} " if frame.get("room") and hits[0]["room"] not in hits[0]["name"] else ""
            return Reply("device.no_color", {"device": where + hits[0]["name"]})
        return None

    def _state(self, ctx: SkillContext, dev: dict[str, Any]) -> dict[str, Any]:
        stored = ctx.store.kv_get("device", dev["id"])
        state = {"on": dev.get("on", False), "level": dev.get("level")}
        if "color" in dev:
            state["color"] = dev["color"]
        return {**state, **(stored or {})}

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        dev = self._matches(frame)[0]
        state = self._state(ctx, dev)
        label = dev["name"]
        if dev["kind"] != "thermostat" and dev["room"] not in dev["name"]:
            label = f"{dev['room']} {dev['name']}"
        plural = dev["name"].endswith("s")
        v: dict[str, Any] = {
            "device": label,
            "be": "are" if plural else "is",
            "them": "them" if plural else "it",
        }
        record = {"device_id": dev["id"]}
        if frame.intent == "SetDeviceColor":
            color = color_name(frame.norm("color")) or color_name(frame.get("color")) or "warm white"
            state.update(color=color, on=True)
            ctx.store.kv_put("device", dev["id"], state)
            return Reply("SetDeviceColor.done", {**v, "color": color}, record=record)
        if frame.intent == "SetDeviceLevel":
            level = _level(frame, dev) or 0
            state.update(level=level, on=True if dev["kind"] != "thermostat" else state["on"])
            ctx.store.kv_put("device", dev["id"], state)
            unit = {"percent": "percent", "degrees": "degrees", "volume": ""}.get(
                dev.get("level_unit", ""), ""
            )
            said = f"volume {spoken_number(level)}" if unit == "" else f"{spoken_number(level)} {unit}"
            return Reply("SetDeviceLevel.done", {**v, "level": said}, record=record)
        want = frame.intent == "DeviceOn"
        if state["on"] == want:
            return Reply(f"{frame.intent}.already", v, record=record)
        state["on"] = want
        ctx.store.kv_put("device", dev["id"], state)
        return Reply(f"{frame.intent}.done", v, record=record)

    def device_state(self, ctx: SkillContext, device_id: str) -> dict[str, Any]:
        """The current state of a device by id (for tests and status queries)."""
        dev = next(d for d in self.devices if d["id"] == device_id)
        return self._state(ctx, dev)
