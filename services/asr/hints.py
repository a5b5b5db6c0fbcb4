"""Domain words for Whisper's prompt (speech hints, as Riva calls them).

Whisper tiny.en misspells rare domain words ("latte" → "walk a", "Paris" →
"pairs"); giving it the words as previous text fixes most of that. The words
come from the domains themselves (categorical slot values of the slots named
in ``HINT_SLOTS``, the places the weather skill knows), so a user's own domain
biases recognition without code changes. The dialog's expected values for the
next answer are appended after them by the pipeline (closest to the audio,
strongest effect).
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

HINT_SLOTS = ("coffeeDrink", "device", "room", "city")
BASE_WORDS = ("weather", "timer", "alarm", "lights", "playlist")
FORECAST = Path(__file__).resolve().parents[2] / "dialog" / "data" / "forecast.json"


@cache
def domain_hint_words(max_words: int = 40) -> tuple[str, ...]:
    """A short de-duplicated vocabulary from the installed domains (empty if they cannot load)."""
    words: list[str] = list(BASE_WORDS)
    try:
        from dialog.domain import load_domains

        for domain in load_domains():
            for name in HINT_SLOTS:
                slot = domain.slots.get(name)
                values = list(getattr(slot, "values", None) or []) if slot is not None else []
                words += [str(v) for v in values[:12]]
    except Exception as exc:  # hints are an optimization; never fail recognition over them
        log.warning("no domain hints: %s", exc)
    try:
        places = json.loads(FORECAST.read_text()).get("places", {})
        words += [str(p.get("name", k)) for k, p in list(places.items())[:8]]
    except (OSError, ValueError):
        pass
    out: list[str] = []
    seen: set[str] = set()
    n_words = 0
    for phrase in words:
        key = phrase.lower().strip()
        if key and key not in seen and n_words + len(key.split()) <= max_words:
            seen.add(key)
            out.append(phrase.strip())
            n_words += len(key.split())
    return tuple(out)
