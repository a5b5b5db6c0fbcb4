"""``quickturn parse`` and ``quickturn bench nlu``: the NLU stage's run-time commands.

Training and evaluation (``train nlu*``, ``eval nlu``) live in :mod:`training.nlu.commands`.
Each ``*_main(argv)`` parses its own arguments and returns an exit code; user
errors raise :class:`~core.errors.InvalidInput`, which the CLI prints as one line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from core.cli_args import ArgumentParser
from services.nlu import load_named

BENCH_UTTERANCES = [
    "can i get a large double shot latte with some soy milk",
    "set a timer for five minutes",
    "wake me up at seven thirty tomorrow",
    "what's the weather like in new york this weekend",
    "play the latest album by taylor swift on spotify",
    "add this song to my road trip playlist",
    "book a table for four at an italian restaurant tonight",
    "rate this book four out of six stars",
    "find the movie schedule at the nearest cinema",
    "search for the tv show the office",
    "turn off the lights in the living room",
    "dim the bedroom lamp to thirty percent",
    "what time is it in tokyo",
    "hello there",
    "never mind",
    "tell me a joke about penguins",
]


def bench_main(argv: list[str]) -> int:
    """Milliseconds per utterance on one thread (single utterances, no batching)."""
    p = ArgumentParser(prog="quickturn bench nlu", description=bench_main.__doc__)
    p.add_argument("--backend", choices=["auto", "bert", "keywords"], default="auto")
    p.add_argument("--rounds", type=int, default=20, help="passes over the utterance set")
    p.add_argument("--batch", metavar="SIZES",
                   help="instead: the cost of one batched forward pass against batch size, e.g. 1,2,4,8 (issue 28: "
                        "does batching the NLU across sessions pay on this machine?)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    backend = load_named(args.backend)
    if args.batch:
        return _bench_batch(backend, args.batch, args.rounds, args.json)
    for text in BENCH_UTTERANCES:  # warm-up
        backend.parse(text)
    times = []
    cpu0 = time.process_time()
    for _ in range(max(1, args.rounds)):
        for text in BENCH_UTTERANCES:
            t0 = time.perf_counter()
            backend.parse(text)
            times.append((time.perf_counter() - t0) * 1000)
    cpu_ms = (time.process_time() - cpu0) * 1000 / len(times)
    times.sort()
    result = {
        "backend": backend.name,
        "threads": 1,
        "utterances": len(times),
        "mean_ms": round(statistics.fmean(times), 3),
        "p50_ms": round(times[len(times) // 2], 3),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 3),
        "max_ms": round(times[-1], 3),
        "cpu_ms": round(cpu_ms, 3),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"nlu {result['backend']} (1 thread): mean {result['mean_ms']:.2f} ms, p50 {result['p50_ms']:.2f} ms, "
              f"p95 {result['p95_ms']:.2f} ms, max {result['max_ms']:.2f} ms over {result['utterances']} utterances; "
              f"CPU time {result['cpu_ms']:.2f} ms per utterance")
    return 0


def _bench_batch(backend: object, sizes_arg: str, rounds: int, as_json: bool) -> int:
    """One batched forward pass against batch size (:mod:`core.batch_cost`)."""
    from core.batch_cost import batch_cost, batch_lines, parse_sizes
    from core.errors import InvalidInput

    sizes = parse_sizes(sizes_arg, len(BENCH_UTTERANCES))
    parse_batch = getattr(backend, "parse_batch", None)
    name = getattr(backend, "name", "?")
    if parse_batch is None:
        raise InvalidInput(f"the {name} NLU has no batched parse (use --backend bert)")
    rows = batch_cost(parse_batch, BENCH_UTTERANCES, sizes, rounds)
    if as_json:
        print(json.dumps({"backend": name, "rounds": rounds, "batches": rows}))
    else:
        print("\n".join(batch_lines(f"nlu {name}: one batched forward pass (median of {rounds} rounds)", rows)))
    return 0


def parse_main(argv: list[str]) -> int:
    """Intent + slots for each stdin line (or each TEXT argument); one output line per input line."""
    p = ArgumentParser(prog="quickturn parse", description=parse_main.__doc__)
    p.add_argument("text", nargs="*", help="utterances to parse instead of reading stdin")
    p.add_argument("--json", action="store_true", help="one JSON object per line: intent, confidence, slots")
    p.add_argument("--backend", choices=["auto", "bert", "keywords"], default="auto")
    args = p.parse_args(argv)
    backend = load_named(args.backend)
    lines = args.text if args.text else (line.rstrip("\n") for line in sys.stdin)
    for line in lines:
        result = backend.parse(line)
        if args.json:
            print(json.dumps(result.to_json(), ensure_ascii=False), flush=True)
        else:
            slots = " ".join(
                f"{s.slot}={s.value!r}" + (f"→{s.normalized!r}" if s.normalized != s.value else "") for s in result.slots
            )
            print(f"{result.intent} ({result.confidence:.2f}) {slots}".rstrip(), flush=True)
    return 0
