"""What the assistant can do, read from the domains it understands (the answer to "what can you do").

A fixed sentence went stale every time a domain was added. Here the list is built from the
domain folders (``domains/builtin/*/domain.yml``): a domain is named when some enabled skill
handles one of its intents (the NLU could route a request there *and* the dialog could act on
it). Each domain is said by its ``help.domain.<name>`` phrase in ``responses.yml`` when there
is one (descriptions are written for developers: "The seven intents of the SNIPS benchmark..."),
else by the first clause of its ``description:``.

Only ``domain.yml`` is read (name, description, intents), not the NLU examples, with libyaml
rather than the loader's line-tracking parser (that one took ~240 ms for ten files, paid by every
process at warm-up): this runs at a user's turn, and a folder being edited (a half-written file)
is skipped, not an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from dialog.responses import Responses
from dialog.speech_format import spoken_list
from domains.loader import BUILTIN_DIR

log = logging.getLogger(__name__)

_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

ORDER = ("snips", "clock", "timers", "reminders", "lists", "media", "smart_home", "coffee")
"""Domains said first, in this order (the most asked for first); any other follows by name."""
SKIP = frozenset({"conversation", "out_of_scope"})
"""Domains that are not things to ask for."""

_CACHE: dict[tuple[Path, tuple[tuple[str, int], ...]], list[tuple[str, str, frozenset[str]]]] = {}


def _domains(root: Path) -> list[tuple[str, str, frozenset[str]]]:
    """``(name, description, intents)`` of every readable domain folder, cached by file times."""
    files = sorted(root.glob("*/domain.yml"))
    key = (root, tuple((str(f), f.stat().st_mtime_ns) for f in files))
    if key not in _CACHE:
        out = []
        for f in files:
            try:
                raw = yaml.load(f.read_text(encoding="utf-8"), Loader=_SafeLoader)  # noqa: S506 (a safe loader)
                intents = raw.get("intents") or []
                names = [next(iter(i)) if isinstance(i, dict) else str(i) for i in intents]
                out.append((str(raw.get("name", f.parent.name)), str(raw.get("description", "")), frozenset(names)))
            except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError, StopIteration):
                # A folder someone is editing: leave it out of the answer.
                log.warning("help: cannot read %s", f, exc_info=True)
        _CACHE.clear()
        _CACHE[key] = out
    return _CACHE[key]


def _first_clause(description: str) -> str:
    text = " ".join(description.split())
    text = re.split(r"(?<=[a-z])[.;:(]|\s[-–]\s", text, maxsplit=1)[0].strip()
    return text[:1].lower() + text[1:]


def skill_phrases(handled: Iterable[str], responses: Responses, root: Path = BUILTIN_DIR) -> list[str]:
    """One spoken phrase per domain the dialog can act on, most asked-for first."""
    handled = set(handled)
    rank = {name: i for i, name in enumerate(ORDER)}
    found = [(n, d) for n, d, intents in _domains(root) if n not in SKIP and intents & handled]
    found.sort(key=lambda nd: (rank.get(nd[0], len(ORDER)), nd[0]))
    out = []
    for name, description in found:
        key = f"help.domain.{name}"
        phrase = responses.templates[key][0] if responses.has(key) else _first_clause(description)
        if phrase and phrase not in out:
            out.append(phrase)
    return out


def skills_sentence(handled: Iterable[str], responses: Responses, root: Path = BUILTIN_DIR) -> str:
    """``"the weather, timers and alarms, ... and coffee orders"``; empty when no domain could be read."""
    return spoken_list(skill_phrases(handled, responses, root))
