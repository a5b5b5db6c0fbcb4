"""Text normalization and metrics shared by bench and eval.

WER/CER normalization (documented in docs/eval.md, "Text normalization"): lower case; digits,
clock times and ordinals spelled out as words (``core.numbers``);
hyphens become spaces; every other punctuation mark is dropped except the
apostrophe; a few spoken abbreviations are expanded (mr → mister); runs of
white space collapse. Reference and hypothesis go through the same function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import jiwer

from core.text import normalize_transcript


def normalize_text(text: str) -> str:
    return normalize_transcript(text)


def _corpus_score(
    score: Callable[[list[str], list[str]], float], references: Sequence[str], hypotheses: Sequence[str], empty: str
) -> float:
    """``score`` over normalized pairs with a non-empty reference; an empty hypothesis becomes ``empty``."""
    refs = [normalize_text(r) for r in references]
    hyps = [normalize_text(h) for h in hypotheses]
    pairs = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    if not pairs:
        return 0.0
    return float(score([r for r, _ in pairs], [h if h else empty for _, h in pairs]))


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER (total edits / total reference words) after normalization."""
    return _corpus_score(jiwer.wer, references, hypotheses, "<empty>")


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus CER after normalization."""
    return _corpus_score(jiwer.cer, references, hypotheses, " ")


def percentile(values: Iterable[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]); NaN for no values."""
    data = sorted(values)
    if not data:
        return math.nan
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summarize_latency(rows: Sequence[dict[str, float]], stages: Sequence[str]) -> dict[str, dict[str, float]]:
    """stage → {p50, p95, max, n} over the rows that have the stage."""
    out: dict[str, dict[str, float]] = {}
    for stage in stages:
        vals = [r[stage] for r in rows if stage in r]
        if vals:
            out[stage] = {
                "p50": round(percentile(vals, 50), 2),
                "p95": round(percentile(vals, 95), 2),
                "max": round(max(vals), 2),
                "n": len(vals),
            }
    return out
