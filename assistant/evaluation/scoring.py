"""Per-file scores and the run summary (the stable ``summary.json`` keys).

Definitions (also in docs/eval.md):

* **WER / CER**: corpus level (total edits / total reference words or
  characters) with jiwer, after :func:`assistant.metrics.normalize_text` on both
  sides; files without a reference ``text`` are left out.
* **Intent accuracy**: share of files with a reference ``intent`` whose
  predicted intent is the same (no prediction counts as wrong).
* **Slot precision / recall / F1**: micro-averaged over (slot, value) pairs,
  values normalized with ``normalize_text``; over files with a reference intent
  or slots.
* **Exact match** ("command acceptance"): intent right and the predicted
  (slot, value) set equal to the reference set.
* **Slot value F1 / exact match by value**: the same over (slot, normalized
  value) pairs: the NLU's normalized values (what the dialog acts on: "dark
  rose" heard for "dark roast" normalizes to the known value) against the
  reference slots put through the same normalizer; over files whose rows carry
  both (``slot_values``, ``reference_slot_values``).
* **Exact match as the dialog holds it**: the same against the task the dialog holds at the
  end of the file (the intent and slots of its last reply about a task, normalized alike): a
  later turn's slots count only if the dialog joined them to the task (``dialog_slot_values``);
  over files whose rows carry it.
* **Disfluency precision / recall / F1**: word level on the ASR transcript. A
  transcript word should be removed when it aligns to a reference ``text`` word
  that is absent from ``clean_text`` (both alignments with difflib on
  normalized words), or when it replaces only such words (a misheard filler);
  other words the ASR inserted or substituted count as words to keep. Counted
  against the tagger's remove labels, over files with a ``clean_text``.
* **Out-of-domain rejection**: share of files labelled ``out_of_scope`` that
  are predicted ``out_of_scope``; **false rejection**: share of in-domain files
  predicted ``out_of_scope``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import jiwer

from assistant.metrics import cer, normalize_text, summarize_latency, wer

OUT_OF_SCOPE = "out_of_scope"
STAGES = ["endpoint", "asr", "disfluency", "nlu", "dialog", "tts_first_audio", "total"]
_WORD = re.compile(r"[^\w']+")


def _plain(word: str) -> str:
    return _WORD.sub("", word.lower())


def slot_pairs(slots: object) -> set[tuple[str, str]]:
    if not isinstance(slots, dict):
        return set()
    return {(str(k), normalize_text(str(v))) for k, v in slots.items() if str(v).strip()}


def _matches(a: Sequence[str], b: Sequence[str]) -> dict[int, int]:
    """index in ``a`` → index in ``b`` for words difflib aligns as equal."""
    sm = difflib.SequenceMatcher(a=list(a), b=list(b), autojunk=False)
    out: dict[int, int] = {}
    for block in sm.get_matching_blocks():
        for k in range(block.size):
            out[block.a + k] = block.b + k
    return out


def disfluency_labels(tokens: Sequence[Sequence[object]], text: str, clean_text: str) -> tuple[list[bool], list[bool]]:
    """(gold remove, predicted remove) per transcript token.

    ``tokens`` are ``[word, remove]`` pairs of the tagged transcript.
    """
    ref = [_plain(w) for w in text.split()]
    clean = [_plain(w) for w in clean_text.split()]
    kept = set(_matches(ref, clean))
    disfluent = {i for i in range(len(ref)) if i not in kept}
    hyp = [_plain(str(t[0])) for t in tokens]
    gold = [False] * len(hyp)
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=hyp, b=ref, autojunk=False).get_opcodes():
        if op == "equal":
            for k in range(i2 - i1):
                gold[i1 + k] = j1 + k in disfluent
        elif op == "replace" and all(i in disfluent for i in range(j1, j2)):
            # the ASR misheard disfluent words ("uh for" → "offer"): removing them is right
            for k in range(i1, i2):
                gold[k] = True
    pred = [bool(t[1]) for t in tokens]
    return gold, pred


def prf(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    if p is None and r is None:
        f = None
    elif not p or not r:
        f = 0.0
    else:
        f = 2 * p * r / (p + r)
    return {"precision": _r(p), "recall": _r(r), "f1": _r(f), "tp": tp, "fp": fp, "fn": fn}


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, nd)


def _slot_scores(prefix: str, exact_key: str, gold_slots: object, pred_slots: object,
                 intent_correct: bool) -> dict[str, object]:
    """``<prefix>_tp/_fp/_fn`` over (slot, value) pairs and ``exact_key``: intent and every pair right."""
    gold, pred = slot_pairs(gold_slots), slot_pairs(pred_slots)
    return {f"{prefix}_tp": len(gold & pred), f"{prefix}_fp": len(pred - gold), f"{prefix}_fn": len(gold - pred),
            exact_key: intent_correct and gold == pred}


def file_scores(row: dict[str, object]) -> dict[str, object]:
    """Scores of one successful result row (added to the row as ``scores``)."""
    ref = row.get("reference") or {}
    assert isinstance(ref, dict)
    out: dict[str, object] = {}
    hyp = str(row.get("transcript") or "")
    if isinstance(ref.get("text"), str) and normalize_text(str(ref["text"])):
        r, h = normalize_text(str(ref["text"])), normalize_text(hyp)
        out["wer"] = round(float(jiwer.wer(r, h if h else "<empty>")), 4)
        out["cer"] = round(float(jiwer.cer(r, h if h else " ")), 4)
        out["ref_words"] = len(r.split())
    if isinstance(ref.get("intent"), str):
        out["intent_correct"] = row.get("intent") == ref["intent"]
        out.update(_slot_scores("slot", "exact_match", ref.get("slots") or {}, row.get("slots") or {},
                                bool(out["intent_correct"])))
        if isinstance(row.get("reference_slot_values"), dict) and isinstance(row.get("slot_values"), dict):
            out.update(_slot_scores("value", "exact_match_values", row["reference_slot_values"], row["slot_values"],
                                    bool(out["intent_correct"])))
        if isinstance(row.get("reference_slot_values"), dict) and isinstance(row.get("dialog_slot_values"), dict):
            out.update(_slot_scores("dialog", "exact_match_dialog", row["reference_slot_values"],
                                    row["dialog_slot_values"], row.get("dialog_intent") == ref["intent"]))
    if isinstance(ref.get("clean_text"), str) and isinstance(ref.get("text"), str) and row.get("tokens") is not None:
        gold_d, pred_d = disfluency_labels(row["tokens"], str(ref["text"]), str(ref["clean_text"]))  # type: ignore[arg-type]
        out["disfl_tp"] = sum(g and p for g, p in zip(gold_d, pred_d, strict=True))
        out["disfl_fp"] = sum(p and not g for g, p in zip(gold_d, pred_d, strict=True))
        out["disfl_fn"] = sum(g and not p for g, p in zip(gold_d, pred_d, strict=True))
    return out


def summarize(
    rows: Sequence[dict[str, object]],
    failed: Sequence[dict[str, object]],
    total_files: int,
    extra: dict[str, object] | None = None,
) -> dict[str, object]:
    """The ``summary.json`` object from the successful rows and the failures."""
    ok = [r for r in rows if r.get("status") == "ok"]
    for r in ok:  # recomputed: rows resumed from an older run get today's definitions
        r["scores"] = file_scores(r)
    sc = [(r, r["scores"]) for r in ok]
    with_text = [r for r in ok if isinstance((r.get("reference") or {}).get("text"), str)]  # type: ignore[union-attr]
    refs = [str(r["reference"]["text"]) for r in with_text]  # type: ignore[index]
    hyps = [str(r.get("transcript") or "") for r in with_text]
    labelled = [(r, s) for r, s in sc if "intent_correct" in s]  # type: ignore[operator]
    intent_acc = sum(bool(s["intent_correct"]) for _, s in labelled) / len(labelled) if labelled else None  # type: ignore[index]
    slots = prf(*(sum(int(s[k]) for _, s in labelled) for k in ("slot_tp", "slot_fp", "slot_fn")))  # type: ignore[index]
    exact = sum(bool(s["exact_match"]) for _, s in labelled) / len(labelled) if labelled else None  # type: ignore[index]
    valued = [s for _, s in labelled if "value_tp" in s]  # type: ignore[operator]
    values = prf(*(sum(int(s[k]) for s in valued) for k in ("value_tp", "value_fp", "value_fn")))  # type: ignore[index]
    exact_v = sum(bool(s["exact_match_values"]) for s in valued) / len(valued) if valued else None  # type: ignore[index]
    held = [s for _, s in labelled if "exact_match_dialog" in s]  # type: ignore[operator]
    exact_d = sum(bool(s["exact_match_dialog"]) for s in held) / len(held) if held else None  # type: ignore[index]
    disfl_rows = [s for _, s in sc if "disfl_tp" in s]  # type: ignore[operator]
    disfl = prf(*(sum(int(s[k]) for s in disfl_rows) for k in ("disfl_tp", "disfl_fp", "disfl_fn")))  # type: ignore[index]
    ood = [r for r, _ in labelled if (r.get("reference") or {}).get("intent") == OUT_OF_SCOPE]  # type: ignore[union-attr]
    ind = [r for r, _ in labelled if (r.get("reference") or {}).get("intent") != OUT_OF_SCOPE]  # type: ignore[union-attr]
    latencies = [r["latency_ms"] for r in ok if isinstance(r.get("latency_ms"), dict) and r["latency_ms"]]
    latency = {k: {"p50": v["p50"], "p95": v["p95"], "max": v["max"], "n": v["n"]}
               for k, v in summarize_latency(latencies, STAGES).items()}  # type: ignore[arg-type]
    audio_s = sum(float(r.get("duration_s") or 0.0) for r in ok)
    summary: dict[str, object] = {
        "files": total_files,
        "files_ok": len(ok),
        "files_failed": len(failed),
        "wer": _r(wer(refs, hyps)) if with_text else None,
        "cer": _r(cer(refs, hyps)) if with_text else None,
        "intent_accuracy": _r(intent_acc),
        "slot_precision": slots["precision"],
        "slot_recall": slots["recall"],
        "slot_f1": slots["f1"],
        "exact_match": _r(exact),
        "slot_value_f1": values["f1"] if valued else None,
        "exact_match_values": _r(exact_v),
        "exact_match_dialog": _r(exact_d),
        "disfluency_precision": disfl["precision"] if disfl_rows else None,
        "disfluency_recall": disfl["recall"] if disfl_rows else None,
        "disfluency_f1": disfl["f1"] if disfl_rows else None,
        "ood_rejection": _r(sum(r.get("intent") == OUT_OF_SCOPE for r in ood) / len(ood)) if ood else None,
        "false_rejection": _r(sum(r.get("intent") == OUT_OF_SCOPE for r in ind) / len(ind)) if ind else None,
        "latency_ms": latency,
        "turns_without_reply": sum(1 for r in ok if not (r.get("latency_ms") or {}).get("total")),  # type: ignore[union-attr]
        "audio_seconds": round(audio_s, 2),
        "failed": [{"file": f.get("key"), "error": f.get("error")} for f in failed],
        "counts": {"with_text": len(with_text), "with_intent": len(labelled), "with_slot_values": len(valued), "with_dialog_task": len(held),
                   "with_clean_text": len(disfl_rows),
                   "out_of_scope": len(ood)},
        "wer_by_group": wer_by_group(ok),
        "per_intent": per_intent(labelled),
    }
    if extra:
        summary.update(extra)
    return summary


def wer_by_group(ok: Iterable[dict[str, object]]) -> dict[str, dict[str, object]]:
    """Corpus WER per ``voice`` / ``source`` field, when the manifest has one."""
    groups: dict[str, list[dict[str, object]]] = defaultdict(list)
    for r in ok:
        ref = r.get("reference") or {}
        assert isinstance(ref, dict)
        g = ref.get("voice") or ref.get("source")
        if g is not None and isinstance(ref.get("text"), str):
            groups[str(g)].append(r)
    return {
        g: {"n": len(rs), "wer": _r(wer([str(r["reference"]["text"]) for r in rs],  # type: ignore[index]
                                        [str(r.get("transcript") or "") for r in rs]))}
        for g, rs in sorted(groups.items())
    }


def per_intent(labelled: Sequence[tuple[dict[str, object], object]]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    by: dict[str, list[tuple[dict[str, object], dict[str, object]]]] = defaultdict(list)
    for r, s in labelled:
        by[str(r["reference"]["intent"])].append((r, s))  # type: ignore[index]
    predicted = Counter(str(r.get("intent")) for r, _ in labelled)
    for intent, items in sorted(by.items()):
        correct = sum(bool(s["intent_correct"]) for _, s in items)
        tp_pred = predicted.get(intent, 0)
        slot = prf(*(sum(int(s[k]) for _, s in items) for k in ("slot_tp", "slot_fp", "slot_fn")))
        out[intent] = {
            "n": len(items),
            "correct": correct,
            "accuracy": _r(correct / len(items)),
            "precision": _r(correct / tp_pred) if tp_pred else None,
            "slot_f1": slot["f1"],
            "exact_match": _r(sum(bool(s["exact_match"]) for _, s in items) / len(items)),
        }
    return out


def confusion(rows: Iterable[dict[str, object]]) -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    """(reference labels, predicted labels, counts) over files with a reference intent."""
    counts: Counter[tuple[str, str]] = Counter()
    for r in rows:
        ref = r.get("reference") or {}
        if r.get("status") == "ok" and isinstance(ref, dict) and isinstance(ref.get("intent"), str):
            counts[(str(ref["intent"]), str(r.get("intent") or "(none)"))] += 1
    gold = sorted({g for g, _ in counts})
    pred = gold + sorted({p for _, p in counts} - set(gold))
    return gold, pred, dict(counts)
