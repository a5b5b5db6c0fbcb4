"""NLU metrics: intent accuracy, conlleval span F1, exact match, out-of-scope P/R, confusions.

Slot F1 follows conlleval: a predicted span counts only if its slot name, first
word and last word all equal a gold span's. Exact match means the intent is
right and the set of spans is identical.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from core.types import OUT_OF_SCOPE, NluResult
from domains import Example, Span, import_rasa, import_snips
from services.nlu.base import NluBackend


@dataclass(slots=True)
class Report:
    n: int = 0
    intent_correct: int = 0
    exact: int = 0
    tp: int = 0
    n_pred: int = 0
    n_gold: int = 0
    oos_tp: int = 0
    oos_pred: int = 0
    oos_gold: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    per_slot: dict[str, list[int]] = field(default_factory=dict)  # slot -> [tp, pred, gold]
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        p = self.tp / self.n_pred if self.n_pred else 0.0
        r = self.tp / self.n_gold if self.n_gold else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out: dict[str, Any] = {
            "utterances": self.n,
            "intent_accuracy": round(self.intent_correct / self.n, 4) if self.n else 0.0,
            "slot_precision": round(p, 4),
            "slot_recall": round(r, 4),
            "slot_f1": round(f1, 4),
            "exact_match": round(self.exact / self.n, 4) if self.n else 0.0,
        }
        if self.oos_gold or self.oos_pred:
            out["oos_precision"] = round(self.oos_tp / self.oos_pred, 4) if self.oos_pred else 0.0
            out["oos_recall"] = round(self.oos_tp / self.oos_gold, 4) if self.oos_gold else 0.0
        out["confusion"] = [
            {"gold": g, "pred": pr, "count": c} for (g, pr), c in sorted(self.confusion.items(), key=lambda kv: -kv[1])
        ]
        out["slots"] = {
            s: {"tp": v[0], "pred": v[1], "gold": v[2], "f1": round(2 * v[0] / (v[1] + v[2]), 4) if v[1] + v[2] else 0.0}
            for s, v in sorted(self.per_slot.items())
        }
        return out


def score(examples: Sequence[Example], predictions: Sequence[NluResult], keep_errors: int = 20) -> Report:
    """Compare predictions with the gold examples (same order)."""
    rep = Report()
    for ex, pred in zip(examples, predictions, strict=True):
        rep.n += 1
        gold_spans = {(s.slot, s.start, s.end) for s in ex.spans}
        pred_spans = {(s.slot, s.start, s.end) for s in pred.slots}
        ok_intent = pred.intent == ex.intent
        rep.intent_correct += ok_intent
        if not ok_intent:
            rep.confusion[(ex.intent, pred.intent)] += 1
        both = gold_spans & pred_spans
        rep.tp += len(both)
        rep.n_pred += len(pred_spans)
        rep.n_gold += len(gold_spans)
        for slot, *_ in gold_spans | pred_spans:
            rep.per_slot.setdefault(slot, [0, 0, 0])
        for slot, *_ in both:
            rep.per_slot[slot][0] += 1
        for slot, *_ in pred_spans:
            rep.per_slot[slot][1] += 1
        for slot, *_ in gold_spans:
            rep.per_slot[slot][2] += 1
        exact = ok_intent and gold_spans == pred_spans
        rep.exact += exact
        rep.oos_gold += ex.intent == OUT_OF_SCOPE
        rep.oos_pred += pred.intent == OUT_OF_SCOPE
        rep.oos_tp += ex.intent == OUT_OF_SCOPE and pred.intent == OUT_OF_SCOPE
        if not exact and len(rep.errors) < keep_errors:
            rep.errors.append({"text": ex.text, "gold": ex.annotated(), "gold_intent": ex.intent, "pred": pred.to_json()})
    return rep


def predict(backend: NluBackend, examples: Sequence[Example], batch_size: int = 32) -> list[NluResult]:
    return parse_texts(backend, [e.text for e in examples], batch_size)


def parse_texts(backend: NluBackend, texts: Sequence[str], batch_size: int = 32) -> list[NluResult]:
    """Every text parsed, in batches when the backend has ``parse_batch``."""
    batch = getattr(backend, "parse_batch", None)
    if batch is None:
        return [backend.parse(t) for t in texts]
    out: list[NluResult] = []
    for i in range(0, len(texts), batch_size):
        out.extend(batch(texts[i : i + batch_size]))
    return out


def read_bio(path: Path) -> list[Example]:
    """BIO data: a folder with JointBERT's ``seq.in``/``seq.out``/``label``, or one TSV file of
    ``words<TAB>tags<TAB>intent`` lines."""
    if path.is_dir():
        try:
            seq_in = (path / "seq.in").read_text(encoding="utf-8").splitlines()
            seq_out = (path / "seq.out").read_text(encoding="utf-8").splitlines()
            labels = (path / "label").read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InvalidInput(f"{path}: a BIO folder needs seq.in, seq.out and label ({exc.strerror})") from exc
        rows = list(zip(seq_in, seq_out, labels, strict=False))
        if not (len(seq_in) == len(seq_out) == len(labels)):
            raise InvalidInput(f"{path}: seq.in, seq.out and label have different line counts")
        name = str(path / "seq.in")
    else:
        rows = []
        name = str(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from exc
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                raise InvalidInput(f"{path}:{n}: expected 'words<TAB>tags<TAB>intent'")
            rows.append((parts[0], parts[1], parts[2]))
    out = []
    for n, (text, tags_line, intent) in enumerate(rows, 1):
        words = text.lower().split()
        tags = tags_line.split()
        if len(words) != len(tags):
            raise InvalidInput(f"{name}:{n}: {len(words)} words but {len(tags)} tags")
        spans: list[Span] = []
        for i, tag in enumerate(tags):
            if tag == "O" or "-" not in tag:
                continue
            prefix, slot = tag.split("-", 1)
            if prefix == "I" and spans and spans[-1].slot == slot and spans[-1].end == i:
                spans[-1] = Span(slot, spans[-1].start, i + 1)
            else:
                spans.append(Span(slot, i, i + 1))
        out.append(Example(intent.strip(), tuple(words), tuple(spans), name, n))
    return out


def load_eval_data(path: Path, fmt: str) -> list[Example]:
    if not path.exists():
        raise InvalidInput(f"{path}: not found")
    if fmt == "snips":
        return import_snips(path).examples
    if fmt == "rasa":
        return import_rasa(path).examples
    if fmt == "bio":
        return read_bio(path)
    raise InvalidInput(f"unknown format {fmt!r} (snips, rasa or bio)")
