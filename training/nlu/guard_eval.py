"""Measure the removal guard (``services.nlu.guard``) with the installed tagger and NLU.

Every utterance goes through the disfluency tagger, then the NLU with the guard off and on; each
parse is compared with the NLU's parse of the reference fluent text (intent and the set of
(slot, value) pairs equal). Inputs: the disfluency evaluation sets (JSONL of ``tokens`` +
``remove``, written by ``quickturn eval disfluency --write-sets DIR``), plus fresh samples of every
built-in domain's templates (fluent by construction).

    python -m training.nlu.guard_eval [--domains-seed 999] [SET.jsonl ...]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.settings import Settings
from core.text import words as split_words
from core.types import NluResult
from domains import load_domains
from services.disfluency import load_tagger
from services.nlu import load_nlu
from services.nlu.base import NluBackend
from services.nlu.guard import parse_tagged


@dataclass
class GuardScore:
    """Counts for one set."""

    name: str
    utterances: int = 0
    with_removal: int = 0
    overruled: int = 0
    agree_off: int = 0
    agree_on: int = 0

    def row(self) -> str:
        n = max(self.utterances, 1)
        return (f"{self.name}: {self.utterances} utterances, {self.with_removal} with a removal, "
                f"{self.overruled} overruled; agreement with the fluent parse "
                f"{self.agree_off / n:.2%} -> {self.agree_on / n:.2%}")


def _key(result: NluResult) -> tuple[str, tuple[tuple[str, str], ...]]:
    return result.intent, tuple(sorted((s.slot, s.value) for s in result.slots))


def score(name: str, pairs: Iterable[tuple[Sequence[str], str]], tagger: object, nlu: NluBackend) -> GuardScore:
    """``pairs``: (words as spoken, the fluent reference text)."""
    out = GuardScore(name)
    for words, fluent in pairs:
        tokens = tagger.tag(list(words))  # type: ignore[attr-defined]
        gold = _key(nlu.parse(fluent))
        off, on = parse_tagged(nlu, tokens, guard=False), parse_tagged(nlu, tokens)
        out.utterances += 1
        out.with_removal += any(t.remove for t in tokens)
        out.overruled += on.restored
        out.agree_off += _key(off.result) == gold
        out.agree_on += _key(on.result) == gold
    return out


def _jsonl_pairs(path: str) -> list[tuple[list[str], str]]:
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                words = list(row["tokens"])
                pairs.append((words, " ".join(w for w, r in zip(words, row["remove"], strict=True) if not r)))
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.nlu.guard_eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="*", help="disfluency evaluation sets (JSONL with tokens + remove)")
    parser.add_argument("--domains-seed", type=int, default=999, help="seed of the domain template samples")
    parser.add_argument("--per-template", type=int, default=3)
    args = parser.parse_args(argv)

    settings = Settings()
    tagger, nlu = load_tagger(settings), load_nlu(settings)
    for path in args.sets:
        print(score(path, _jsonl_pairs(path), tagger, nlu).row())
    for domain in load_domains():
        samples = domain.expand(args.per_template, args.domains_seed)
        if samples:
            pairs = [(split_words(e.text), e.text) for e in samples]
            print(score(f"domain {domain.name} (seed {args.domains_seed})", pairs, tagger, nlu).row())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
