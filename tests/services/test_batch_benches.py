"""``quickturn bench nlu --batch`` and ``bench disfluency --batch``: the batch-cost curves of issue 28."""

from __future__ import annotations

import json

import pytest

from core.errors import InvalidInput


def test_nlu_and_tagger_batch_benches_print_a_curve(capsys: pytest.CaptureFixture[str]) -> None:
    from services.disfluency.commands import bench_main as bench_tagger
    from services.nlu.commands import bench_main as bench_nlu

    assert bench_nlu(["--batch", "1,4", "--rounds", "2", "--json"]) == 0
    nlu = json.loads(capsys.readouterr().out)
    assert [r["batch"] for r in nlu["batches"]] == [1, 4] and all(r["ms_per_call_p50"] > 0 for r in nlu["batches"])
    assert bench_tagger(["--batch", "1,4", "--runs", "2", "--json"]) == 0
    tagger = json.loads(capsys.readouterr().out)
    assert [r["batch"] for r in tagger["batches"]] == [1, 4]
    with pytest.raises(InvalidInput, match="batched"):
        bench_nlu(["--batch", "1,2", "--backend", "keywords"])
