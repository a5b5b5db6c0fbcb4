"""The carrier prior: the training data's own answer for sentence frames it labels both ways.

The *carrier* of a parse is its words with every slot span replaced by one generic
``<slot>`` token: "find flesh and bullets" tagged ``find [flesh and bullets]`` has the carrier
"find <slot>". The token is generic on purpose: which slot name a title gets
(``object_name`` or ``movie_name``) depends on the very intent in question, so a carrier with
slot names would only echo the model's choice.

Some carriers are ambiguous in the training data itself. SNIPS labels "find <slot>"
``SearchCreativeWork`` 135 times and ``SearchScreeningEvent`` 32 times; only the title can tell
them apart, and a 6-layer sentence-embedding model knows little about titles. On SNIPS dev split 2
the model read such titles as film titles with confidence ≥ 0.83 and was wrong six times. When the
title tells nothing, the best guess is the carrier's most frequent intent: this module keeps, from
the training examples, the *known ambiguities* (carriers seen at least :data:`MIN_COUNT` times with
at least two intents, whose most frequent intent is in scope and has at least :data:`MIN_SHARE` of
them) and says when a parse picked a minority reading of one. :class:`services.nlu.bert.JointBertNlu`
then re-decodes the slots under the majority intent. Pre-registered and judged on SNIPS dev split 3
(docs/nlu.md). The table ships in the model's ``labels.json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from services.nlu.base import OUT_OF_SCOPE

if TYPE_CHECKING:
    from dialog.domain import Example

SLOT_TOKEN = "<slot>"
MIN_COUNT = 10
MIN_SHARE = 0.75


def carrier(words: Sequence[str], spans: Iterable[tuple[int, int]]) -> str:
    """``words`` with each ``(start, end)`` span replaced by :data:`SLOT_TOKEN`, space-joined."""
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        out.extend(words[pos:start])
        out.append(SLOT_TOKEN)
        pos = end
    out.extend(words[pos:])
    return " ".join(out)


def carrier_table(
    examples: Iterable[Example], min_count: int = MIN_COUNT, min_share: float = MIN_SHARE,
) -> dict[str, dict[str, int]]:
    """Intent counts of the ambiguous carriers worth trusting, from distinct training examples.

    Duplicates (the oversampled copies of small intents) count once, so a carrier's counts are
    what the annotators wrote, not what the sampler repeated.
    """
    seen: set[tuple[tuple[str, ...], str]] = set()
    counts: dict[str, Counter[str]] = {}
    for ex in examples:
        key = (tuple(ex.words), ex.intent)
        if key in seen:
            continue
        seen.add(key)
        pattern = carrier(ex.words, ((s.start, s.end) for s in ex.spans))
        counts.setdefault(pattern, Counter())[ex.intent] += 1
    table: dict[str, dict[str, int]] = {}
    for pattern, c in sorted(counts.items()):
        total = sum(c.values())
        top, n = c.most_common(1)[0]
        if total >= min_count and len(c) > 1 and top != OUT_OF_SCOPE and n / total >= min_share:
            table[pattern] = dict(sorted(c.items()))
    return table


class CarrierPrior:
    """Looks up a parse's carrier in the table shipped with the model."""

    def __init__(self, table: Mapping[str, Mapping[str, int]]) -> None:
        self.table = {p: dict(c) for p, c in table.items()}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> CarrierPrior | None:
        """The prior a model's ``labels.json`` ships, or None (models older than the prior)."""
        table = meta.get("carriers")
        return cls(table) if table else None

    def majority(self, pattern: str, intent: str) -> tuple[str, float] | None:
        """``(majority intent, its share)`` when ``intent`` is a minority reading of a known
        ambiguous ``pattern``; None when the pattern is not in the table, or ``intent`` is its
        majority, or the training data never gave the pattern that intent (no evidence either way)."""
        counts = self.table.get(pattern)
        if not counts or intent not in counts:
            return None
        top = max(counts, key=lambda k: (counts[k], k))
        if top == intent:
            return None
        return top, counts[top] / sum(counts.values())
