"""The plainly named baseline dialog: one templated reply per intent, no state.

It is the fallback when the stateful :mod:`dialog.manager` cannot be loaded,
and a reference point for tests of the orchestrator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.text import split_phrases
from core.types import NluHints, NluResult
from dialog.base import DialogBackend

TEMPLATES: dict[str, str] = {
    "GetWeather": "Okay. Here is the weather{city}.",
    "PlayMusic": "Sure. Playing {artist}{track}{genre}.",
    "AddToPlaylist": "Okay. Added to your playlist.",
    "BookRestaurant": "Okay. I can book a table for you.",
    "RateBook": "Thanks. Your rating is saved.",
    "SearchCreativeWork": "Sure. Searching for that now.",
    "SearchScreeningEvent": "Sure. Looking up showtimes.",
    "SetTimer": "Okay. Timer set{duration}.",
    "CancelTimer": "Okay. Timer cancelled.",
    "SetAlarm": "Okay. Alarm set{time}.",
    "CancelAlarm": "Okay. Alarm cancelled.",
    "GetTime": "Sure. Let me check the time.",
    "GetDate": "Sure. Let me check the date.",
    "DeviceOn": "Okay. Turning it on.",
    "DeviceOff": "Okay. Turning it off.",
    "SetDeviceLevel": "Okay. Done.",
    "orderDrink": "Sure. One {size}{coffeeDrink} coming up.",
    "Greet": "Hello. How can I help?",
    "Goodbye": "Goodbye.",
    "Help": "Sure. You can ask for the weather, music, timers, alarms, lights or a coffee.",
    "Cancel": "Okay. Cancelled.",
    "Repeat": "Sorry. I have nothing to repeat.",
    "Affirm": "Okay.",
    "Deny": "Okay.",
}
FALLBACK = "Sorry, I can't help with that yet."


@dataclass
class TemplateReply:
    text: str
    phrases: list[str]
    action: str
    intent: str
    end_session: bool = False
    hint_words: list[str] = field(default_factory=list)
    expected: NluHints | None = None
    frame: dict[str, str] | None = None  # stateless: no task is kept


class TemplatedDialog(DialogBackend):
    """Stateless intent → sentence templates with slot values filled in."""

    name = "templated"

    def handle(
        self, session_id: str, turn_id: str, nlu: NluResult, transcript: str = "", clean_text: str = ""
    ) -> TemplateReply:
        template = TEMPLATES.get(nlu.intent)
        if template is None:
            return TemplateReply(FALLBACK, split_phrases(FALLBACK), "fallback", nlu.intent)
        slots = nlu.slot_dict()
        fill = {
            "city": f" in {slots['city']}" if "city" in slots else "",
            "artist": slots.get("artist", ""),
            "track": (" " + slots["track"]) if "track" in slots else "",
            "genre": (" " + slots["genre"]) if "genre" in slots else "",
            "duration": f" for {slots['duration']}" if "duration" in slots else "",
            "time": f" for {slots['time']}" if "time" in slots else "",
            "size": (slots["size"] + " ") if "size" in slots else "",
            "coffeeDrink": slots.get("coffeeDrink", "coffee"),
        }
        text = " ".join(template.format(**fill).split()).replace(" .", ".")
        if text.endswith("Playing."):
            text = "Sure. Playing some music."
        return TemplateReply(text, split_phrases(text), "respond", nlu.intent, end_session=nlu.intent == "Goodbye")

    def plan(
        self, session_id: str, turn_id: str, nlu: NluResult, transcript: str = "", clean_text: str = ""
    ) -> TemplateReply:
        """Stateless: the plan is the reply."""
        return self.handle(session_id, turn_id, nlu, transcript, clean_text)
