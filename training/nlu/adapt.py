"""Adapt the base BERT to the training text with masked-language modelling, before fine-tuning.

Why: the base model (all-MiniLM-L6-v2) was trained last for sentence embeddings (a contrastive
loss on the mean of the token vectors), which is what a sentence classifier wants but not
what a per-word tagger wants: nothing in that objective keeps one word's vector telling its
own word apart from its neighbours'. The slot errors that are left are per-word boundary and
type errors on names (docs/nlu.md). Domain-adaptive pre-training (Gururangan et al. 2020)
trains the encoder to predict masked words of the task's own text, which works exactly on
per-word vectors. It uses only the training utterances' text (no labels), and never the dev
split's: :func:`adapt` records which split it may be used for and ``train`` checks it.

Whole words are masked (all their sub-tokens at once), since a slot is made of words. The
prediction head is new (the package carries no MLM head) and is dropped afterwards: only the
encoder goes on to :func:`training.nlu.train.train` (``quickturn train nlu --base DIR``).
Needs the ``train`` extra.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

from training.nlu.data import NluData

ADAPTED_FILE = "adapted.json"
# Files of the base model folder that the adapted folder keeps as they are (the tokenizer).
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def training_texts(data: NluData) -> list[tuple[str, ...]]:
    """The distinct word sequences of the training examples, in first-seen order.

    Oversampled copies count once: the MLM should see the text's variety, not the
    oversampling. The dev split is not in ``data.train``, so it is never read here.
    """
    seen: dict[tuple[str, ...], None] = {}
    for ex in data.train:
        seen.setdefault(tuple(ex.words), None)
    return list(seen)


def adapted_split(base: Path) -> int | None:
    """The dev split an adapted base folder was made for, or None for a folder :func:`adapt` did not write."""
    meta = base / ADAPTED_FILE
    if not meta.is_file():
        return None
    return int(json.loads(meta.read_text(encoding="utf-8"))["dev_split"])


def adapt(
    data: NluData,
    out_dir: Path,
    *,
    epochs: int = 3,
    batch_size: int = 32,
    lr: float = 5e-5,
    mask_prob: float = 0.15,
    max_seq_len: int = 40,
    seed: int = 13,
    threads: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the base encoder as a masked LM on ``data``'s training text; save it to ``out_dir``.

    ``out_dir`` gets a Hugging Face BERT folder (``config.json``, ``model.safetensors``), the
    base model's tokenizer files unchanged, and ``adapted.json`` (the settings, the dev split,
    the final loss). Masking: each word is picked with ``mask_prob`` (at least one per
    utterance); a picked word's sub-tokens become ``[MASK]`` 80 % of the time, a random token
    10 %, themselves 10 % (BERT's recipe). The loss is computed on the picked sub-tokens only,
    so the 30k-way output layer runs on ~15 % of the positions.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from tqdm import tqdm
    from transformers import BertModel

    from training.nlu.common import base_model_dir, load_tokenizer, warmup_linear_schedule

    if epochs < 1:
        raise ValueError("adapt needs at least one epoch")
    if not 0.0 < mask_prob < 1.0:
        raise ValueError(f"mask_prob must be between 0 and 1, got {mask_prob}")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    base = base_model_dir()
    tokenizer = load_tokenizer(base, max_seq_len)
    mask_id = tokenizer.token_to_id("[MASK]")
    vocab = tokenizer.get_vocab_size()
    special = {tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]")}
    texts = training_texts(data)

    bert = BertModel.from_pretrained(str(base), add_pooling_layer=False)
    hidden = bert.config.hidden_size

    class MlmHead(torch.nn.Module):
        """BERT's prediction head (transform + LayerNorm + decoder tied to the word embeddings)."""

        def __init__(self) -> None:
            super().__init__()
            self.transform = torch.nn.Linear(hidden, hidden)
            self.norm = torch.nn.LayerNorm(hidden, eps=bert.config.layer_norm_eps)
            self.bias = torch.nn.Parameter(torch.zeros(vocab))

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            h = self.norm(torch.nn.functional.gelu(self.transform(h)))
            return h @ bert.embeddings.word_embeddings.weight.T + self.bias

    head = MlmHead()

    def masked(words: tuple[str, ...]) -> tuple[list[int], list[int]]:
        enc = tokenizer.encode(list(words), is_pretokenized=True)
        word_ids = enc.word_ids
        present = sorted({w for w in word_ids if w is not None})
        picked = {w for w in present if rng.random() < mask_prob} or {rng.choice(present)}
        ids, targets = list(enc.ids), [-100] * len(enc.ids)
        for k, (tok, w) in enumerate(zip(enc.ids, word_ids, strict=True)):
            if w in picked and tok not in special:
                targets[k] = tok
                r = rng.random()
                if r < 0.8:
                    ids[k] = mask_id
                elif r < 0.9:
                    ids[k] = rng.randrange(vocab)
        return ids, targets

    def batches() -> Any:
        order = list(range(len(texts)))
        rng.shuffle(order)
        for i in range(0, len(order), batch_size):
            enc = [masked(texts[j]) for j in order[i : i + batch_size]]
            width = max(len(ids) for ids, _ in enc)
            ids = torch.zeros((len(enc), width), dtype=torch.long)
            att = torch.zeros((len(enc), width), dtype=torch.long)
            tgt = torch.full((len(enc), width), -100, dtype=torch.long)
            for k, (t, g) in enumerate(enc):
                ids[k, : len(t)] = torch.tensor(t)
                att[k, : len(t)] = 1
                tgt[k, : len(g)] = torch.tensor(g)
            yield ids, att, tgt

    params = list(bert.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = epochs * ((len(texts) + batch_size - 1) // batch_size)
    sched = warmup_linear_schedule(opt, steps)
    t0 = time.monotonic()
    bar = tqdm(total=steps, desc="adapt nlu base", disable=not progress, mininterval=5.0)
    recent: list[float] = []
    bert.train()
    for _epoch in range(epochs):
        for ids, att, tgt in batches():
            h = bert(input_ids=ids, attention_mask=att).last_hidden_state
            sel = tgt != -100
            if not bool(sel.any()):  # every picked word was [UNK]: nothing to predict in this batch
                bar.update(1)
                sched.step()
                continue
            loss = torch.nn.functional.cross_entropy(head(h[sel]), tgt[sel])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            recent = (recent + [loss.item()])[-100:]
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    bert.save_pretrained(str(out_dir))
    for name in _TOKENIZER_FILES:
        if (base / name).is_file():
            shutil.copyfile(base / name, out_dir / name)
    meta = {
        "base_model": str(base),
        # The split whose dev utterances this text excludes: a model for another split would
        # start from an encoder that has read that split's dev utterances.
        "dev_split": data.dev_split,
        "texts": len(texts),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "mask_prob": mask_prob,
        "seed": seed,
        "steps": steps,
        "final_loss": round(sum(recent) / max(1, len(recent)), 4),
        "seconds": round(time.monotonic() - t0, 1),
    }
    (out_dir / ADAPTED_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta
