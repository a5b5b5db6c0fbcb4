"""``quickturn clean`` and ``quickturn bench disfluency``: the tagger's run-time commands.

Training and evaluation (``train disfluency``, ``eval disfluency``) live in
:mod:`training.disfluency.commands`. Each function takes the argv left after the
command words and returns an exit code; user errors raise
:class:`~core.errors.InvalidInput`, which the CLI prints as one line.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Sequence

from core.cli_args import ArgumentParser
from core.types import clean_text
from services.disfluency import load_named


def clean_main(argv: Sequence[str]) -> int:
    """Remove disfluencies from utterances read one per line on stdin."""
    parser = ArgumentParser(prog="quickturn clean", description=clean_main.__doc__)
    parser.add_argument("--json", action="store_true", help='one {"tokens","remove","clean"} object per line')
    parser.add_argument("--tagger", choices=["auto", "bert", "rules"], help="override settings.disfluency")
    args = parser.parse_args(list(argv))
    tagger = load_named(args.tagger)
    for line in sys.stdin:
        tokens = line.split()
        tagged = tagger.tag(tokens) if tokens else []
        text = clean_text(tagged)
        if args.json:
            record = {"tokens": tokens, "remove": [t.remove for t in tagged], "clean": text}
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            print(text, flush=True)
    return 0


BENCH_UTTERANCES = [
    "set an alarm for uh for seven no sorry eight thirty",
    "what's the weather in paris",
    "turn on the kitchen lights",
    "can i get a large latte",
    "um can i get a medium no a large cappuccino with oat milk",
    "play some jazz in the living room",
    "remind me to buy milk tomorrow",
    "turn off the the bedroom lamp",
    "what's the what time is it in tokyo",
    "call mom",
    "set a timer for ten minutes",
    "i'd like a uh small flat white i mean a large flat white please",
    "how long will it take to get to boston",
    "dim the office lights to forty percent",
    "add bananas to my shopping list",
    "book a table for four at seven thirty no wait at eight",
]


def bench_main(argv: Sequence[str]) -> int:
    """Time the tagger on one thread: ms per utterance and per streamed word."""
    parser = ArgumentParser(prog="quickturn bench disfluency", description=bench_main.__doc__)
    parser.add_argument("--runs", type=int, default=30, help="passes over the utterance set")
    parser.add_argument("--tagger", choices=["auto", "bert", "rules"], help="override settings.disfluency")
    parser.add_argument("--batch", metavar="SIZES",
                        help="instead: the cost of one batched forward pass against batch size, e.g. 1,2,4,8 (issue 28: "
                             "does batching the tagger across sessions pay on this machine?)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(list(argv))
    t0 = time.perf_counter()
    tagger = load_named(args.tagger)
    load_ms = (time.perf_counter() - t0) * 1000
    utterances = [u.split() for u in BENCH_UTTERANCES]
    if args.batch:
        from core.batch_cost import batch_cost, batch_lines, parse_sizes
        from core.errors import InvalidInput

        sizes = parse_sizes(args.batch, len(utterances))
        forward = getattr(tagger, "forward_batch", None)
        if forward is None:
            raise InvalidInput(f"the {tagger.name} tagger has no batched forward pass (use --tagger bert)")
        rows = batch_cost(forward, utterances, sizes, args.runs)
        if args.json:
            print(json.dumps({"tagger": tagger.name, "runs": args.runs, "batches": rows}))
        else:
            print("\n".join(batch_lines(f"tagger {tagger.name}: one batched forward pass (median of {args.runs} runs)", rows)))
        return 0
    for words in utterances:  # warm-up
        tagger.tag(words)
    # Wall time includes waiting for a busy CPU; CPU time (this process, one
    # intra-op thread) is what the call costs on an idle core. Both are reported.
    per_utt: list[float] = []
    per_utt_cpu: list[float] = []
    for _ in range(args.runs):
        for words in utterances:
            t, c = time.perf_counter(), time.process_time()
            tagger.tag(words)
            per_utt.append((time.perf_counter() - t) * 1000)
            per_utt_cpu.append((time.process_time() - c) * 1000)
    per_word: list[float] = []
    per_word_cpu: list[float] = []
    for _ in range(max(1, args.runs // 3)):
        for words in utterances:
            session = tagger.stream()
            for i in range(1, len(words) + 1):
                t, c = time.perf_counter(), time.process_time()
                session.update(words[:i])
                per_word.append((time.perf_counter() - t) * 1000)
                per_word_cpu.append((time.process_time() - c) * 1000)
            session.finish(words)

    def p95(values: list[float]) -> float:
        return round(sorted(values)[int(0.95 * (len(values) - 1))], 3)

    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    result = {
        "tagger": tagger.name,
        "threads": 1,
        "utterances": len(utterances),
        "mean_words": round(sum(map(len, utterances)) / len(utterances), 1),
        "load_ms": round(load_ms, 1),
        "utterance_ms_p50": round(statistics.median(per_utt), 3),
        "utterance_ms_p95": p95(per_utt),
        "utterance_cpu_ms_p50": round(statistics.median(per_utt_cpu), 3),
        "streamed_word_ms_p50": round(statistics.median(per_word), 3),
        "streamed_word_ms_p95": p95(per_word),
        "streamed_word_cpu_ms_p50": round(statistics.median(per_word_cpu), 3),
        "load_average_1min": round(load1, 2),
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['tagger']} tagger, 1 thread, {result['utterances']} utterances "
            f"(mean {result['mean_words']} words), {args.runs} runs; load {result['load_ms']} ms; "
            f"machine load average {result['load_average_1min']} on {result['cpu_count']} CPUs"
        )
        print(
            f"per utterance:     wall p50 {result['utterance_ms_p50']:.3f} ms  p95 {result['utterance_ms_p95']:.3f} ms"
            f"  | CPU p50 {result['utterance_cpu_ms_p50']:.3f} ms"
        )
        print(
            f"per streamed word: wall p50 {result['streamed_word_ms_p50']:.3f} ms  "
            f"p95 {result['streamed_word_ms_p95']:.3f} ms  | CPU p50 {result['streamed_word_cpu_ms_p50']:.3f} ms"
        )
    return 0
