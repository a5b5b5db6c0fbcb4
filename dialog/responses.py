"""Response templates: variation per intent and outcome, chosen deterministically.

Templates live in ``dialog/responses.yml`` as ``key: [variant, ...]``. Keys are
``<intent>.<outcome>`` (``GetWeather.forecast``), ``ask.<intent>.<slot>`` for
slot questions (an unknown key falls back to ``ask.<intent>.default``, then ``ask.default``), ``confirm.<intent>`` for confirmation questions, and a few
shared ones (``fallback``, ``cancelled``, ``help``...). Variants are Python
``str.format`` strings over the variables the skill passes.

The variant is picked by a :class:`random.Random` seeded with the session id,
the session's turn number and the key, so a replayed conversation gets the same
words (tests and story files are deterministic) while successive turns vary.

Every template starts with a short clause ("Sure.", "Okay,", "Done.") that
:func:`split_phrases` cuts off as the first phrase: the TTS synthesizes and
plays it while the rest is still being synthesized.
"""

from __future__ import annotations

import copy
import logging
import random
import re
import string
from pathlib import Path
from typing import Any

import yaml

from core.errors import DomainError

log = logging.getLogger(__name__)

DEFAULT_FILE = Path(__file__).with_name("responses.yml")

_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~20x faster when present
_CACHE: dict[tuple[Path, int], Any] = {}


def _load_yaml(path: Path) -> Any:
    """Parse *path*, cached by modification time (managers are created often in tests and CLIs)."""
    key = (path.resolve(), path.stat().st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = yaml.load(path.read_text(), Loader=_SafeLoader)  # noqa: S506 (a safe loader)
    return copy.deepcopy(_CACHE[key])


class _Vars(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        log.warning("response variable %r missing", key)
        return ""


class Responses:
    """The template set.

    Args:
        path: a YAML file with a top-level ``responses`` mapping.

    Raises:
        DomainError: the file is missing or malformed (message names the file and key).
    """

    def __init__(self, path: Path = DEFAULT_FILE) -> None:
        try:
            raw = _load_yaml(path)
        except (OSError, yaml.YAMLError) as exc:
            raise DomainError(f"{path}: cannot read response templates: {exc}") from exc
        table = (raw or {}).get("responses")
        if not isinstance(table, dict):
            raise DomainError(f"{path}: expected a top-level 'responses' mapping")
        self.templates: dict[str, list[str]] = {}
        for key, variants in table.items():
            if isinstance(variants, str):
                variants = [variants]
            if (
                not isinstance(variants, list)
                or not variants
                or not all(isinstance(v, str) for v in variants)
            ):
                raise DomainError(f"{path}: response {key!r} must be a string or a non-empty list of strings")
            for v in variants:
                try:
                    list(string.Formatter().parse(v))
                except ValueError as exc:
                    raise DomainError(f"{path}: response {key!r}: bad template {v!r}: {exc}") from exc
            self.templates[str(key)] = variants
        self.path = path

    def has(self, key: str) -> bool:
        return key in self.templates

    def render(self, key: str, variables: dict[str, Any] | None = None, *, seed: str = "") -> str:
        """Fill one variant of *key*; an unknown key falls back to ``<prefix>.default``, then ``error``."""
        variants = self.templates.get(key)
        if variants is None:
            log.warning("no response template %r", key)
            parts = key.split(".")
            for n in range(len(parts) - 1, 0, -1):
                variants = self.templates.get(".".join(parts[:n]) + ".default")
                if variants:
                    break
            variants = variants or self.templates.get("error") or [key]
        choice = variants[0] if len(variants) == 1 else random.Random(f"{seed}|{key}").choice(variants)
        text = choice.format_map(_Vars(variables or {}))
        # Templates may leave gaps when an optional variable is empty: "a  latte ." -> "a latte."
        text = re.sub(r"\s+([,.!?])", r"\1", re.sub(r"\s{2,}", " ", text)).strip()
        return text[:1].upper() + text[1:]

    def variables_used(self, key: str) -> set[str]:
        """Names of the variables the variants of *key* refer to."""
        return {
            name.split(".")[0].split("[")[0]
            for v in self.templates.get(key, [])
            for _, name, _, _ in string.Formatter().parse(v)
            if name
        }
