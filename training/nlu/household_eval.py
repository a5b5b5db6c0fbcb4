"""Score the NLU on real household and out-of-scope requests (``quickturn eval nlu --format slurp``).

Why a scorer of its own: SLURP's intents are not ours, and one SLURP intent can be answered by
two of ours ("remind me to…" is ``calendar_set``; ``SetReminder`` and ``AddEvent`` both fit), so
the question is "did the request reach a fitting intent", per household scenario, and "was an
out-of-scope request declined" (predicted ``out_of_scope``), not label accuracy. What fits is
:data:`training.slurp.FITTING`; which requests are scored and which part is the report is
:mod:`training.slurp`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from core.types import OUT_OF_SCOPE, NluResult
from services.nlu.base import NluBackend
from training.nlu.evaluate import parse_texts
from training.slurp import Request, requests, scored


def score_household(rows: list[Request], preds: list[NluResult], keep_errors: int = 0) -> dict[str, Any]:
    """Per-scenario share of household requests reaching a fitting intent, and the share of
    out-of-scope requests declined (SLURP's out-of-scope scenarios and CLINC150 separately)."""
    by_scenario: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # scenario -> [fitting, n]
    oos: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # source -> [declined, n]
    house_declined = 0
    wrong: Counter[tuple[str, str]] = Counter()
    taken_as: Counter[str] = Counter()
    errors: list[dict[str, Any]] = []
    for req, pred in zip(rows, preds, strict=True):
        if req.household:
            ok = pred.intent in req.fitting
            cell = by_scenario[req.household_scenario]
            cell[0] += ok
            cell[1] += 1
            house_declined += pred.intent == OUT_OF_SCOPE
            if not ok:
                wrong[(req.intent, pred.intent)] += 1
        elif req.out_of_scope:
            ok = pred.intent == OUT_OF_SCOPE
            cell = oos["clinc150" if req.source == "clinc" else "slurp"]
            cell[0] += ok
            cell[1] += 1
            if not ok:
                taken_as[pred.intent] += 1
        else:
            continue
        if not ok and len(errors) < keep_errors:
            errors.append({"text": req.text, "slurp_intent": req.intent, "fitting": list(req.fitting),
                           "pred": pred.intent, "confidence": round(pred.confidence, 3)})
    house_ok = sum(c[0] for c in by_scenario.values())
    house_n = sum(c[1] for c in by_scenario.values())
    oos_ok = sum(c[0] for c in oos.values())
    oos_n = sum(c[1] for c in oos.values())
    return {
        "household": {"understood": round(house_ok / house_n, 4) if house_n else 0.0, "n": house_n,
                      "declined": round(house_declined / house_n, 4) if house_n else 0.0},
        "scenarios": {s: {"understood": round(c[0] / c[1], 4), "n": c[1]} for s, c in sorted(by_scenario.items())},
        "out_of_scope": {"declined": round(oos_ok / oos_n, 4) if oos_n else 0.0, "n": oos_n,
                         **{src: {"declined": round(c[0] / c[1], 4), "n": c[1]} for src, c in sorted(oos.items())}},
        "confusions": [{"slurp": g, "pred": p, "count": n} for (g, p), n in wrong.most_common(15)],
        "out_of_scope_taken_as": dict(taken_as.most_common(10)),
        "errors": errors,
    }


def evaluate_household(backend: NluBackend, shared_dir: Path, part: str, keep_errors: int = 0) -> dict[str, Any]:
    rows = scored(requests(shared_dir, part))
    return {"part": part, **score_household(rows, parse_texts(backend, [r.text for r in rows]), keep_errors)}


def print_household(metrics: dict[str, Any], backend_name: str) -> None:
    h, o = metrics["household"], metrics["out_of_scope"]
    print(f"SLURP devel + CLINC150 out-of-scope, {metrics['part']} part · backend {backend_name}")
    print(f"  household requests reaching a fitting intent  {h['understood'] * 100:6.2f} %  ({h['n']}; "
          f"{h['declined'] * 100:.1f} % declined)")
    for name, cell in metrics["scenarios"].items():
        print(f"    {name:<20} {cell['understood'] * 100:6.2f} %  ({cell['n']})")
    print(f"  out-of-scope requests declined                {o['declined'] * 100:6.2f} %  ({o['n']})")
    for src in ("slurp", "clinc150"):
        if src in o:
            print(f"    {src:<20} {o[src]['declined'] * 100:6.2f} %  ({o[src]['n']})")
    if metrics["confusions"]:
        print("  household misses (SLURP intent -> predicted):")
        for row in metrics["confusions"][:10]:
            print(f"    {row['slurp']:>22} -> {row['pred']:<22} {row['count']}")
    if metrics["out_of_scope_taken_as"]:
        print("  out-of-scope taken as: " + ", ".join(f"{k} {v}" for k, v in metrics["out_of_scope_taken_as"].items()))
    for err in metrics["errors"]:
        print(f"  ✗ {err['slurp_intent']}: {err['text']}\n      got {err['pred']} ({err['confidence']})")
