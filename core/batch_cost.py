"""The cost of one batched call against batch size: the shared measurement of the ``--batch`` benches.

Issue 28 asks to batch a stage across sessions *where a batch helps*. Whether it
helps is a number: the per-item time of one call on B items against one call on
one. Each round runs the same items at every batch size (``n // B`` calls of B),
the sizes in a shuffled order, so every size does the same work on the same
(noisy, shared) machine; the figure is the median call.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from core.errors import InvalidInput

T = TypeVar("T")


def parse_sizes(text: str, most: int) -> list[int]:
    """``"1,2,4,8"`` → ``[1, 2, 4, 8]``; each size between 1 and ``most``.

    Raises:
        InvalidInput: not comma-separated integers in that range.
    """
    try:
        sizes = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError as exc:
        raise InvalidInput(f"--batch: comma-separated batch sizes, got {text!r}") from exc
    if not sizes or sizes[0] < 1 or sizes[-1] > most:
        raise InvalidInput(f"--batch: sizes from 1 to {most}, got {text!r}")
    return sizes


def batch_cost(call: Callable[[Sequence[T]], object], items: Sequence[T], sizes: Sequence[int], rounds: int,
               seed: int = 0) -> list[dict[str, float]]:
    """Per batch size: the median ms per call, per item, and the per-item speed-up over the smallest size."""
    call(items)  # warm-up (allocations for the largest shape)
    per_call: dict[int, list[float]] = {b: [] for b in sizes}
    rng = random.Random(seed)
    for _ in range(max(1, rounds)):
        order = list(items)
        rng.shuffle(order)  # other neighbours each round: padding to the longest varies as it would
        for b in rng.sample(list(sizes), len(sizes)):
            for i in range(0, len(order) - b + 1, b):
                t0 = time.perf_counter()
                call(order[i : i + b])
                per_call[b].append((time.perf_counter() - t0) * 1000)
    first = min(sizes)
    base = statistics.median(per_call[first]) / first
    rows = []
    for b in sorted(sizes):
        med = statistics.median(per_call[b])
        rows.append({"batch": b, "ms_per_call_p50": round(med, 3), "ms_per_item": round(med / b, 3),
                     "speedup_per_item": round(base / (med / b), 2)})
    return rows


def batch_lines(title: str, rows: list[dict[str, float]]) -> list[str]:
    """The rows as the benches print them."""
    first = rows[0]["batch"]
    return [title] + [
        f"  batch {int(r['batch']):>2}: {r['ms_per_call_p50']:7.2f} ms per call, {r['ms_per_item']:6.2f} ms per item, "
        f"{r['speedup_per_item']:.2f}x per item over batch {int(first)}"
        for r in rows
    ]
