"""Torch weights recovered from a shipped INT8 ONNX tagger, to continue training it.

The shipped ``model_int8.onnx`` is the output of :func:`training.disfluency.train.export_onnx`:
onnxruntime's BERT fusion (``EmbedLayerNormalization``, ``Attention`` with one QKV matrix,
``SkipLayerNormalization``, ``BiasGelu``) and dynamic INT8 quantisation (``QEmbedLayerNormalization``,
``QAttention``, ``MatMulInteger``). Every weight is still there, quantised per tensor:
``float = (int8 - zero_point) * scale``. :func:`recover_state` dequantises them and maps them back
onto the training model's state dict (:func:`training.disfluency.train.make_model` with the
ONNX's number of encoder layers):

* embeddings and their LayerNorm from ``QEmbedLayerNormalization``'s inputs; the word-embedding
  matrix is frozen in training, so the base model's FP32 matrix is taken (the dequantised one is
  only checked against it);
* per layer: query/key/value from the ``QAttention`` QKV matrix (``[hidden, 3 * hidden]``, the
  transposed Q, K, V side by side) and bias; the three dense layers from the ``MatMulInteger``
  weights in graph order (attention output, intermediate, output), their biases and the
  LayerNorms from the ``SkipLayerNormalization``/``BiasGelu`` inputs;
* the two heads from the last two ``MatMulInteger`` weights and their ``Add`` biases.

The recovered weights carry the quantisation error of INT8 (that is the shipped model); the
checks in :func:`compare_with_onnx` say how closely the recovered torch model reproduces the
ONNX's outputs.
"""

from __future__ import annotations

from pathlib import Path


def _dequant(inits: dict, name: str):
    import numpy as np
    from onnx import numpy_helper

    q = numpy_helper.to_array(inits[name + "_quantized"]).astype(np.float32)
    scale = numpy_helper.to_array(inits[name + "_scale"]).astype(np.float32)
    zero = numpy_helper.to_array(inits[name + "_zero_point"]).astype(np.float32)
    return (q - zero) * scale


def _weight_name(node_input: str) -> str:
    return node_input[: -len("_quantized")] if node_input.endswith("_quantized") else node_input


def recover_state(onnx_path: Path, torch, base_dir: Path):
    """``(model, report)``: the training model with the ONNX's weights, and what was checked."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from training.disfluency.train import keep_layers, make_model

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: i for i in graph.initializer}
    floats = {name: numpy_helper.to_array(init) for name, init in inits.items()}
    nodes = list(graph.node)
    emb = next(n for n in nodes if n.op_type == "QEmbedLayerNormalization")
    attentions = [n for n in nodes if n.op_type == "QAttention"]
    matmuls = [n for n in nodes if n.op_type == "MatMulInteger"]
    skips = [n for n in nodes if n.op_type == "SkipLayerNormalization"]
    gelus = [n for n in nodes if n.op_type == "BiasGelu"]
    layers = len(attentions)
    if len(matmuls) != 3 * layers + 2 or len(skips) != 2 * layers or len(gelus) != layers:
        raise ValueError(f"{onnx_path}: not the fused, quantised tagger graph this module knows")

    model = make_model(torch, base_dir)
    keep_layers(model, layers)
    state = model.state_dict()
    new: dict[str, np.ndarray] = {}
    report: dict[str, float] = {}

    base_words = state["bert.embeddings.word_embeddings.weight"].numpy()
    words = _dequant(inits, _weight_name(emb.input[2]))
    report["word_embeddings_max_abs_diff_vs_base"] = float(np.abs(words - base_words).max())
    new["bert.embeddings.word_embeddings.weight"] = base_words
    for k, key in ((3, "position_embeddings.weight"), (4, "token_type_embeddings.weight"),
                   (5, "LayerNorm.weight"), (6, "LayerNorm.bias")):
        new[f"bert.embeddings.{key}"] = _dequant(inits, _weight_name(emb.input[k]))

    hidden = base_words.shape[1]
    # Heads: the last two MatMulIntegers, named by their node (/wait/..., /disfluency/...).
    heads = matmuls[3 * layers :]
    for node in heads:
        head = "wait" if node.name.startswith("/wait/") else "disfluency"
        w = _dequant(inits, _weight_name(node.input[1]))
        new[f"{head}.weight"] = w.T
        new[f"{head}.bias"] = floats[f"{head}.bias"]
    for i, att in enumerate(attentions):
        p = f"bert.encoder.layer.{i}."
        qkv = _dequant(inits, _weight_name(att.input[1]))
        bias = floats[att.input[2]]
        for j, part in enumerate(("query", "key", "value")):
            new[p + f"attention.self.{part}.weight"] = qkv[:, j * hidden : (j + 1) * hidden].T
            new[p + f"attention.self.{part}.bias"] = bias[j * hidden : (j + 1) * hidden]
        for node, key in zip(matmuls[3 * i : 3 * i + 3], ("attention.output.dense", "intermediate.dense", "output.dense"),
                             strict=True):
            new[p + key + ".weight"] = _dequant(inits, _weight_name(node.input[1])).T
        for skip, key in zip(skips[2 * i : 2 * i + 2], ("attention.output", "output"), strict=True):
            new[p + key + ".LayerNorm.weight"] = floats[skip.input[2]]
            new[p + key + ".LayerNorm.bias"] = floats[skip.input[3]]
            new[p + key + ".dense.bias"] = floats[skip.input[4]]
        new[p + "intermediate.dense.bias"] = floats[gelus[i].input[1]]

    missing = [k for k in state if k not in new and not k.endswith("position_ids")]
    if missing:
        raise ValueError(f"{onnx_path}: no weights recovered for {missing}")
    loaded = {}
    for key, tensor in state.items():
        if key in new:
            value = torch.from_numpy(np.array(new[key], dtype=np.float32, copy=True))
            if tuple(value.shape) != tuple(tensor.shape):
                raise ValueError(f"{key}: recovered shape {tuple(value.shape)}, model has {tuple(tensor.shape)}")
            loaded[key] = value
        else:
            loaded[key] = tensor
    model.load_state_dict(loaded)
    model.eval()
    return model, report


def compare_with_onnx(model, onnx_path: Path, torch, tokenizer, sentences: list[list[str]]) -> dict[str, float]:
    """How closely the torch ``model`` reproduces the ONNX's outputs on ``sentences``.

    Returns the largest and mean absolute differences of the two heads' logits (on each word's
    first sub-word) and the share of words whose keep/remove decision (argmax keep vs any kind)
    is the same.
    """
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    d_max = w_max = d_sum = w_sum = 0.0
    n = same = 0
    for words in sentences:
        enc = tokenizer.encode(words, is_pretokenized=True)
        ids = np.array([enc.ids], dtype=np.int64)
        mask = np.ones_like(ids)
        first = [k for k, wid in enumerate(enc.word_ids) if wid is not None and (k == 0 or enc.word_ids[k - 1] != wid)]
        o_d, o_w = session.run(None, {"input_ids": ids, "attention_mask": mask})
        with torch.no_grad():
            t_d, t_w = model(torch.from_numpy(ids), torch.from_numpy(mask))
        t_d, t_w = t_d.numpy()[0, first], t_w.numpy()[0, first]
        o_d, o_w = o_d[0, first], o_w[0, first]
        d_max = max(d_max, float(np.abs(t_d - o_d).max()))
        w_max = max(w_max, float(np.abs(t_w - o_w).max()))
        d_sum += float(np.abs(t_d - o_d).sum())
        w_sum += float(np.abs(t_w - o_w).sum())
        same += int(((t_d.argmax(-1) != 0) == (o_d.argmax(-1) != 0)).sum())
        n += len(first)
    return {
        "words": n,
        "disfluency_logit_max_abs_diff": round(d_max, 4),
        "disfluency_logit_mean_abs_diff": round(d_sum / max(1, n * 6), 5),
        "wait_logit_max_abs_diff": round(w_max, 4),
        "wait_logit_mean_abs_diff": round(w_sum / max(1, n), 5),
        "same_keep_remove": round(same / max(1, n), 5),
    }


def recover_checkpoint(onnx_path: Path, work_dir: Path, check: list[list[str]]) -> dict[str, object]:
    """Write ``work_dir/model.pt`` recovered from ``onnx_path``; returns the checks (on ``check``)."""
    import torch
    from tokenizers import Tokenizer

    from training.disfluency.train import base_model_dir

    torch.set_num_threads(1)
    base = base_model_dir()
    model, report = recover_state(onnx_path, torch, base)
    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    work_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), work_dir / "model.pt")
    return {
        "model_pt": str(work_dir / "model.pt"),
        "recovered_from": str(onnx_path),
        **report,
        **compare_with_onnx(model, onnx_path, torch, tokenizer, check),
    }
