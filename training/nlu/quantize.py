"""The NLU model's INT8 export: graph fusion, dynamic quantization, and re-quantizing a model folder.

Split out of training because a shipped folder can be quantized again from its kept float export
(``quickturn train nlu --keep-fp32``) without the 90 minutes of training that made the weights:
``quickturn train nlu-quantize``. Needs ``onnx`` (the train extra) besides onnxruntime.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The INT8 export's weight quantization (docs/nlu.md, split 8): one scale per output channel in a
# 7-bit range. Chosen without labels: of the variants tried on split 7's weights it agreed most
# often with the float graph (1,142 of 1,155 unlabelled utterances decoded alike, against 1,129
# with one scale per tensor), at ~7 % more time per parse (medians of `quickturn bench nlu`
# run alternately: 3.86 -> 4.15 ms).
QUANTIZATION = {"method": "dynamic", "weights": "int8", "per_channel": True, "reduce_range": True}


def fuse(fp32: Path, fused_path: Path, num_heads: int = 12, hidden_size: int = 384) -> dict[str, int]:
    """Fuse the float graph with onnxruntime's BERT optimizer; returns the fused-operator counts.

    Fewer, larger kernels matter more than FLOPs for a ~10-token utterance: the fused graph
    has ~150 nodes instead of ~850. The embedding lookup is left unfused so that its table
    is quantized too (EmbedLayerNormalization would keep 47 MB of float embeddings).
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_embed_layer_norm = False
    fused = optimize_model(str(fp32), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                           optimization_options=options, opt_level=0)
    fused.save_model_to_file(str(fused_path))
    return {k: int(v) for k, v in fused.get_fused_operator_statistics().items() if v}


def quantize(fused: Path, out: Path, *, per_channel: bool = True, reduce_range: bool = True,
             nodes_to_exclude: list[str] | None = None) -> None:
    """Dynamic INT8 quantization of a fused float graph (weights int8, activations per call)."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fused), str(out), weight_type=QuantType.QInt8, per_channel=per_channel,
                     reduce_range=reduce_range, nodes_to_exclude=nodes_to_exclude,
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})


def fuse_and_quantize(fp32: Path, out: Path, num_heads: int = 12, hidden_size: int = 384, *,
                      per_channel: bool = True, reduce_range: bool = True) -> dict[str, int]:
    """:func:`fuse`, then :func:`quantize` into ``out``; returns the fused-operator counts.

    ``per_channel``/``reduce_range``: the weight scales (see ``QUANTIZATION``); both off give the
    quantization of the models shipped before split 8.
    """
    fused_path = out.with_name(out.stem + ".fused.fp32.onnx")
    try:
        stats = fuse(fp32, fused_path, num_heads, hidden_size)
        quantize(fused_path, out, per_channel=per_channel, reduce_range=reduce_range)
    finally:
        fused_path.unlink(missing_ok=True)
    return stats


def _output_widths(fp32: Path) -> dict[str, Any]:
    """The last dimension of each graph output (the number of intents / slot labels)."""
    import onnx

    try:
        graph = onnx.load(str(fp32), load_external_data=False).graph
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ValueError(f"{fp32}: not an ONNX model ({exc})") from exc
    widths: dict[str, Any] = {}
    for out in graph.output:
        dims = out.type.tensor_type.shape.dim
        widths[out.name] = dims[-1].dim_value if dims and dims[-1].HasField("dim_value") else None
    return widths


def check_model_folder(fp32: Path, model_dir: Path) -> dict[str, Any]:
    """The folder's ``labels.json`` if ``model_dir`` is an NLU model folder and ``fp32`` a file.

    Needs no onnx, so the command reports a wrong path before it asks for the train extra.
    """
    from training.nlu.common import LABELS_FILE, TOKENIZER_FILE

    labels_path = model_dir / LABELS_FILE
    if not labels_path.is_file() or not (model_dir / TOKENIZER_FILE).is_file():
        raise ValueError(f"{model_dir}: not an NLU model folder ({LABELS_FILE} and {TOKENIZER_FILE} expected)")
    if not fp32.is_file():
        raise ValueError(f"{fp32}: no such file (write one with quickturn train nlu --keep-fp32)")
    try:
        meta = json.loads(labels_path.read_text())
        if not isinstance(meta.get("intents"), list) or not isinstance(meta.get("slot_labels"), list):
            raise KeyError("intents/slot_labels")
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{labels_path}: unreadable ({exc})") from exc
    return dict(meta)


def requantize(fp32: Path, model_dir: Path, *, per_channel: bool = True, reduce_range: bool = True) -> dict[str, Any]:
    """Replace ``model_dir``'s INT8 graph with a new quantization of the float export ``fp32``.

    The float file must be the export of the same weights (``--keep-fp32`` of the run that wrote the
    folder, or ``--epochs 0 --init-from`` its checkpoint): only its output widths can be checked
    here, against the folder's intents and slot labels, so a float file of another label set is
    refused and one of other weights with the same labels is not. ``labels.json`` keeps its
    training record and gets the new ``quantization``; the manifest is rewritten. The new graph is
    written next to the old one first, so a failure leaves the folder as it was.
    """
    from training.nlu.common import LABELS_FILE, MODEL_FILE, write_manifest

    meta = check_model_folder(fp32, model_dir)
    expected = {"intent_logits": len(meta["intents"]), "slot_logits": len(meta["slot_labels"])}
    widths = _output_widths(fp32)
    if widths != expected:
        raise ValueError(f"{fp32}: outputs {widths} do not match {model_dir / LABELS_FILE} {expected}: "
                         "the float export of another model")
    tmp = model_dir / (MODEL_FILE + ".new")
    try:
        stats = fuse_and_quantize(fp32, tmp, per_channel=per_channel, reduce_range=reduce_range)
        tmp.replace(model_dir / MODEL_FILE)
    finally:
        tmp.unlink(missing_ok=True)
    meta["quantization"] = dict(QUANTIZATION, per_channel=per_channel, reduce_range=reduce_range)
    (model_dir / LABELS_FILE).write_text(json.dumps(meta) + "\n")
    write_manifest(model_dir)
    return {"fused": stats, "quantization": meta["quantization"]}
