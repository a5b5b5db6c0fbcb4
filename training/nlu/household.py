"""Real household and out-of-scope requests as NLU training examples (the tune part only).

Why: the built-in domains' templates are written by us and say things the way we would; real
people say "olly what else do i have on the list" or "lower all volume on speakers please".
SLURP devel's tune part (see :mod:`training.slurp`) brings those phrasings in, labelled with the
QuickTurn intent that answers them; its out-of-scope scenarios and CLINC150's tune part teach
what to decline. The report part is never read here.

SLURP's slot annotation is another scheme (``house_place``, ``event_name``…) and leaves list
items unmarked, so the household requests are *intent-only* examples (``slots_known=False``):
training scores their intent and not their words' slot labels. Out-of-scope requests have no
slots by definition, so theirs are known (every word ``O``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.types import OUT_OF_SCOPE
from domains import Example
from training.slurp import TUNE, Request, requests

_CREATE_LIST = re.compile(r"\b(create|make|start|new)\b.*\blist\b")
_DELETE_LIST = re.compile(r"\b(delete|remove|discard|get rid of)\b (the |my |this |that )?(\w+ ){0,3}list\b|\bdon't want this list\b")
_FROM = re.compile(r"\b(from|off|out of)\b")
_CLEAR_LIST = re.compile(r"\b(clear|empty|everything|all items|all the items)\b")
_REMIND = re.compile(r"\b(remind|reminder|remember)\b")
_LEVEL = re.compile(r"\b(dim|bright|brighter|brightness|darker|lower|increase|decrease|up|down)\b")
_TIME = re.compile(r"\b(time|hour|clock|o'clock|zone)\b")
_MUTE_MEDIA = re.compile(r"\b(stop|pause)\b")


def intent_for(req: Request) -> str:
    """The one QuickTurn intent a SLURP household request is trained as (among its fitting ones).

    Where SLURP's intent covers two of ours (``calendar_set`` is a reminder or an event), the
    words decide; every choice is one of :data:`training.slurp.FITTING`'s for that intent.
    """
    fitting, text = req.fitting, req.text
    if len(fitting) == 1:
        return fitting[0]
    choice: str
    if req.intent == "calendar_set":
        choice = "SetReminder" if _REMIND.search(text) else "AddEvent"
    elif req.intent == "lists_createoradd":
        choice = "CreateList" if _CREATE_LIST.search(text) else "AddToList"
    elif req.intent == "lists_remove":
        choice = "ClearList" if _CLEAR_LIST.search(text) else "DeleteList" if _DELETE_LIST.search(text) and not _FROM.search(text) else "RemoveFromList"
    elif req.intent == "iot_hue_lightchange":
        choice = "SetDeviceLevel" if _LEVEL.search(text) else "SetDeviceColor"
    elif req.intent == "datetime_query":
        choice = "GetTime" if _TIME.search(text) else "GetDate"
    elif req.intent == "audio_volume_mute":
        choice = "MediaControl" if _MUTE_MEDIA.search(text) else "SetVolume"
    else:
        choice = fitting[0]
    assert choice in fitting, (req, choice)
    return choice


@dataclass(frozen=True, slots=True)
class HouseholdCounts:
    household: int
    out_of_scope: int


def household_examples(shared_dir: Path, household_repeat: int = 3, oos_repeat: int = 2) -> tuple[list[Example], HouseholdCounts]:
    """Training examples from the tune part: household requests (intent only) ``household_repeat``
    times, out-of-scope ones ``oos_repeat`` times (augmentation makes the copies differ).
    Requests in neither group (chit-chat, podcasts…) are left out."""
    rows = requests(shared_dir, TUNE)
    out: list[Example] = []
    n_house = n_oos = 0
    for req in rows:
        words = tuple(req.text.split())
        if req.household:
            n_house += 1
            ex = Example(intent_for(req), words, (), f"{req.source}:{req.key}", 0, slots_known=False)
            out.extend([ex] * household_repeat)
        elif req.out_of_scope:
            n_oos += 1
            out.extend([Example(OUT_OF_SCOPE, words, (), f"{req.source}:{req.key}", 0)] * oos_repeat)
    return out, HouseholdCounts(n_house, n_oos)
