"""core.batch_cost: every batch size does the same work; sizes are checked; the benches print it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from core.batch_cost import batch_cost, parse_sizes
from core.errors import InvalidInput


def test_every_size_sees_the_same_items() -> None:
    seen: dict[int, Counter[str]] = {}

    def call(batch: Sequence[str]) -> None:
        seen.setdefault(len(batch), Counter()).update(batch)

    items = [f"u{i}" for i in range(8)]
    rows = batch_cost(call, items, [1, 2, 4, 8], rounds=3)
    assert [r["batch"] for r in rows] == [1, 2, 4, 8] and rows[0]["speedup_per_item"] == 1.0
    # 3 rounds of every item at each size (the warm-up is one call of all 8 items)
    assert seen[1] == seen[2] == seen[4] == Counter({i: 3 for i in items})
    assert seen[8] == Counter({i: 4 for i in items})


@pytest.mark.parametrize("text", ["", "0,2", "1,x", "1,17"])
def test_bad_sizes_are_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidInput, match="--batch"):
        parse_sizes(text, 16)
