"""Evaluation files for ``quickturn eval disfluency --data FILE``.

Accepted formats (chosen by content):

* **Disfl-QA JSON**: ``{id: {"original": ..., "disfluent": ...}}``. Gold
  labels come from the aligner (:mod:`training.disfluency.align`);
  pairs it cannot label are counted and scored separately;
* **JSONL**, one object per line, either ``{"disfluent": ..., "fluent": ...}``
  (aligned the same way) or ``{"tokens": [...], "remove": [...]}`` (gold
  labels given; ``tokens`` may also be a string split on whitespace).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InvalidInput
from training.disfluency.align import Labelled, align_pair


@dataclass(slots=True)
class EvalSet:
    """Gold-labelled utterances, plus approximately labelled ones the aligner could not label."""

    labelled: list[Labelled] = field(default_factory=list)
    approximate: list[Labelled] = field(default_factory=list)
    format: str = ""


def _pair(ev: EvalSet, pair_id: str, disfluent: str, fluent: str) -> None:
    item, unmatched = align_pair(disfluent, fluent)
    item.source = pair_id
    if not item.words:
        return
    (ev.approximate if unmatched else ev.labelled).append(item)


def load_eval_file(path: Path) -> EvalSet:
    """Read one evaluation file.

    Raises:
        InvalidInput: missing file, unknown format or a malformed record (with its line).
    """
    if not path.is_file():
        raise InvalidInput(f"eval data not found: {path}")
    text = path.read_text(encoding="utf-8")
    ev = EvalSet()
    stripped = text.lstrip()
    if stripped.startswith("{") and "\n{" not in stripped.strip():
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}: not valid JSON: {exc}") from exc
        if isinstance(data, dict) and all(isinstance(v, dict) and "disfluent" in v for v in data.values()):
            ev.format = "disfl-qa"
            for pair_id, v in data.items():
                if "original" not in v:
                    raise InvalidInput(f"{path}: pair {pair_id!r} has no 'original'")
                _pair(ev, pair_id, v["disfluent"], v["original"])
            return ev
        text = stripped  # a single JSON object per line file with one line
    ev.format = "jsonl"
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}:{lineno}: not valid JSON: {exc}") from exc
        if not isinstance(rec, dict):
            raise InvalidInput(f"{path}:{lineno}: expected an object")
        if "tokens" in rec and "remove" in rec:
            tokens = rec["tokens"].split() if isinstance(rec["tokens"], str) else list(rec["tokens"])
            remove = [bool(x) for x in rec["remove"]]
            if len(tokens) != len(remove):
                raise InvalidInput(f"{path}:{lineno}: {len(tokens)} tokens but {len(remove)} remove flags")
            if tokens:
                ev.labelled.append(Labelled(tokens, remove, [None] * len(tokens), f"line {lineno}"))
        elif "disfluent" in rec and "fluent" in rec:
            _pair(ev, f"line {lineno}", rec["disfluent"], rec["fluent"])
        else:
            raise InvalidInput(
                f"{path}:{lineno}: expected keys 'disfluent' and 'fluent', or 'tokens' and 'remove'"
            )
    return ev
