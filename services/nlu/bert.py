"""The shipped NLU: JointBERT (MiniLM-L6) as INT8 ONNX, run with onnxruntime + tokenizers.

No torch at run time. The model folder (``<models_dir>/nlu/1``) holds
``model.onnx``, ``tokenizer.json``, ``labels.json`` and ``manifest.sha256``;
every file listed in the manifest is checked when the model loads, so a
truncated download or a hand-edited label file is caught at start-up, not as a
wrong answer later.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelFileError
from core.text import words as split_words
from core.types import OUT_OF_SCOPE, NluHints, NluResult, SlotValue
from domains import Domain
from domains.normalize import normalize_slot
from services.model_files import sha256_file
from services.nlu.base import NluBackend

MANIFEST = "manifest.sha256"
REQUIRED = ("model.onnx", "tokenizer.json", "labels.json")


ADD_ON_WORDS = frozenset({"with", "and", "plus", "also", "please"})
"""Words that join more values to the request under way; with nothing but slot values around them,
an utterance is an answer to the open frame (see :meth:`JointBertNlu._decode`)."""


def verify_manifest(folder: Path) -> None:
    """Check every file listed in ``manifest.sha256`` (``sha256sum`` format).

    Raises:
        ModelFileError: a file is missing, not listed, or its sha256 differs.
    """
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise ModelFileError(f"{manifest}: missing (the NLU model folder needs a sha256 manifest)")
    listed: dict[str, str] = {}
    for n, line in enumerate(manifest.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ModelFileError(f"{manifest}:{n}: malformed line (expected '<sha256>  <file>')")
        listed[parts[1].lstrip("*")] = parts[0].lower()
    for name in REQUIRED:
        if name not in listed:
            raise ModelFileError(f"{manifest}: {name} is not listed")
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            raise ModelFileError(f"{path}: missing (listed in {MANIFEST})")
        actual = sha256_file(path)
        if actual != digest:
            raise ModelFileError(f"{path}: sha256 mismatch (expected {digest[:12]}…, got {actual[:12]}…)")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class JointBertNlu(NluBackend):
    """Intent + BIO slots from one ONNX forward pass.

    An utterance is rejected as ``out_of_scope`` when the model says so or when
    the top intent's probability is below ``threshold``. Slots that the
    predicted intent's domain does not declare are dropped. With
    :class:`NluHints`, the active intent gets a small logit bonus
    (``hint_bonus``); and when another intent wins with probability < 0.9 but the
    words are known values of the active intent's slots (expected slot first), the
    answer stays in the current frame ("large" after "what size?").

    Args:
        model_dir: folder with model.onnx, tokenizer.json, labels.json, manifest.sha256.
        domains: the domains the model serves: their slot lists filter each intent's slots, and
            their slot values keep a one-word answer in the active frame. The caller loads them
            (:func:`services.nlu.load_nlu`), so a broken domain file is reported where it is read.
        threads: onnxruntime intra-op threads (1 = the latency budget's assumption).
        threshold: minimum intent probability; below it the result is out_of_scope.
    """

    name = "bert"

    def __init__(
        self, model_dir: str | Path, domains: Sequence[Domain], threads: int = 1, threshold: float = 0.5,
        hint_bonus: float = 1.0,
        transition_weight: float | None = None, joint_decoding: bool | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_dir = Path(model_dir)
        verify_manifest(self.model_dir)
        try:
            meta = json.loads((self.model_dir / "labels.json").read_text())
            self.intents: list[str] = list(meta["intents"])
            self.slot_labels: list[str] = list(meta["slot_labels"])
            self.slot_kinds: dict[str, str] = dict(meta.get("slot_kinds", {}))
            self.max_seq_len = int(meta.get("max_seq_len", 48))
        except (ValueError, KeyError) as exc:
            raise ModelFileError(f"{self.model_dir / 'labels.json'}: unreadable ({exc})") from exc
        self.meta = meta
        # Constrained Viterbi decoding of the BIO tags (see training.nlu.train.label_statistics).
        self._start = np.asarray(meta["start_logprob"], dtype=np.float64) if "start_logprob" in meta else None
        self._trans = np.asarray(meta["transition_logprob"], dtype=np.float64) if "transition_logprob" in meta else None
        if transition_weight is None:
            # A CRF-trained model ships learned transition scores: use them as they are.
            transition_weight = 1.0 if meta.get("decoding") == "crf" else 0.0
        if self._trans is not None and self._start is not None:
            # Keep only the hard constraints (O -> I-x and B-x -> I-y are impossible) unless a
            # weight is given: the HMM-style product over-penalized rare but valid moves on dev.
            self._start = np.where(self._start <= -1e3, -1e4, self._start * transition_weight)
            self._trans = np.where(self._trans <= -1e3, -1e4, self._trans * transition_weight)
        self._intent_slots: dict[str, set[str]] = {k: set(v) for k, v in meta.get("intent_slots", {}).items()}
        self._subsets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.threshold = threshold
        self.hint_bonus = hint_bonus
        # Joint MAP decoding of intent and slots (see _joint_intent); the model's labels.json
        # says whether it is the default for that model.
        self.joint_decoding = bool(meta.get("joint_decoding", False)) if joint_decoding is None else joint_decoding
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(self.model_dir / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelFileError(f"{self.model_dir / 'model.onnx'}: cannot load ({exc})") from exc
        self.tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_seq_len)
        self._allowed: dict[str, set[str]] = {}
        self._slot_defs: dict[str, Any] = {}
        for d in domains:
            for intent in d.intents:
                self._allowed[intent] = set(d.slots)
            for s in d.slots.values():
                self._slot_defs.setdefault(s.name, s)

    # ------------------------------------------------------------------ inference

    def parse(self, text: str, hints: NluHints | None = None) -> NluResult:
        return self.parse_batch([text], hints)[0]

    def parse_batch(self, texts: Sequence[str], hints: NluHints | None = None) -> list[NluResult]:
        """Parse several utterances in one forward pass (padding to the longest)."""
        all_words = [split_words(t) for t in texts]
        results: list[NluResult | None] = [None] * len(texts)
        todo = [i for i, w in enumerate(all_words) if w]
        for i, w in enumerate(all_words):
            if not w:
                results[i] = NluResult(OUT_OF_SCOPE, 1.0, ())
        if todo:
            encs = [self.tokenizer.encode(all_words[i], is_pretokenized=True) for i in todo]
            width = max(len(e.ids) for e in encs)
            ids = np.zeros((len(encs), width), dtype=np.int64)
            mask = np.zeros((len(encs), width), dtype=np.int64)
            for k, e in enumerate(encs):
                ids[k, : len(e.ids)] = e.ids
                mask[k, : len(e.ids)] = 1
            intent_logits, slot_logits = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            for k, i in enumerate(todo):
                results[i] = self._decode(all_words[i], encs[k].word_ids, intent_logits[k], slot_logits[k], hints)
        return [r for r in results if r is not None]

    def _decode(
        self, words: list[str], word_ids: list[int | None], intent_logits: np.ndarray, slot_logits: np.ndarray,
        hints: NluHints | None,
    ) -> NluResult:
        logits = intent_logits.astype(np.float64)
        if hints is not None and hints.active_intent in self.intents:
            logits[self.intents.index(hints.active_intent)] += self.hint_bonus
        probs = _softmax(logits)
        top = int(probs.argmax())
        intent, conf = self.intents[top], float(probs[top])
        unsure = conf < 0.9
        if hints is not None and hints.active_intent and intent != hints.active_intent and (unsure or hints.expected_slot):
            # A short answer inside an open frame ("large" after "what size?"): trust the
            # frame when the words are known values of its slots and the model is unsure,
            # or, whatever the model's confidence, when the dialog asked for a slot and
            # the answer is nothing but slot values: a model trained longer is sure that
            # a lone "large" means SetDeviceLevel, which no open question supports. Words that
            # join an add-on to the open request ("with whole milk and sweetener", said after a
            # pause in the middle of an order) do not make it another request.
            answer = self._frame_answer(words, hints)
            covered = {k for v in answer for k in range(v.start, v.end)}
            only_values = bool(hints.expected_slot) and all(
                k in covered or w in ADD_ON_WORDS for k, w in enumerate(words))
            if answer and (unsure or only_values):
                return NluResult(hints.active_intent, max(conf, 0.5), tuple(answer))
        if intent == OUT_OF_SCOPE or conf < self.threshold:
            oos = float(probs[self.intents.index(OUT_OF_SCOPE)]) if OUT_OF_SCOPE in self.intents else 0.0
            return NluResult(OUT_OF_SCOPE, max(oos, 1.0 - conf) if intent != OUT_OF_SCOPE else conf, ())
        # One score row per word, from its first sub-token (words cut by truncation get O).
        rows: list[int] = []
        prev = None
        for pos, wid in enumerate(word_ids):
            if wid is not None and wid != prev:
                rows.append(pos)
            prev = wid if wid is not None else prev
        emissions = slot_logits[rows]
        if self.joint_decoding and self._trans is not None and self._start is not None and len(emissions):
            intent, tags = self._joint_intent(probs, emissions)
            conf = float(probs[self.intents.index(intent)])
        else:
            tags = self._tags(emissions, intent)
        tags += ["O"] * (len(words) - len(rows))
        return NluResult(intent, conf, tuple(self._spans(words, tags, intent)))

    def _joint_intent(self, probs: np.ndarray, emissions: np.ndarray, candidates: int = 3) -> tuple[str, list[str]]:
        """The intent and tags that maximize log p(intent) + the CRF score of the tags, among
        the ``candidates`` most probable in-scope intents, each with its own allowed slots.

        Why: the two heads are trained as factors of one model, but decoding them one after the
        other lets the intent head alone pick the slot vocabulary. "find now and forever" is
        SearchScreeningEvent or SearchCreativeWork by a hair; the tagger may be surer that "now and
        forever" is a ``movie_name`` than an ``object_name``. The CRF's partition function is the
        same for every intent (it sums over all tag sequences), so comparing path scores across
        intents is comparing log-probabilities.
        """
        order = [int(i) for i in np.argsort(-probs) if self.intents[int(i)] != OUT_OF_SCOPE][:candidates]
        best: tuple[float, str, list[str]] | None = None
        for i in order:
            intent = self.intents[i]
            tags, path = self._viterbi(emissions, intent)
            score = float(np.log(max(float(probs[i]), 1e-12))) + path
            if best is None or score > best[0]:
                best = (score, intent, tags)
        assert best is not None
        return best[1], best[2]

    def _tags(self, logits: np.ndarray, intent: str) -> list[str]:
        """BIO tags: argmax, or (when the model ships transition scores) constrained Viterbi
        over the tagger's scores + transition scores, restricted to the slots seen with
        ``intent`` in training.

        The emissions are the raw logits: a per-word log-softmax would subtract the same
        constant from every path's score, so the best path is the same without it.
        """
        if len(logits) == 0:
            return []
        if self._trans is None or self._start is None:
            return [self.slot_labels[int(i)] for i in logits.argmax(axis=-1)]
        return self._viterbi(logits, intent)[0]

    def _viterbi(self, logits: np.ndarray, intent: str) -> tuple[list[str], float]:
        """Constrained Viterbi for ``intent``: the best tags and their path score."""
        keep, start, trans = self._label_subset(intent)
        emit = logits[:, keep].astype(np.float64)
        cols = np.arange(len(keep))
        score = start + emit[0]
        back = np.zeros((len(emit), len(keep)), dtype=np.int64)
        for t in range(1, len(emit)):
            cand = score[:, None] + trans  # [from, to]
            back[t] = arg = cand.argmax(axis=0)
            score = cand[arg, cols] + emit[t]
        best = [int(score.argmax())]
        total = float(score[best[0]])
        for t in range(len(emit) - 1, 0, -1):
            best.append(int(back[t][best[-1]]))
        return [self.slot_labels[int(keep[i])] for i in reversed(best)], total

    def _label_subset(self, intent: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Label indices allowed for ``intent`` (O + its slots) and the matching scores (cached)."""
        cached = self._subsets.get(intent)
        if cached is None:
            allowed = self._intent_slots.get(intent)
            keep = np.array(
                [i for i, lab in enumerate(self.slot_labels) if lab == "O" or allowed is None or lab[2:] in allowed]
            )
            assert self._start is not None and self._trans is not None  # for mypy: checked by the caller
            cached = (keep, self._start[keep], self._trans[np.ix_(keep, keep)])
            self._subsets[intent] = cached
        return cached

    def _frame_answer(self, words: list[str], hints: NluHints) -> list[SlotValue]:
        """Known slot values of the hinted intent's domain found in ``words`` (expected slot first)."""
        names = sorted(self._allowed.get(hints.active_intent or "", set()), key=lambda n: n != hints.expected_slot)
        taken = [False] * len(words)
        out: list[SlotValue] = []
        for name in names:
            slot_def = self._slot_defs.get(name)
            if slot_def is None:
                continue
            for phrase in sorted(slot_def.phrases(), key=lambda p: -len(p.split())):
                pw = phrase.split()
                for i in range(len(words) - len(pw) + 1):
                    if words[i : i + len(pw)] == pw and not any(taken[i : i + len(pw)]):
                        taken[i : i + len(pw)] = [True] * len(pw)
                        out.append(SlotValue(name, phrase, self.normalize(name, phrase), i, i + len(pw)))
                        break
        return sorted(out, key=lambda v: v.start)

    def _spans(self, words: list[str], tags: list[str], intent: str) -> list[SlotValue]:
        allowed = self._allowed.get(intent)
        spans: list[tuple[str, int, int]] = []
        for i, tag in enumerate(tags):
            if tag == "O":
                continue
            prefix, slot = tag.split("-", 1)
            # conlleval style: an I- that does not continue the same slot starts a new span
            if prefix == "I" and spans and spans[-1][0] == slot and spans[-1][2] == i:
                spans[-1] = (slot, spans[-1][1], i + 1)
            else:
                spans.append((slot, i, i + 1))
        out = []
        for slot, start, end in spans:
            if allowed is not None and slot not in allowed:
                continue
            value = " ".join(words[start:end])
            out.append(SlotValue(slot, value, self.normalize(slot, value), start, end))
        return out

    def normalize(self, slot: str, value: str) -> str:
        kind = self.slot_kinds.get(slot)
        slot_def = self._slot_defs.get(slot)
        if kind in ("number", "time", "duration", "date"):
            out = normalize_slot(slot, value, kind)
            if out != value or slot_def is None:
                return out
        if slot_def is not None:
            canon = slot_def.canonical(value)
            if canon is None:
                canon = slot_def.closest(value)  # a misheard known value ("dark rose" -> "dark roast")
            if canon is not None:
                return str(canon)
        return normalize_slot(slot, value, kind)
