"""``quickturn eval``: inputs, metrics, resumable results, bad input, and the report in a real browser."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from assistant.evaluation.manifest import read_input
from assistant.evaluation.results import ResultWriter, compact, read_results
from assistant.evaluation.scoring import disfluency_labels, file_scores, prf, summarize
from assistant.evaluation.word_clips import split_of
from core.errors import InvalidInput
from core.settings import REPO_ROOT

QUICKTURN = REPO_ROOT / ".venv" / "bin" / "quickturn"
ARTIFACTS = REPO_ROOT / "artifacts"
STABLE_KEYS = {"files", "wer", "cer", "intent_accuracy", "slot_f1", "exact_match", "disfluency_f1", "latency_ms",
               "failed"}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update"]


# --------------------------------------------------------------------------- inputs (no models)


def test_jsonl_relative_paths_malformed_lines_and_repeats(tmp_path: Path) -> None:
    m = tmp_path / "sub" / "m.jsonl"
    m.parent.mkdir()
    m.write_text(
        '{"audio_filepath": "a.wav", "text": "hi", "intent": "Greet"}\n'
        "\n"
        '{"audio_filepath": "a.wav", "text": "hi again"}\n'
        '{"audio_filepath": "/abs/b.wav", "slots": {"x": "y"}}\n'
        '{"text": "no path"}\n'
        '{"audio_filepath": "c.wav", "slots": ["bad"]}\n'
        "not json at all\n"
    )
    items = read_input(m)
    assert [it.key for it in items[:3]] == ["a.wav", "a.wav#2", "/abs/b.wav"]
    assert items[0].audio == m.parent / "a.wav" and items[0].reference["intent"] == "Greet"
    assert items[2].audio == Path("/abs/b.wav")
    errors = [it.error for it in items if it.error]
    assert errors == ["line 5: no audio_filepath", "line 6: slots must be an object (slot -> value)",
                      "line 7: not valid JSON (Expecting value at column 1)"]
    with pytest.raises(InvalidInput):
        read_input(tmp_path / "nope.jsonl")


def test_csv_tsv_and_folder_inputs(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_bytes(b"")
    (tmp_path / "y.wav").write_bytes(b"")
    (tmp_path / "refs.tsv").write_text(
        "file\ttranscript\tintent\tslots\n"
        "x.wav\tturn on the lights\tDeviceOn\tdevice=lights; room=kitchen\n"
        'gone.wav\thello\tGreet\t{"a": "b"}\n'
    )
    items = read_input(tmp_path / "refs.tsv")
    assert items[0].reference == {"text": "turn on the lights", "intent": "DeviceOn",
                                  "slots": {"device": "lights", "room": "kitchen"}}
    assert items[1].reference["slots"] == {"a": "b"}
    # a folder: every audio file, references joined by name, references to absent files kept (→ missing)
    folder_items = {it.key: it for it in read_input(tmp_path)}
    assert set(folder_items) == {"x.wav", "y.wav", "gone.wav"}
    assert folder_items["x.wav"].reference["text"] == "turn on the lights"
    assert folder_items["y.wav"].reference == {}
    # a label file keyed by file name (speech-to-intent benchmarks): no transcripts, odd spacing kept
    labels = tmp_path / "label.json"
    labels.write_text(json.dumps({"x.wav": {"intent": "orderDrink", "slots": {"milkAmount": " soy milk"}},
                                  "y.wav": "not an object"}))
    by_key = {it.key: it for it in read_input(tmp_path, refs=labels)}
    assert by_key["x.wav"].reference == {"intent": "orderDrink", "slots": {"milkAmount": " soy milk"}}
    assert by_key["y.wav"].reference == {}  # its entry is malformed: run without a reference ...
    assert any(it.error and "not a JSON object" in it.error for it in by_key.values())  # ... and reported
    with pytest.raises(InvalidInput, match="keyed by audio file name"):
        (tmp_path / "list.json").write_text("[1, 2]")
        read_input(tmp_path, refs=tmp_path / "list.json")
    with pytest.raises(InvalidInput, match="no such references file"):
        read_input(tmp_path, refs=tmp_path / "absent.json")
    csv = tmp_path / "r.csv"
    csv.write_text("name,text\nx.wav,hi\n")
    with pytest.raises(InvalidInput, match="audio path column"):
        read_input(csv)


# --------------------------------------------------------------------------- metrics (no models)


def test_file_scores_slots_exact_match_and_disfluency() -> None:
    row = {
        "status": "ok",
        "reference": {"text": "set an alarm for uh for seven no sorry eight thirty",
                      "clean_text": "set an alarm for eight thirty", "intent": "SetAlarm",
                      "slots": {"time": "Eight-Thirty"}},
        "transcript": "set an alarm for offer seven no sorry eight thirty",
        "tokens": [[w, w in {"seven", "no", "sorry"}] for w in
                   "set an alarm for offer seven no sorry eight thirty".split()],
        "intent": "SetAlarm",
        "slots": {"time": "eight thirty"},
        "latency_ms": {"asr": 100.0, "total": 250.0},
        "duration_s": 3.0,
    }
    s = file_scores(row)
    assert s["intent_correct"] is True and s["exact_match"] is True  # slot values compared after normalization
    assert (s["slot_tp"], s["slot_fp"], s["slot_fn"]) == (1, 0, 0)
    assert s["wer"] == pytest.approx(2 / 11, abs=1e-3)  # "uh for" → "offer": one substitution, one deletion
    # "offer" replaces the disfluent "uh for": it should have been removed too
    assert (s["disfl_tp"], s["disfl_fp"], s["disfl_fn"]) == (3, 0, 1)
    gold, pred = disfluency_labels([["turn", False], ["um", False], ["on", False]], "turn um on", "turn on")
    assert gold == [False, True, False] and pred == [False, False, False]
    # an ASR substitution of a fluent word is a word to keep; an insertion too
    gold, _ = disfluency_labels([["turn", False], ["of", False], ["the", False], ["lights", False], ["now", False]],
                                "turn on the lights", "turn on the lights")
    assert gold == [False] * 5
    assert prf(0, 0, 0)["f1"] is None and prf(1, 1, 0)["f1"] == pytest.approx(2 / 3, abs=1e-4)

    wrong = {**row, "intent": "SetTimer", "slots": {}}
    summary = summarize([row, wrong, {"key": "z", "status": "failed", "error": "boom"}],
                        [{"key": "z", "error": "boom"}], 3)
    assert STABLE_KEYS <= set(summary)
    assert summary["intent_accuracy"] == 0.5 and summary["exact_match"] == 0.5
    assert summary["slot_f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["failed"] == [{"file": "z", "error": "boom"}]
    assert set(summary["latency_ms"]["total"]) >= {"p50", "p95", "max"}
    no_clean = summarize([{**row, "reference": {"text": row["reference"]["text"]}}], [], 1)
    assert no_clean["disfluency_f1"] is None and no_clean["intent_accuracy"] is None


def test_results_file_ignores_a_cut_line_and_compacts(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    with ResultWriter(path) as w:
        w.write({"key": "a", "status": "failed", "error": "x"})
        w.write({"key": "a", "status": "ok"})
        w.write({"key": "b", "status": "ok"})
    with path.open("a") as f:
        f.write('{"key": "c", "stat')  # killed mid-write
    rows, bad = read_results(path)
    assert set(rows) == {"a", "b"} and rows["a"]["status"] == "ok" and bad == 1
    compact(path, list(rows.values()))
    assert len(path.read_text().splitlines()) == 2


# --------------------------------------------------------------------------- end to end (models, subprocess)


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny manifest: 4 generated utterances (one disfluent, one out of scope), a missing file,
    a corrupt file and a malformed line."""
    from assistant.commands.setup import utterance_manifest

    demo = utterance_manifest()
    rows = [json.loads(x) for x in demo.read_text().splitlines()]
    wanted = ["what's the weather like in paris tomorrow", "set an alarm for uh for seven no sorry eight thirty",
              "who won the football game last night", "turn on the kitchen lights"]
    picked = [next(r for r in rows if r["text"] == t and r["voice"] == "piper-joe") for t in wanted]
    d = tmp_path_factory.mktemp("eval")
    (d / "audio").mkdir()
    lines = []
    for i, r in enumerate(picked):
        shutil.copy(demo.parent / r["audio_filepath"], d / "audio" / f"{i}.wav")
        lines.append(json.dumps({**r, "audio_filepath": f"audio/{i}.wav"}))
    (d / "audio" / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(200))
    lines.insert(1, json.dumps({"audio_filepath": "audio/missing.wav", "text": "hello", "intent": "Greet"}))
    lines.insert(3, json.dumps({"audio_filepath": "audio/corrupt.wav", "text": "hello"}))
    lines.append('{"audio_filepath": "audio/9.wav", "text": "cut short')
    (d / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return d


def _ok_keys(results: Path) -> list[str]:
    if not results.is_file():
        return []
    out = []
    for line in results.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("status") == "ok":
            out.append(row["key"])
    return out


@pytest.fixture(scope="module")
def resumed_run(eval_dir: Path) -> dict[str, object]:
    """Kill a run after its first finished file (SIGKILL: no clean-up), then rerun to completion."""
    out = eval_dir / "out"
    cmd = [str(QUICKTURN), "eval", str(eval_dir / "manifest.jsonl"), "--out", str(out), "--fast"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None and not _ok_keys(out / "results.jsonl"):
        time.sleep(0.05)
    killed = first.poll() is None
    if killed:
        first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    before = _ok_keys(out / "results.jsonl")
    rows_before = {json.loads(x)["key"]: json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()
                   if x.strip().endswith("}")}
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    return {"out": out, "killed": killed, "before": before, "rows_before": rows_before, "second": second}


def test_slot_values_are_scored_as_normalized() -> None:
    """A misheard categorical value that normalizes to the meant one counts by value, not as heard."""
    from assistant.evaluation.worker import _normalized_reference
    from core.settings import Settings
    from services.nlu import load_nlu

    nlu = load_nlu(Settings())
    if not hasattr(nlu, "normalize"):
        pytest.skip("needs the BERT NLU's normalizer")
    reference = {"text": "a dark roast latte", "intent": "orderDrink",
                 "slots": {"roast": "dark roast", "coffeeDrink": "latte"}}
    row = {"status": "ok", "reference": reference, "transcript": "a dark rose latte", "intent": "orderDrink",
           "slots": {"roast": "dark rose", "coffeeDrink": "latte"},
           "slot_values": {"roast": nlu.normalize("roast", "dark rose"), "coffeeDrink": "latte"},
           "reference_slot_values": _normalized_reference(nlu, reference)}
    s = file_scores(row)
    assert s["exact_match"] is False and (s["slot_tp"], s["slot_fn"]) == (1, 1)
    assert s["exact_match_values"] is True and (s["value_tp"], s["value_fp"], s["value_fn"]) == (2, 0, 0)
    summary = summarize([row, {**row, "slot_values": {"coffeeDrink": "mocha"}}], [], 2)
    assert summary["exact_match_values"] == 0.5 and summary["counts"]["with_slot_values"] == 2
    assert summarize([{k: v for k, v in row.items() if k != "slot_values"}], [], 1)["slot_value_f1"] is None


def test_a_request_split_into_turns_is_scored_as_one() -> None:
    """ "a large latte ... with soy milk" ended at the pause: the file's slots are both turns'."""
    from assistant.evaluation.worker import _file_understanding
    from core.events import NluResultEvent
    from core.types import NluResult, SlotValue

    def ev(turn: str, intent: str, *slots: tuple[str, str, str]) -> NluResultEvent:
        return NluResultEvent(session_id="s", turn_id=turn, stage="nlu", result=NluResult(
            intent, 0.9, tuple(SlotValue(a, b, c, 0, 1) for a, b, c in slots)))

    split = [ev("t1", "orderDrink", ("size", "large", "large"), ("coffeeDrink", "latte", "latte")),
             ev("t2", "out_of_scope"),
             ev("t3", "orderDrink", ("milkAmount", "with soy milk", "soy milk"), ("size", "largest", "large"))]
    intent, slots, values, turns = _file_understanding(split)
    assert intent == "orderDrink" and turns == ["orderDrink", "out_of_scope", "orderDrink"]
    assert slots == {"size": "largest", "coffeeDrink": "latte", "milkAmount": "with soy milk"}
    assert values == {"size": "large", "coffeeDrink": "latte", "milkAmount": "soy milk"}
    # another request starts over; nothing in scope at all is out_of_scope; no speech is no intent
    assert _file_understanding([*split, ev("t4", "GetTime")])[:2] == ("GetTime", {})
    assert _file_understanding([ev("t1", "out_of_scope")])[0] == "out_of_scope"
    assert _file_understanding([]) == (None, {}, {}, [])


def test_the_dialog_score_counts_only_what_the_dialog_joined_to_the_task() -> None:
    """ "a large latte" (placed) ... "with soy milk": merged parses say both, but only a dialog that
    added the milk to the order holds it; a meta reply or a "didn't understand" changes nothing."""
    from assistant.evaluation.scoring import file_scores
    from assistant.evaluation.worker import _dialog_understanding
    from core.events import DialogAction

    def act(turn: str, action: str, intent: str | None, **frame: str) -> DialogAction:
        return DialogAction(session_id="s", turn_id=turn, stage="dialog", text="", phrases=(), action=action,
                            intent=intent, frame=frame if intent is not None else None)

    placed = act("t1", "done", "orderDrink", coffeeDrink="latte", size="large")
    started_over = [placed, act("t2", "ask_slot", "orderDrink", milkAmount="soy milk")]
    joined = [placed, act("t2", "done", "orderDrink", coffeeDrink="latte", size="large", milkAmount="soy milk")]
    assert _dialog_understanding(started_over, None) == ("orderDrink", {"milkAmount": "soy milk"})
    assert _dialog_understanding(joined, None)[1] == {"coffeeDrink": "latte", "size": "large", "milkAmount": "soy milk"}
    assert _dialog_understanding([*joined, act("t3", "fallback", "out_of_scope")], None) == _dialog_understanding(joined, None)
    assert _dialog_understanding([act("t1", "fallback", "out_of_scope")], None) == ("out_of_scope", {})
    assert _dialog_understanding([act("t1", "done", None)], None) == (None, None)  # a backend that does not say
    reference = {"intent": "orderDrink", "slots": {"coffeeDrink": "latte", "size": "large", "milkAmount": "soy milk"}}
    row = {"reference": reference, "intent": "orderDrink", "slots": reference["slots"], "transcript": "",
           "slot_values": reference["slots"], "reference_slot_values": reference["slots"]}
    for events, right in ((started_over, False), (joined, True)):
        intent, values = _dialog_understanding(events, None)
        s = file_scores({**row, "dialog_intent": intent, "dialog_slot_values": values})
        assert s["exact_match_values"] is True and s["exact_match_dialog"] is right


def test_interrupted_run_resumes_without_duplicates(resumed_run: dict[str, object]) -> None:
    out: Path = resumed_run["out"]  # type: ignore[assignment]
    second: subprocess.CompletedProcess[str] = resumed_run["second"]  # type: ignore[assignment]
    assert resumed_run["killed"], "the first run finished before it could be interrupted"
    before: list[str] = resumed_run["before"]  # type: ignore[assignment]
    assert 1 <= len(before) < 4
    assert "already done" in second.stderr
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    keys = [r["key"] for r in lines]
    assert len(keys) == len(set(keys)), "a file appears twice in results.jsonl"
    ok = [r for r in lines if r["status"] == "ok"]
    assert sorted(r["key"] for r in ok) == [f"audio/{i}.wav" for i in range(4)]
    for key in before:  # the first run's rows were kept, not recomputed
        row = next(r for r in ok if r["key"] == key)
        assert row["started_at"] == resumed_run["rows_before"][key]["started_at"]  # type: ignore[index]


def test_summary_failures_and_exit_code(resumed_run: dict[str, object]) -> None:
    out: Path = resumed_run["out"]  # type: ignore[assignment]
    second: subprocess.CompletedProcess[str] = resumed_run["second"]  # type: ignore[assignment]
    assert second.returncode == 3, second.stderr[-2000:]  # 3 = finished, some files failed
    assert "Traceback" not in second.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert STABLE_KEYS <= set(summary)
    assert summary["files"] == 7 and summary["files_ok"] == 4
    for key in ("wer", "cer", "intent_accuracy", "slot_f1", "exact_match", "disfluency_f1"):
        assert isinstance(summary[key], float) and 0.0 <= summary[key] <= 1.5, key
    assert summary["wer"] < 0.6  # synthetic speech: most words right (not an accuracy target)
    for stage in ("asr", "nlu", "dialog", "total"):
        assert {"p50", "p95", "max"} <= set(summary["latency_ms"][stage])
    reasons = {f["file"]: f["error"] for f in summary["failed"]}
    assert "no such file" in reasons["audio/missing.wav"]
    assert "audio" in reasons["audio/corrupt.wav"] and "corrupt.wav" in reasons["audio/corrupt.wav"]
    malformed = [v for k, v in reasons.items() if "malformed" in k]
    assert malformed and malformed[0].startswith("line 7: not valid JSON")
    assert summary["realtime_factor"] and summary["realtime_factor"] > 0
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "<audio" in page and "missing.wav" in page


def test_report_renders_in_headless_chromium(resumed_run: dict[str, object]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("no /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    out: Path = resumed_run["out"]  # type: ignore[assignment]
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto((out / "report.html").as_uri())
            page.wait_for_load_state("load")
            assert page.locator("#metric-wer .value").is_visible()
            assert page.locator("#metric-wer .value").inner_text().endswith("%")
            assert page.locator("#headline .metric").count() >= 8
            widths = page.evaluate("[...document.images].map(i => i.complete ? i.naturalWidth : 0)")
            assert len(widths) == 3 and all(w > 0 for w in widths), widths
            assert page.locator("#confusion table td").count() > 0
            assert page.locator("#worst audio").count() >= 1
            assert page.locator("#failed tr").count() == 4  # header + 3 failures
            # the layout is laid out, not collapsed: headline cards side by side
            boxes = [page.locator("#headline .metric").nth(i).bounding_box() for i in range(2)]
            assert boxes[0] and boxes[1] and boxes[0]["y"] == boxes[1]["y"] and boxes[1]["x"] > boxes[0]["x"]
            page.screenshot(path=str(ARTIFACTS / "eval_report.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "eval_report.png").stat().st_size > 50_000


def test_two_worker_processes_fast(eval_dir: Path, resumed_run: dict[str, object]) -> None:
    """--workers 2: files run in worker processes (not the parent), results and failures as with one."""
    out = eval_dir / "out2"
    proc = subprocess.Popen([str(QUICKTURN), "eval", str(eval_dir / "manifest.jsonl"), "--out", str(out), "--fast",
                             "--workers", "2", "--json", "-q", "--no-report"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 3, stderr[-2000:]
    summary = json.loads(stdout)
    assert summary["files_ok"] == 4 and len(summary["failed"]) == 3 and summary["run"]["workers"] == 2
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    pids = {r["worker"] for r in rows if r["status"] == "ok"}
    assert pids and proc.pid not in pids
    assert not (out / "report.html").exists()


def test_setup_domain_samples_a_domain_into_an_eval_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`quickturn setup --domain coffee` writes speech + references that `quickturn eval` reads."""
    import soundfile as sf

    from assistant.cli import main

    monkeypatch.setenv("QUICKTURN_DATA_DIR", str(tmp_path))
    assert main(["setup", "--domain", "coffee", "--samples", "2"]) == 0
    manifest = tmp_path / "domain-coffee" / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(rows) == 4 and {r["voice"] for r in rows} == {"piper-joe", "espeak-us"}
    for row in rows:
        assert row["intent"] == "orderDrink" and row["slots"]
        assert all(value in row["text"] for value in row["slots"].values())
        info = sf.info(manifest.parent / row["audio_filepath"])
        assert info.samplerate == 16000 and info.duration > 1.0
    items = read_input(manifest)
    assert [i.reference["text"] for i in items] == [r["text"] for r in rows] and all(i.error is None for i in items)
    assert main(["setup", "--domain", "nosuch"]) == 1
    # the held-out recordings come as a folder of audio plus a label file keyed by file name,
    # intent and slots only (Picovoice's speech-to-intent benchmark layout)
    folder = manifest.parent / "piper-joe"
    labels = tmp_path / "label.json"
    labels.write_text(json.dumps({Path(r["audio_filepath"]).name: {"intent": r["intent"], "slots": r["slots"]}
                                  for r in rows if r["voice"] == "piper-joe"}))
    out = tmp_path / "eval-labels"
    assert main(["eval", str(folder), "--refs", str(labels), "--fast", "--no-report", "--out", str(out), "-q"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files_ok"] == 2 and summary["counts"]["with_intent"] == 2 and summary["wer"] is None
    assert summary["intent_accuracy"] is not None and summary["slot_value_f1"] is not None
    # --part keeps one half of the files, by a hash of the file name: the halves partition them
    names = {}
    for part in ("tune", "report"):
        part_out = tmp_path / f"eval-{part}"
        code = main(["eval", str(folder), "--refs", str(labels), "--fast", "--no-report", "--out", str(part_out), "-q",
                     "--part", part, "--nlu", "keywords"])
        lines = (part_out / "results.jsonl").read_text().splitlines() if (part_out / "results.jsonl").exists() else []
        names[part] = {Path(json.loads(line)["audio_filepath"]).name for line in lines}
        assert code == (0 if names[part] else 2)  # an empty half is "nothing to evaluate"
        assert all(split_of(n) == part for n in names[part])
    assert names["tune"] | names["report"] == {Path(r["audio_filepath"]).name for r in rows if r["voice"] == "piper-joe"}
