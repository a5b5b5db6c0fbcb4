"""Which INT8 quantization keeps the float model's answers: agreement on unlabelled text.

    python -m training.nlu.quant_agreement --fp32 FLOAT.onnx --model DIR [--dev-split N] [--texts FILE ...] [--json]

Each variant quantizes the same float export (``train nlu --keep-fp32``), and every text is parsed
one at a time, as ``quickturn parse`` does, by the float graph and by each variant. A variant's
score is how many texts get the float graph's intent, and its intent and every slot span. No gold
labels are read (``--dev-split`` only supplies the SNIPS dev utterances' words), so the choice can
be made on a split without spending a look at its scores: the split-8 pre-registration in
docs/nlu.md. Needs the train extra (onnx).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from domains import load_domains
from services.nlu.bert import JointBertNlu

VARIANTS: dict[str, dict[str, Any]] = {
    "per-tensor (shipped before split 8)": {},
    "per-channel": {"per_channel": True},
    "per-channel, 7-bit": {"per_channel": True, "reduce_range": True},
    "per-tensor, heads float": {"heads_float": True},
    "per-channel, heads float": {"per_channel": True, "heads_float": True},
    "per-channel, 7-bit, heads float": {"per_channel": True, "reduce_range": True, "heads_float": True},
}


def _decode_all(model_dir: Path, texts: list[str]) -> tuple[list[tuple[Any, ...]], float]:
    """Every text's (intent, slot spans), one parse at a time, and the mean ms per parse."""
    nlu = JointBertNlu(model_dir, load_domains(), threads=1)
    out = []
    t0 = time.perf_counter()
    for text in texts:
        r = nlu.parse(text)
        out.append((r.intent, tuple((s.slot, s.start, s.end) for s in r.slots)))
    return out, (time.perf_counter() - t0) * 1000 / max(len(texts), 1)


def agreement(fp32: Path, model: Path, texts: list[str]) -> dict[str, dict[str, Any]]:
    """Agreement of each variant in ``VARIANTS`` with the float graph (fused, not quantized)."""
    import onnx

    from training.nlu.common import LABELS_FILE, MODEL_FILE, TOKENIZER_FILE, write_manifest
    from training.nlu.quantize import fuse, quantize

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fused = work / "fused.onnx"
        fuse(fp32, fused)  # the float reference: the export's graph before quantization
        heads = [n.name for n in onnx.load(str(fused)).graph.node if n.op_type in ("MatMul", "Gemm") and "head" in n.name]

        def folder(name: str, graph: Path) -> Path:
            d = work / name
            d.mkdir()
            for f in (LABELS_FILE, TOKENIZER_FILE):
                shutil.copyfile(model / f, d / f)
            shutil.copyfile(graph, d / MODEL_FILE)
            write_manifest(d)
            return d

        ref, ms = _decode_all(folder("float", fused), texts)
        report: dict[str, dict[str, Any]] = {"float": {"ms_per_parse": round(ms, 2)}}
        for k, (name, kw) in enumerate(VARIANTS.items()):
            q = work / f"v{k}.onnx"
            quantize(fused, q, per_channel=kw.get("per_channel", False), reduce_range=kw.get("reduce_range", False),
                     nodes_to_exclude=heads if kw.get("heads_float") else None)
            got, ms = _decode_all(folder(f"v{k}", q), texts)
            report[name] = {
                "intent_agrees": sum(a[0] == b[0] for a, b in zip(got, ref, strict=True)),
                "all_agrees": sum(a == b for a, b in zip(got, ref, strict=True)),
                "texts": len(texts),
                "ms_per_parse": round(ms, 2),
            }
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.nlu.quant_agreement", description=__doc__.split("\n\n")[0])
    p.add_argument("--fp32", type=Path, required=True, help="the float export (train nlu --keep-fp32)")
    p.add_argument("--model", type=Path, required=True, help="the model folder of the same weights (labels, tokenizer)")
    p.add_argument("--dev-split", type=int, help="add the words of this SNIPS dev split's utterances (no labels read)")
    p.add_argument("--texts", type=Path, action="append", default=[], help="a file of texts, one per line")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    texts: list[str] = []
    if args.dev_split:
        from core.settings import load_settings
        from training.nlu.data import snips_split

        texts += [" ".join(e.words) for e in snips_split(load_settings().shared_dir, args.dev_split)[1]]
    for f in args.texts:
        texts += [line.strip() for line in f.read_text().splitlines() if line.strip()]
    if not texts:
        p.error("no texts: give --dev-split or --texts")
    report = agreement(args.fp32, args.model, texts)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{len(texts)} texts, one parse at a time; agreement with the float graph ({report['float']['ms_per_parse']} ms/parse)")
    for name, r in report.items():
        if name != "float":
            print(f"  {name:36s} intent {r['intent_agrees']:5d}  intent+slots {r['all_agrees']:5d}  {r['ms_per_parse']:6.2f} ms/parse")
    return 0


if __name__ == "__main__":
    sys.exit(main())
