"""The turn-taking clip set and ``quickturn bench turns``: clip builder, splits, scoring, one real run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from assistant.commands.bench_turns import (
    ClipLog,
    LoggedMessage,
    bench_turns_main,
    ratios,
    score_clip,
    summarize,
)
from assistant.evaluation.turn_clips import (
    ESPEAK_VOICES,
    FILLERS,
    HESITATION_AFTER,
    LEAD_S,
    RATE_HZ,
    Request,
    Synthesizer,
    TurnClip,
    build_clip,
    complete_plan,
    filled_plan,
    hesitation_plan,
    plan_clips,
    select_clips,
    speech_end_from_words,
    split_of,
    trim_silence,
    write_clips,
)

VOICE = ESPEAK_VOICES[0]  # espeak-ng: fast and always installed
REQUESTS = [
    Request("timers", "set a timer for ten minutes"),
    Request("smart_home", "turn off the bedroom lights"),
    Request("coffee", "i'd like a large latte"),
]


def _read(path: str) -> np.ndarray:
    data, rate = sf.read(path, dtype="int16")
    assert rate == RATE_HZ
    return np.asarray(data)


def _rms_db(x: np.ndarray) -> float:
    v = x.astype(np.float64) / 32768.0
    return float(20 * np.log10(np.sqrt(np.mean(v**2)) + 1e-12))


# --------------------------------------------------------------------------- builder


def test_pauses_are_exact_silence_where_stated_and_true_end_is_the_last_speech(tmp_path: Path) -> None:
    synth = Synthesizer()
    plans = [p for r in REQUESTS for p in (complete_plan(r, VOICE), hesitation_plan(r, VOICE), filled_plan(r, VOICE))]
    assert all(p is not None for p in plans)
    for plan in plans:
        assert plan is not None
        clip = build_clip(plan, synth, tmp_path)
        pcm = _read(str(tmp_path / clip.audio))
        lead = round(LEAD_S * RATE_HZ)
        assert not pcm[:lead].any(), "0.3 s of digital silence first"
        assert _rms_db(pcm[lead : lead + 160]) > -65, "speech right after the lead-in (leading silence trimmed)"
        # The clip ends with the speech: true end = last sample, and its last 10 ms are speech.
        end = round(clip.true_end_s * RATE_HZ)
        assert end == len(pcm)
        assert _rms_db(pcm[end - 160 : end]) > -65
        assert clip.request == plan.request and set(clip.request.split()) <= set(clip.text.split())
        if plan.kind == "hesitation":
            assert clip.pauses and all(0.3 <= d <= 1.5 for _, d, _ in clip.pauses)
            assert clip.max_pause_s == max(d for _, d, _ in clip.pauses)
        for start_s, dur_s, after in clip.pauses:
            a, b = round(start_s * RATE_HZ), round((start_s + dur_s) * RATE_HZ)
            assert not pcm[a:b].any(), f"{clip.id}: the pause is not digital silence"
            assert _rms_db(pcm[a - 160 : a]) > -65 and _rms_db(pcm[b : b + 160]) > -65, "speech on both sides"
            assert after in HESITATION_AFTER or after in FILLERS
            # The word named is the last one said before the pause.
            said = clip.text.split()
            assert after in said
        if plan.kind == "filled":
            assert any(f in clip.text.split() for f in FILLERS)
            assert all(d <= 0.25 for _, d, _ in clip.pauses)


def test_trim_cuts_only_quiet_edges() -> None:
    t = np.arange(RATE_HZ // 2) / RATE_HZ
    tone = (0.5 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    noise = (np.random.default_rng(0).standard_normal(1600) * 3).astype(np.int16)  # ~ -80 dBFS
    out = trim_silence(np.concatenate([noise, tone, noise]))
    assert abs(len(out) - len(tone)) <= 160
    assert trim_silence(np.zeros(1600, np.int16)).size == 0


def test_real_recording_end_from_words_refined_by_energy() -> None:
    rng = np.random.default_rng(1)
    pcm = (rng.standard_normal(RATE_HZ * 3) * 10).astype(np.int16)  # noise floor
    speech = (rng.standard_normal(RATE_HZ) * 3000).astype(np.int16)
    pcm[8000:16000] = speech[:8000]  # 0.5-1.0 s
    pcm[24000:32000] = speech[8000:]  # 1.5-2.0 s (a 0.5 s pause)
    pcm[44000:44800] = speech[:800]  # a click at 2.75 s, after the words
    # The ASR's last word ends 0.2 s late and its first starts early: the energy decides where.
    end, pauses = speech_end_from_words(pcm, [(0.45, 0.95, "set"), (1.5, 2.2, "timer")])
    assert end == pytest.approx(2.0, abs=0.011)
    assert pauses == [(pytest.approx(1.0, abs=0.011), pytest.approx(0.5, abs=0.021), "set")]


# --------------------------------------------------------------------------- splits


def test_splits_are_deterministic_disjoint_and_keep_a_sentence_together() -> None:
    plans = plan_clips()
    assert plans == plan_clips(), "same plan every time"
    by_request: dict[str, set[str]] = {}
    for p in plans:
        by_request.setdefault(f"{p.context}|{p.request}", set()).add(p.split)
    assert all(len(s) == 1 for s in by_request.values()), "a sentence's voices and kinds share one split"
    assert len({p.voice.name for p in plans}) >= 4
    tune = {p.id for p in plans if p.split == "tune"}
    report = {p.id for p in plans if p.split == "report"}
    assert tune and report and not tune & report and len(tune | report) == len(plans) == len({p.id for p in plans})
    assert 0.3 < len(report) / len(plans) < 0.7
    assert split_of("x") == split_of("x") and {split_of(str(i)) for i in range(20)} == {"tune", "report"}
    kinds = {p.kind for p in plans}
    assert kinds == {"complete", "hesitation", "filled"}


def _clip(cid: str, kind: str, split: str, true_end_s: float = 2.0, pauses=()) -> TurnClip:  # type: ignore[no-untyped-def]
    return TurnClip(id=cid, kind=kind, text="t", request="t", pauses=list(pauses), true_end_s=true_end_s,
                    voice="v", rate=1.0, split=split, audio="a.wav")


def test_select_spreads_the_limit_over_kinds_per_split() -> None:
    clips = [_clip(f"{k}{i}", k, s) for k in ("complete", "hesitation", "filled") for i in range(10)
             for s in ("tune", "report")]
    picked = select_clips(clips, split="report", limit=6)
    assert len(picked) == 6 and {c.split for c in picked} == {"report"}
    assert sorted(c.kind for c in picked) == ["complete"] * 2 + ["filled"] * 2 + ["hesitation"] * 2
    assert picked == select_clips(clips, split="report", limit=6)
    both = select_clips(clips, split="all", limit=3, kinds=["hesitation"])
    assert len(both) == 6 and {c.kind for c in both} == {"hesitation"}


# --------------------------------------------------------------------------- scoring


T0 = 10_000_000_000  # ns


def _log(messages: list[tuple[float, dict]], *, duration_s: float = 4.0, offset_ms: float = 0.0,  # type: ignore[type-arg]
         context: frozenset[str] = frozenset()) -> ClipLog:
    """Frames sent every 20 ms from T0; messages as (arrival ms after T0, JSON) — audio frames as {"type": "audio"}."""
    frames = [T0 + k * 20_000_000 for k in range(int(duration_s * 50))]
    logged = []
    for t_ms, msg in messages:
        audio = msg.get("type") == "audio"
        m = {**msg, "type": "audio-chunk"} if audio else msg
        logged.append(LoggedMessage(T0 + int(t_ms * 1e6), m, 882 if audio else 0, audio))
    return ClipLog(frame_samples=320, frame_t_ns=frames, offset_ms=offset_ms, messages=logged, context_turns=context)


def _turn(tid: str, start_ms: float, end_ms: float, delay_ms: float, t_end: float, reply_ms: float | None,
          text: str = "set a timer") -> list[tuple[float, dict]]:  # type: ignore[type-arg]
    out: list[tuple[float, dict]] = [  # type: ignore[type-arg]
        (start_ms + 150, {"type": "speech-started", "turn_id": tid, "audio_ms": start_ms}),
        (t_end, {"type": "speech-ended", "turn_id": tid, "audio_ms": end_ms, "endpoint_delay_ms": delay_ms}),
        (t_end + 80, {"type": "transcript-final", "turn_id": tid, "text": text}),
        (t_end + 90, {"type": "nlu-result", "turn_id": tid, "result": {"intent": "SetTimer", "slots": []}}),
        (t_end + 100, {"type": "dialog-action", "turn_id": tid, "text": "For how long?"}),
    ]
    if reply_ms is not None:
        out += [(reply_ms, {"type": "audio", "turn_id": tid}), (reply_ms + 50, {"type": "stage-metrics", "turn_id": tid})]
    return out


def test_score_cut_off_when_the_turn_ends_in_a_pause() -> None:
    clip = _clip("h", "hesitation", "report", true_end_s=2.0, pauses=[(1.0, 0.6, "for")])
    msgs = _turn("a", 300, 1000, 416, 1420, 1900) + _turn("b", 1600, 2050, 416, 2470, 2990)
    row = score_clip(clip, _log(msgs))
    assert row["cut_off"] and row["cut_reasons"] == ["ended-early", "second-turn"]
    assert row["turns"] == 2 and row["ended_ms"] == 1416.0 and row["latency_ms"] is None
    assert row["hold_ms"] == 416.0, "it waited 416 ms of the pause, then ended the turn"
    assert row["transcript"] == "set a timer | set a timer" and row["intent"] == "SetTimer"


def test_score_latency_from_the_frame_holding_the_last_speech_sample() -> None:
    clip = _clip("c", "complete", "report", true_end_s=1.5)
    row = score_clip(clip, _log(_turn("a", 300, 1540, 416, 1960, 2010)))
    # The sample at 1.5 s - 1 sample lies in frame 74, sent at T0 + 1480 ms.
    assert not row["cut_off"] and row["latency_ms"] == pytest.approx(2010 - 1480)
    assert row["reply_audio"] and row["hold_ms"] is None and row["reply"] == "For how long?"


def test_score_waits_through_a_pause_and_a_speech_end_the_vad_put_early() -> None:
    clip = _clip("h", "hesitation", "report", true_end_s=2.4, pauses=[(1.0, 0.9, "the")])
    # The server held through the pause (an incomplete decision at 700 ms of silence) and its VAD
    # put the speech end 150 ms early, but it closed the turn after the true end: not a cut-off.
    msgs = [(1750, {"type": "turn-decision", "turn_id": "a", "decision": "incomplete", "reason": "trailing function word",
                    "silence_ms": 700})] + _turn("a", 300, 2250, 200, 2470, 2600)
    row = score_clip(clip, _log(msgs))
    assert not row["cut_off"] and row["cut_off_by_speech_end"]
    assert row["hold_ms"] == 900.0, "the whole pause was held"
    assert row["decisions"] == [{"decision": "incomplete", "reason": "trailing function word", "silence_ms": 700,
                                 "signals": {}}]
    assert row["latency_ms"] == pytest.approx(2600 - 2380)


def test_score_ignores_the_context_turn_and_shifts_positions() -> None:
    clip = _clip("ans", "complete", "report", true_end_s=0.8)
    context = _turn("ctx", 300, 1500, 416, 1950, 2100, text="i'd like a latte")
    # The clip starts at 5 s of the session's input stream; its speech ends at 5.8 s.
    msgs = [(t - 5000, m) for t, m in context] + _turn("ans", 5300, 5840, 416, 1280, 1400, text="large")
    row = score_clip(clip, _log(msgs, offset_ms=5000.0, context=frozenset({"ctx"})))
    assert row["turns"] == 1 and row["transcript"] == "large" and not row["cut_off"]
    assert row["ended_ms"] == pytest.approx(840 + 416)
    assert row["latency_ms"] == pytest.approx(1400 - 780)


def test_summary_leaves_cut_off_clips_out_of_latency_and_reports_ratios() -> None:
    base = {"kind": "complete", "max_pause_s": 0.0, "cut_off": False, "cut_reasons": [], "cut_off_by_speech_end": False,
            "reply_audio": True, "hold_ms": None, "turns": 1, "decisions": []}
    fixed = [{**base, "latency_ms": v} for v in (500.0, 520.0, 540.0)] + [
        {**base, "kind": "hesitation", "max_pause_s": 0.8, "cut_off": True, "cut_reasons": ["ended-early"],
         "latency_ms": None, "hold_ms": 416.0, "turns": 2},
        {**base, "kind": "hesitation", "max_pause_s": 1.4, "cut_off": True, "cut_reasons": ["ended-early"],
         "latency_ms": None, "hold_ms": 420.0, "turns": 2}]
    semantic = [{**base, "latency_ms": v} for v in (200.0, 210.0, 260.0)] + [
        {**base, "kind": "hesitation", "max_pause_s": 0.8, "latency_ms": 300.0, "hold_ms": 800.0},
        {**base, "kind": "hesitation", "max_pause_s": 1.4, "latency_ms": 320.0, "hold_ms": 1400.0}]
    f, s = summarize(fixed), summarize(semantic)
    assert f["cut_offs"]["count"] == 2 and f["cut_offs"]["pct"] == 40.0
    assert f["cut_offs"]["count_pauses_le_1_2s"] == 1 and f["cut_offs"]["clips_pauses_le_1_2s"] == 4
    assert f["latency_all_ms"]["n"] == 3 and f["latency_complete_ms"]["p50"] == 520.0
    assert f["hold_hesitation_ms"]["mean"] == 418.0 and s["hold_hesitation_ms"]["max"] == 1400.0
    assert s["latency_all_ms"]["n"] == 5 and s["per_kind"]["hesitation"]["cut_offs"] == 0
    r = ratios({"semantic": s, "fixed": f})
    assert r["complete_p50"] == pytest.approx(210 / 520, abs=1e-3)


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_bench_turns_json_on_two_generated_clips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synth = Synthesizer()
    clips = [build_clip(complete_plan(r, VOICE), synth, tmp_path) for r in REQUESTS[:2]]
    write_clips(tmp_path / "clips.jsonl", clips)
    code = bench_turns_main(["--clips", str(tmp_path / "clips.jsonl"), "--split", "all", "--limit", "2",
                             "--policies", "fixed", "--json", "-q", "--trailing-silence-s", "2"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["policies"] == ["fixed"] and result["clips"] == 2 and len(result["rows"]) == 2
    summary = result["summary"]["fixed"]
    assert summary["cut_offs"]["count"] == 0
    for row in result["rows"]:
        assert row["turns"] == 1 and row["transcript"] and row["reply"], row
        # The fixed timeout alone is 400 ms: the reply cannot come sooner, and should come within seconds.
        assert 300 < row["latency_ms"] < 5000, row
    assert summary["latency_complete_ms"]["n"] == 2 and summary["latency_complete_ms"]["p50"] > 300
