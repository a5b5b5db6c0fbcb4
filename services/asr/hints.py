"""Domain words for Whisper's prompt (speech hints, as Riva calls them).

Whisper tiny.en misspells rare domain words ("latte" → "walk a", "Paris" →
"pairs"); giving it the words as previous text fixes most of that. The words
come from the domains themselves (categorical slot values of the slots named
in ``HINT_SLOTS``, the places the weather skill knows), so a user's own domain
biases recognition without code changes. The dialog's expected values for the
next answer are appended after them by the pipeline (closest to the audio,
strongest effect).

``domain_hint_words`` is the old all-domains list (``asr.domain_hints``, off:
measured worse overall). ``vocabulary_hint_words`` primes with the whole closed
vocabulary of the domains a deployment names (``asr.hint_domains``, e.g. a coffee
kiosk that only takes orders): Whisper tiny.en hears "dark roast" as "dark rose"
and "mocha" as "motor" without it.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

from domains import load_domains

log = logging.getLogger(__name__)

HINT_SLOTS = ("coffeeDrink", "device", "room", "city")
BASE_WORDS = ("weather", "timer", "alarm", "lights", "playlist")
FORECAST = Path(__file__).resolve().parents[2] / "dialog" / "data" / "forecast.json"


@cache
def domain_hint_words(max_words: int = 40) -> tuple[str, ...]:
    """A short de-duplicated vocabulary from the installed domains (empty if they cannot load)."""
    words: list[str] = list(BASE_WORDS)
    try:
        from domains import load_domains

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


@cache
def vocabulary_hint_words(domain_names: tuple[str, ...], max_words: int = 60) -> tuple[str, ...]:
    """The categorical slot values of the named domains, as short prompt phrases.

    A value phrase is kept only if it brings a word not yet in the list, in the
    domain's slot order: the coffee grammar's 90-odd milk and sugar phrases ("a
    little bit of skim milk", ...) reduce to a handful that still cover every word,
    and "light roast", "dark roast" stay whole (the pairing is what the model needs).

    Raises:
        ValueError: a name that is not an installed domain (a typo would silently
            mean no hints).
    """
    domains = {d.name: d for d in load_domains()}
    unknown = [n for n in domain_names if n not in domains]
    if unknown:
        raise ValueError(f"asr.hint_domains: unknown domain(s) {', '.join(map(repr, unknown))} "
                         f"(installed: {', '.join(sorted(domains))})")
    out: list[str] = []
    seen: set[str] = set()
    n_words = 0
    for name in domain_names:
        for slot in domains[name].slots.values():
            if slot.kind != "categorical":
                continue
            for phrase in slot.values:
                words = phrase.lower().split()
                if not words or set(words) <= seen or n_words + len(words) > max_words:
                    continue
                seen.update(words)
                out.append(" ".join(words))
                n_words += len(words)
    return tuple(out)
