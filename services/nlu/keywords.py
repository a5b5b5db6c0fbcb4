"""KeywordNlu: the keyword/regex baseline and the fallback when the model is absent.

Intents come from an ordered list of regular expressions (first match wins);
slots from the domains' value lists (longest phrase first), their regex
``patterns``, and a few hand-written extractors (weather city and time range,
timer durations, alarm times). It needs no model files and costs
microseconds, but it knows only the phrasings written here; anything else is
``out_of_scope`` rather than a guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.numbers import parse_number
from core.text import normalize_text
from core.types import OUT_OF_SCOPE, NluHints, NluResult, SlotValue
from domains import Domain
from domains.normalize import normalize_duration, normalize_slot, normalize_time
from services.nlu.base import NluBackend

# (intent, pattern) — the order matters: specific before general.
_LIST = r"(?:my |the |our |a |an )?(?:[a-z']+ ){0,3}?list\b"
_RULES: list[tuple[str, str]] = [
    # household (issue 26): lists, reminders and calendar, media and volume, questions to the barista
    ("RemoveFromList", r"\b(remove|delete|cross|take|drop|scratch)\b.*\b(from|off) " + _LIST),
    ("AddToList", r"\b(add|put|include)\b.*\b(to|on|onto) " + _LIST),
    ("ReadList", r"\bwhat('s| is| else is| do i have)? on " + _LIST + r"|\b(read|show|tell me)\b.*\blists?\b|\bwhat lists\b"),
    ("ClearList", r"\b(clear|empty|wipe)\b " + _LIST),
    ("CreateList", r"\b(create|make|start)\b (a |an |my )?(new )?(?:[a-z']+ ){0,3}?list\b"),
    ("DeleteList", r"\b(delete|remove|get rid of)\b " + _LIST),
    ("CancelEvent", r"\b(cancel|delete|remove|clear)\b.*\b(meetings?|appointments?|events?|reminders?|calendar)\b"),
    ("MoveEvent", r"\b(move|reschedule|postpone|push back)\b.*\b(meeting|appointment|event|reminder)\b"),
    ("QueryCalendar", r"\b(calendar|schedule|agenda)\b|\bdo i have (any |a )?(meetings?|appointments?|events?|reminders?)\b"),
    ("SetReminder", r"\bremind me (to|about|of|at|on|tomorrow)\b|\breminder\b|\bremind me\b.*\bto\b"),
    ("AddEvent", r"\b(add|put|schedule|book)\b.*\b(meeting|appointment|event)\b"),
    ("QueryAlarms", r"\b(what|which|any|do i have|tell me|show me|list|when)\b.*\balarms?\b(?!.*\b(for|at) \w)"),
    ("SetVolume", r"\bvolume\b|\b(louder|quieter|softer)\b|^(mute|unmute)\b|\bmute (the )?(sound|speakers?|audio|music)\b"),
    ("MediaControl", r"\b(pause|stop|resume|unpause|continue)\b (the |this )?(music|song|track|playback|radio|playing)\b"
                     r"|\b(next|previous|skip( this| the)?) (song|track|one)\b|\bshuffle\b|\b(repeat|loop) (this|the) (song|track)\b"
                     r"|^(pause|skip|unpause|resume)\b"),
    ("askPrice", r"\bhow much\b.*\b(latte|cappuccino|espresso|americano|mocha|coffee)\b|\b(price|cost) of\b"),
    ("askMenu", r"\bwhat (drinks|coffees)\b|\bmenu\b"),
    ("SetDeviceColor", r"\b(lights?|lamps?)\b.*\b(red|blue|green|purple|pink|yellow|orange|warm white|white)\b"
                       r"|\b(red|blue|green|purple|pink|yellow|orange)\b.*\b(lights?|lamps?)\b|\bcolou?r of the lights?\b"),
    ("CancelTimer", r"\b(cancel|stop|delete|remove|turn off|clear|kill)\b.*\btimers?\b|\bforget the timer\b"),
    ("CancelAlarm", r"\b(cancel|stop|delete|remove|turn off|disable|switch off|clear)\b.*\balarms?\b"),
    ("SetTimer", r"\btimer\b|\b(remind|wake|ping) me in\b|\bcount ?down\b"),
    ("SetAlarm", r"\balarm\b|\bwake me( up)?\b"),
    ("GetWeather", r"\b(weather|forecast|rain|raining|snow|snowing|sunny|umbrella|windy|humid|storm)\b"),
    ("GetTime", r"\bwhat time\b|\bthe time\b|\btime is it\b|\bcurrent time\b|\blocal time\b"),
    ("GetDate", r"\bwhat day\b|\bthe date\b|\btoday's date\b|\bwhat date\b|\bday of the week\b"),
    ("SetDeviceLevel", r"\b(set|dim|brighten|turn up|turn down|lower|raise|change|adjust)\b.*\bto\b.*(\d|percent|degrees|half|max|min|one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred)"),
    ("DeviceOn", r"\b(turn|switch|power) on\b|\b(turn|switch|power) (the |my )?[a-z ]+ on\b|\b(activate|enable|start)\b (the |my )?(lights?|lamp|tv|fan|heater|heating|radio|kettle|oven)"),
    ("DeviceOff", r"\b(turn|switch|power|shut) off\b|\b(turn|switch|power|shut) (the |my )?[a-z ]+ off\b|\b(deactivate|disable)\b"),
    ("orderDrink", r"\b(latte|cappuccino|espresso|americano|mocha|coffee)\b"),
    ("AddToPlaylist", r"\badd\b.*\b(to|in|onto)\b.*\bplaylist\b|\badd\b.*\bto my\b"),
    ("PlayMusic", r"^(please )?(play|put on|listen to)\b|\bplay (some|the|me)\b"),
    ("BookRestaurant", r"\b(book|reserve)\b.*\b(table|restaurant|bar|pub|diner|cafe|seats?)\b|\btable for\b"),
    ("RateBook", r"\b(rate|give)\b.*\b(stars?|points?|out of)\b"),
    ("SearchScreeningEvent", r"\b(movie|film) (times|schedule|schedules)\b|\bshowtimes?\b|\bwhat (movies|films)\b|\b(cinema|movie theater|movie house)\b"),
    ("SearchCreativeWork", r"^(please )?(find|look up|search for|show me|i want to (see|watch|read))\b"),
    ("Greet", r"^(hi|hello|hey|hiya|howdy|greetings|yo|good (morning|afternoon|evening)|morning)\b"),
    ("Goodbye", r"\b(bye|goodbye|good night|see you|talk to you later|catch you later|farewell)\b|^that's all\b"),
    ("Help", r"\bhelp\b|\bwhat can (you do|i say|i ask)\b|\bhow does this work\b"),
    ("Repeat", r"\brepeat\b|\bsay (that|it) again\b|\bcome again\b|^pardon\b|\bwhat did you say\b|\bone more time\b"),
    ("Cancel", r"^(cancel|never ?mind|forget (it|about it)|stop|abort|scratch that|quit)\b"),
    ("Affirm", r"^(yes|yeah|yep|yup|sure|correct|ok|okay|right|absolutely|of course|sounds good|go ahead|definitely|alright|exactly|perfect|uh huh|do it)\b"),
    ("Deny", r"^(no|nope|nah|not really|negative|wrong|incorrect|don't)\b|\bi don't think so\b"),
]
_COMPILED = [(intent, re.compile(p)) for intent, p in _RULES]

_TIME_RANGE = re.compile(
    r"\b(today|tonight|tomorrow( morning| afternoon| evening| night)?|this (morning|afternoon|evening|weekend|week)"
    r"|next (week|weekend|month|monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
    r"|(on )?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)|now|right now)\b"
)
_PLACE = re.compile(r"\b(?:in|for|at) ((?:[a-z']+)(?: [a-z']+)?)$")
_DUR_UNIT = {"second", "seconds", "minute", "minutes", "hour", "hours", "min", "mins", "sec", "secs", "hr", "hrs"}
_NUMBERISH = re.compile(r"^(\d+|a|an|and|half|couple|of|few|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                        r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
                        r"seventy|eighty|ninety|hundred)$")
_STOP_TIME = {"please", "tomorrow", "today", "tonight", "thanks"}


class KeywordNlu(NluBackend):
    """Regex intents + value-list slots; the fallback backend.

    Args:
        domains: domains whose slot value lists and patterns are searched (the caller loads them).
    """

    name = "keywords"

    def __init__(self, domains: Sequence[Domain]) -> None:
        self._slots_by_intent: dict[str, list] = {}
        for d in domains:
            for intent in d.intents:
                self._slots_by_intent[intent] = list(d.slots.values())

    def parse(self, text: str, hints: NluHints | None = None) -> NluResult:
        cleaned = normalize_text(text)
        words = cleaned.split() if cleaned else []
        if not words:
            return NluResult(OUT_OF_SCOPE, 1.0, ())
        intent = next((name for name, rx in _COMPILED if rx.search(cleaned)), None)
        if intent is None:
            return NluResult(OUT_OF_SCOPE, 0.5, ())
        slots = self._slots(intent, words)
        return NluResult(intent, 0.6, tuple(slots))

    # ------------------------------------------------------------------ slots

    def _slots(self, intent: str, words: list[str]) -> list[SlotValue]:
        taken = [False] * len(words)
        out: list[SlotValue] = []

        def add(slot: str, start: int, end: int, normalized: str | None = None) -> None:
            if start >= end or any(taken[start:end]):
                return
            value = " ".join(words[start:end])
            for i in range(start, end):
                taken[i] = True
            out.append(SlotValue(slot, value, normalized or normalize_slot(slot, value), start, end))

        if intent in ("SetTimer", "CancelTimer"):
            span = _find_duration(words)
            if span:
                add("duration", *span, normalized=normalize_duration(" ".join(words[span[0] : span[1]])))
        if intent in ("SetAlarm", "CancelAlarm"):
            span = _find_time(words)
            if span:
                add("time", *span)
        if intent == "GetWeather":
            m = _TIME_RANGE.search(" ".join(words))
            if m:
                start = len(" ".join(words)[: m.start()].split())
                add("timeRange", start, start + len(m.group(0).split()))
        # value lists (longest phrases first), then regex patterns
        for slot in self._slots_by_intent.get(intent, []):
            phrases = sorted(slot.phrases(), key=lambda p: -len(p.split()))
            for phrase in phrases:
                pw = phrase.split()
                for i in range(len(words) - len(pw) + 1):
                    if words[i : i + len(pw)] == pw and not any(taken[i : i + len(pw)]):
                        canon = slot.canonical(phrase)
                        add(slot.name, i, i + len(pw), canon if canon and slot.kind == "categorical" else None)
                        break
            for pattern in slot.patterns:
                for m in re.finditer(pattern, " ".join(words)):
                    start = len(" ".join(words)[: m.start()].split())
                    add(slot.name, start, start + len(m.group(0).split()))
        if intent in ("GetWeather", "GetTime") and not any(s.slot == "city" for s in out):
            free = " ".join(w for w, t in zip(words, taken, strict=True) if not t)
            m = _PLACE.search(free)
            if m and m.group(1) not in ("the", "a", "it"):
                pw = m.group(1).split()
                for i in range(len(words) - len(pw) + 1):
                    if words[i : i + len(pw)] == pw:
                        add("city", i, i + len(pw))
                        break
        if intent in _LIST_INTENTS:
            for slot, start, end in _list_spans(words):
                if slot in _LIST_INTENTS[intent]:
                    add(slot, start, end)
        if intent == "SetReminder":
            span = _find_time(words)
            if span:
                add("time", *span)
            m = _REMIND_TASK.search(" ".join(words))
            if m:
                start = len(" ".join(words)[: m.start(1)].split())
                add("task", start, start + len(m.group(1).split()))
        if intent == "SetDeviceLevel" and not any(s.slot == "level" for s in out) and "to" in words:
            i = len(words) - 1 - words[::-1].index("to")
            if i + 1 < len(words):
                add("level", i + 1, len(words))
        return sorted(out, key=lambda s: s.start)


_LIST_INTENTS = {"AddToList": ("item", "listName"), "RemoveFromList": ("item", "listName"), "ReadList": ("listName",),
                 "ClearList": ("listName",), "DeleteList": ("listName",), "CreateList": ("listName",)}
_ITEM_LIST = re.compile(r"^(?:please |can you |could you )*(?:add|put|include|remove|delete|cross|take|drop|scratch) "
                        r"(?:off )?(.+?)(?: off)?(?: (?:to|on|onto|from|off) (?:my |the |our )?(?:(.+?) )?list)?(?: please)?$")
_LIST_NAME = re.compile(r"\b(?:my|the|our|a|an|new) (?!new\b)((?:[a-z']+ ){0,3}?)list\b")
_REMIND_TASK = re.compile(r"\bremind(?:er)? (?:me )?to ((?:(?!\b(?:at|on|tomorrow|today|tonight|in)\b)[a-z' ])+)")


def _list_spans(words: list[str]) -> list[tuple[str, int, int]]:
    """``item`` and ``listName`` spans of a list request, from its shape ("add X to my Y list")."""
    text = " ".join(words)
    out: list[tuple[str, int, int]] = []

    def span(slot: str, start_char: int, value: str | None) -> None:
        if value and value.strip() and value.strip() not in ("it", "this", "that", "something"):
            start = len(text[:start_char].split())
            out.append((slot, start, start + len(value.split())))

    m = _ITEM_LIST.match(text)
    if m:
        span("item", m.start(1), m.group(1))
        if m.group(2):
            span("listName", m.start(2), m.group(2).strip())
        return out
    m = _LIST_NAME.search(text)
    if m and m.group(1).strip():
        span("listName", m.start(1), m.group(1).strip())
    return out


def _find_duration(words: list[str]) -> tuple[int, int] | None:
    """The span of '<number words> <unit> [and <number> <unit>]' (or 'half an hour')."""
    for i, w in enumerate(words):
        if w in _DUR_UNIT:
            start = i
            while start > 0 and _NUMBERISH.match(words[start - 1]):
                start -= 1
            end = i + 1
            # "... and a half" / "and ten minutes"
            j = end
            while j < len(words) and (_NUMBERISH.match(words[j]) or words[j] in _DUR_UNIT):
                j += 1
                if words[j - 1] in _DUR_UNIT or words[j - 1] == "half":
                    end = j
            while start < i and words[start] in ("and", "of"):
                start += 1
            if normalize_duration(" ".join(words[start:end])) is not None:
                return start, end
    return None


def _find_time(words: list[str]) -> tuple[int, int] | None:
    """The longest span after 'at'/'for' (or anywhere) that parses as a clock time."""
    best: tuple[int, int] | None = None
    for start in range(len(words)):
        if parse_number(words[start]) is None and words[start] not in ("noon", "midnight", "half", "quarter"):
            continue
        for end in range(len(words), start, -1):
            if words[end - 1] in _STOP_TIME:
                continue
            if normalize_time(" ".join(words[start:end])) is not None:
                if best is None or end - start > best[1] - best[0]:
                    best = (start, end)
                break
    return best
