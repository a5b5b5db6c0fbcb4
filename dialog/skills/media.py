"""Playback control and the speaker volume (``MediaControl``, ``SetVolume``).

``MediaControl`` acts on what the music skill is playing: ``state.vars["now_playing"]`` (the
track), ``state.vars["queue"]`` (the tracks it chose from: a playlist or the search hits, see
:mod:`dialog.skills.music`) and ``state.vars["paused"]``. With nothing playing, every command
gets a plain "nothing is playing" instead of a question about a device.

``SetVolume`` is the volume of the device the assistant speaks on, per session, 0 to 10
(default :data:`DEFAULT_VOLUME`), kept in ``state.vars["volume"]`` (mute keeps the level in
``state.vars["muted"]`` so unmute restores it). The dialog manager puts the level in effect
on every :class:`~dialog.manager.DialogResponse` (``volume``), where the orchestrator can
scale the reply audio; see :func:`speaker_volume`.
"""

from __future__ import annotations

import re
from typing import Any

from core.numbers import find_number, spoken_number
from dialog.skills.base import Reply, Skill, SkillConfig, SkillContext, skill
from dialog.state import Frame, SessionState

DEFAULT_VOLUME = 5
MAX_VOLUME = 10
STEP = 1
"""One "turn it up" on the 0-10 scale."""

COMMANDS = ("pause", "resume", "stop", "next", "previous", "shuffle", "repeat")
_COMMAND_WORDS = {
    "pause": "pause", "hold": "pause", "resume": "resume", "continue": "resume", "unpause": "resume",
    "play": "resume", "stop": "stop", "next": "next", "skip": "next", "previous": "previous", "back": "previous",
    "last": "previous", "shuffle": "shuffle", "repeat": "repeat", "loop": "repeat",
}  # fmt: skip
_CHANGES = {"up": "up", "louder": "up", "raise": "up", "increase": "up", "down": "down", "quieter": "down",
            "lower": "down", "decrease": "down", "softer": "down", "mute": "mute", "silence": "mute",
            "unmute": "unmute"}  # fmt: skip
_LEVEL_WORDS = {"max": MAX_VOLUME, "maximum": MAX_VOLUME, "full": MAX_VOLUME, "loudest": MAX_VOLUME, "min": 1,
                "minimum": 1, "lowest": 1, "half": 5, "halfway": 5, "medium": 5}  # fmt: skip


def speaker_volume(state: SessionState) -> int:
    """The session's speaker volume in effect, 0 (muted) to 10."""
    if state.vars.get("muted"):
        return 0
    return int(state.vars.get("volume", DEFAULT_VOLUME))


def volume_level(said: str | None, normalized: str | None = None) -> int | None:
    """A level on the 0-10 scale from "five", "7", "fifty percent", "max"; ``None`` if none or out of range.

    A round number above 10 is read as a percentage ("volume 60" is six), as people say it both
    ways; "volume twelve" is out of range.
    """
    text = (said or "").lower()
    for word, level in _LEVEL_WORDS.items():
        if re.search(rf"\b{word}\b", text):
            return level
    n = find_number(normalized) if normalized else None
    n = find_number(text) if n is None else n
    if n is None:
        return None
    if "percent" in text or "%" in text or (10 < n <= 100 and n % 10 == 0):
        n = n / 10
    level = int(round(n))
    return level if 0 <= level <= MAX_VOLUME else None


@skill("media", intents=("MediaControl", "SetVolume"))
class MediaSkill(Skill):
    slots = {"MediaControl": ("mediaCommand",), "SetVolume": ("volumeChange", "level")}

    def __init__(self, config: SkillConfig) -> None:
        super().__init__(config)
        self.tracks: list[dict[str, Any]] = config.load_json("music.json")["tracks"]

    def required(self, ctx: SkillContext, frame: Frame) -> list[str]:
        return ["mediaCommand"] if frame.intent == "MediaControl" else []

    def hints(self, ctx: SkillContext, intent: str, slot: str) -> list[str]:
        if slot == "mediaCommand":
            return list(COMMANDS)
        if slot == "volumeChange":
            return ["up", "down", "mute", "unmute"]
        return []

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        words = re.sub(r"[^a-z ]", " ", text.lower()).split()
        table = _COMMAND_WORDS if slot == "mediaCommand" else _CHANGES if slot == "volumeChange" else {}
        return next(((w, table[w]) for w in words if w in table), None)

    def _command(self, frame: Frame) -> str | None:
        for raw in (frame.norm("mediaCommand"), frame.get("mediaCommand")):
            if (command := self._command_in(raw or "")) is not None:
                return command
        return None

    def check(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        if frame.intent == "MediaControl" and frame.get("mediaCommand") and self._command(frame) is None:
            bad = frame.get("mediaCommand")
            frame.drop("mediaCommand")
            return Reply("MediaControl.unknown", {"said": bad}, action="ask_slot", ask="mediaCommand")
        return None

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        if frame.intent == "SetVolume":
            return self._volume(ctx, frame)
        # The NLU found the intent but no command span: the words said it ("stop the music");
        # a free "play" is not taken as one there (as before this helper was shared).
        command = self._command(frame) or self._command_in(ctx.text, play=False) or "pause"
        return self._control(ctx, command)

    @staticmethod
    def _command_in(text: str, *, play: bool = True) -> str | None:
        """The first command word of ``text`` (``play=False``: not "play")."""
        for w in re.sub(r"[^a-z ]", " ", text.lower()).split():
            if w in _COMMAND_WORDS and (play or w != "play"):
                return _COMMAND_WORDS[w]
        return None

    # ------------------------------------------------------------------ playback

    def _control(self, ctx: SkillContext, command: str) -> Reply:
        v = ctx.state.vars
        track = v.get("now_playing")
        if not track:
            return Reply("MediaControl.nothing", {"command": command})
        said = {"title": track.get("title", ""), "artist": track.get("artist", "")}
        paused = bool(v.get("paused"))
        if command == "pause":
            if paused:
                return Reply("MediaControl.already_paused", said)
            v["paused"] = True
            return Reply("MediaControl.paused", said)
        if command == "resume":
            if not paused:
                return Reply("MediaControl.already_playing", said)
            v["paused"] = False
            return Reply("MediaControl.resumed", said)
        if command == "stop":
            for k in ("now_playing", "paused", "queue"):
                v.pop(k, None)
            return Reply("MediaControl.stopped", said)
        if command in ("shuffle", "repeat"):
            v[command] = True
            return Reply(f"MediaControl.{command}", said)
        step = 1 if command == "next" else -1
        queue = list(v.get("queue") or []) or [{"title": t["title"], "artist": t["artist"]} for t in self.tracks]
        titles = [q.get("title") for q in queue]
        pos = titles.index(track.get("title")) if track.get("title") in titles else -1
        if v.get("shuffle") and step == 1 and len(queue) > 1:
            # Deterministic "shuffle": the session's turn count picks the jump (replayable stories).
            pos = (pos + 1 + ctx.state.turns % (len(queue) - 1)) % len(queue)
        else:
            pos = (pos + step) % len(queue)
        v["now_playing"], v["paused"] = queue[pos], False
        return Reply(f"MediaControl.{command}", {"title": queue[pos]["title"], "artist": queue[pos]["artist"]})

    # ------------------------------------------------------------------ volume

    def _volume(self, ctx: SkillContext, frame: Frame) -> Reply:
        v = ctx.state.vars
        level = int(v.get("volume", DEFAULT_VOLUME))
        change = (frame.norm("volumeChange") or frame.get("volumeChange") or "").lower().strip()
        change = _CHANGES.get(change, change)
        said = (frame.get("volumeChange") or "").lower()
        if said.split() and said.split()[-1] in _LEVEL_WORDS and not frame.get("level"):
            # "volume to max": the NLU maps it to "up", but it names a level.
            frame.set("level", said.split()[-1])
        if frame.get("level"):
            target = volume_level(frame.get("level"), frame.norm("level"))
            if target is None:
                return Reply("SetVolume.bad_level")
            v["volume"], v["muted"] = target, False
            return Reply("SetVolume.muted" if target == 0 else "SetVolume.set", {"level": spoken_number(target)})
        if change == "mute":
            if v.get("muted"):
                return Reply("SetVolume.already_muted")
            v["muted"] = True
            return Reply("SetVolume.muted")
        if change == "unmute":
            was = bool(v.get("muted"))
            v["muted"] = False
            if level == 0:
                v["volume"] = level = DEFAULT_VOLUME
            return Reply("SetVolume.unmuted" if was else "SetVolume.not_muted", {"level": spoken_number(level)})
        if change in ("up", "down"):
            new = max(0, min(MAX_VOLUME, level + (STEP if change == "up" else -STEP)))
            if v.get("muted") and change == "up":
                v["muted"] = False
                new = max(new, 1)
            elif new == level:
                return Reply(f"SetVolume.at_{'max' if change == 'up' else 'min'}", {"level": spoken_number(level)})
            v["volume"] = new
            return Reply("SetVolume.set", {"level": spoken_number(new)})
        if v.get("muted"):
            return Reply("SetVolume.is_muted", {"level": spoken_number(level)})
        return Reply("SetVolume.current", {"level": spoken_number(level)})
