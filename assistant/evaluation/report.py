"""``report.html``: one self-contained page (charts as embedded PNGs, audio as data URIs).

Charts are drawn with matplotlib's Agg backend; without matplotlib the page
is still written, with a placeholder instead of each chart.
"""

from __future__ import annotations

import base64
import difflib
import html
import io
import math
import os
from pathlib import Path
from string import Template
from typing import Any

from assistant.evaluation.scoring import STAGES, confusion
from assistant.metrics import normalize_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
STAGE_LABELS = {
    "endpoint": "endpoint (silence wait)",
    "asr": "ASR final",
    "disfluency": "disfluency",
    "nlu": "NLU",
    "dialog": "dialog",
    "tts_first_audio": "TTS first audio",
    "total": "total (end of speech → audio)",
}
STAGE_COLORS = {
    "endpoint": "#adb5bd", "asr": "#3b5bdb", "disfluency": "#f59f00", "nlu": "#12b886",
    "dialog": "#ae3ec9", "tts_first_audio": "#f03e3e", "total": "#1d2330",
}
BUDGET_MS = 300.0
_AUDIO_MIME = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".opus": "audio/ogg",
               ".mp3": "audio/mpeg"}
_PLACEHOLDER = ("data:image/svg+xml;base64," + base64.b64encode(
    b'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="80"><text x="10" y="45" '
    b'font-family="sans-serif" fill="#667085">chart unavailable (matplotlib is not installed)</text></svg>'
).decode())


def e(x: object) -> str:
    return html.escape(str(x), quote=True)


def pct(v: object, nd: int = 1) -> str:
    return "n/a" if v is None else f"{float(v) * 100:.{nd}f}%"  # type: ignore[arg-type]


# --------------------------------------------------------------------------- charts


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    plt.rcParams.update({
        "font.size": 10, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
        "grid.color": "#e9ecef", "grid.linewidth": 0.8, "axes.edgecolor": "#adb5bd", "axes.titleweight": "bold",
        "axes.titlesize": 11, "legend.frameon": False,
    })
    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight", facecolor="white")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def latency_cdf_png(rows: list[dict[str, Any]], stages: list[str]) -> str:
    plt = _plt()
    if plt is None:
        return _PLACEHOLDER
    fig, ax = plt.subplots(figsize=(6.2, 3.9))
    drawn = 0
    for stage in stages:
        vals = sorted(max(float(r["latency_ms"][stage]), 0.01) for r in rows if stage in (r.get("latency_ms") or {}))
        if not vals:
            continue
        ys = [(i + 1) / len(vals) for i in range(len(vals))]
        ax.step(vals, ys, where="post", label=STAGE_LABELS.get(stage, stage), color=STAGE_COLORS.get(stage),
                linewidth=2.4 if stage == "total" else 1.6)
        drawn += 1
    if drawn:
        ax.set_xscale("log")
        ax.axvline(BUDGET_MS, color="#c92a2a", linestyle="--", linewidth=1)
        ax.text(BUDGET_MS, 0.02, " 300 ms budget", color="#c92a2a", fontsize=8)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)
    else:
        ax.text(0.5, 0.5, "no latencies (no turn produced a reply)", ha="center", transform=ax.transAxes)
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("share of turns")
    ax.set_ylim(0, 1.02)
    ax.set_title("Latency CDF per stage")
    return _png(fig)


def median_turn_png(latency: dict[str, dict[str, float]]) -> str:
    plt = _plt()
    if plt is None:
        return _PLACEHOLDER
    fig, ax = plt.subplots(figsize=(6.2, 3.9))
    parts = [s for s in ("endpoint", "asr", "disfluency", "nlu", "dialog", "tts_first_audio") if s in latency]
    left = 0.0
    for s in parts:
        w = float(latency[s]["p50"])
        ax.barh([0], [w], left=left, color=STAGE_COLORS[s], label=f"{STAGE_LABELS[s]}  {w:.0f} ms", height=0.5)
        if w > 40:
            ax.text(left + w / 2, 0, f"{w:.0f}", ha="center", va="center", color="white", fontsize=9,
                    fontweight="bold")
        left += w
    if "endpoint" in latency:
        start = float(latency["endpoint"]["p50"])
        ax.axvline(start, color="#495057", linewidth=1)
        ax.axvline(start + BUDGET_MS, color="#c92a2a", linestyle="--", linewidth=1)
        ax.text(start + BUDGET_MS, 0.33, " 300 ms after endpoint", color="#c92a2a", fontsize=8)
    if "total" in latency:
        ax.set_title(f"Median turn (median total {float(latency['total']['p50']):.0f} ms after endpoint)")
    else:
        ax.set_title("Median turn")
    ax.set_yticks([])
    ax.set_ylim(-0.6, 0.9)
    ax.set_xlabel("ms since the user stopped speaking")
    ax.grid(axis="y", visible=False)
    if parts:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8)
    return _png(fig)


def wer_hist_png(wers: list[float]) -> str:
    plt = _plt()
    if plt is None:
        return _PLACEHOLDER
    fig, ax = plt.subplots(figsize=(6.2, 3.4))
    if wers:
        clipped = [min(w, 1.0) for w in wers]
        bins = [i / 20 for i in range(21)]
        ax.hist(clipped, bins=bins, color="#3b5bdb", edgecolor="white")
        perfect = sum(1 for w in wers if w == 0)
        ax.set_title(f"WER per file ({perfect} of {len(wers)} files perfect)")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x:.0%}" if x < 1 else "≥100%"))
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.text(0.5, 0.5, "no reference transcripts", ha="center", transform=ax.transAxes)
        ax.set_title("WER per file")
    ax.set_xlabel("WER")
    ax.set_ylabel("files")
    return _png(fig)


# --------------------------------------------------------------------------- html parts


def _card(mid: str, label: str, value: str, detail: str = "", tone: str = "") -> str:
    return (f'<div class="metric {e(tone)}" id="metric-{e(mid)}"><div class="label">{e(label)}</div>'
            f'<div class="value">{e(value)}</div><div class="detail">{e(detail)}</div></div>')


def _tone(v: object, good: float, warn: float, higher_better: bool = True) -> str:
    if v is None:
        return "na"
    x = float(v)  # type: ignore[arg-type]
    if not higher_better:
        x, good, warn = -x, -good, -warn
    return "good" if x >= good else "warn" if x >= warn else "bad"


def headline(s: dict[str, Any]) -> str:
    lat = s.get("latency_ms", {})
    total = lat.get("total")
    counts = s.get("counts", {})
    cards = [
        _card("wer", "Word error rate", pct(s.get("wer")), f"CER {pct(s.get('cer'))} · {counts.get('with_text', 0)} files",
              _tone(s.get("wer"), 0.1, 0.25, higher_better=False)),
        _card("intent", "Intent accuracy", pct(s.get("intent_accuracy")), f"{counts.get('with_intent', 0)} labelled files",
              _tone(s.get("intent_accuracy"), 0.9, 0.7)),
        _card("slot-f1", "Slot F1", pct(s.get("slot_f1")),
              f"P {pct(s.get('slot_precision'))} · R {pct(s.get('slot_recall'))}", _tone(s.get("slot_f1"), 0.85, 0.6)),
        _card("exact", "Exact match", pct(s.get("exact_match")), "intent and every slot right",
              _tone(s.get("exact_match"), 0.8, 0.5)),
        _card("disfluency-f1", "Disfluency F1", pct(s.get("disfluency_f1")),
              f"P {pct(s.get('disfluency_precision'))} · R {pct(s.get('disfluency_recall'))}"
              if s.get("disfluency_f1") is not None else "no clean_text references",
              _tone(s.get("disfluency_f1"), 0.8, 0.5)),
        _card("latency", "Turn latency p50", f"{total['p50']:.0f} ms" if total else "n/a",
              f"p95 {total['p95']:.0f} ms · max {total['max']:.0f} ms" if total else "no replies",
              _tone(total["p50"] if total else None, BUDGET_MS, 2 * BUDGET_MS, higher_better=False)),
        _card("rtf", "Speed", f"{s['realtime_factor']:.1f}×" if s.get("realtime_factor") else "n/a",
              f"faster than real time · {s.get('run', {}).get('workers', 1)} worker(s), {s.get('run', {}).get('mode', '')}"),
        _card("files", "Files", f"{s.get('files_ok', 0)}/{s.get('files', 0)}",
              f"{s.get('files_failed', 0)} failed" + (f", {s['pending']} pending" if s.get("pending") else ""),
              "good" if not s.get("files_failed") else "bad"),
    ]
    if s.get("ood_rejection") is not None:
        cards.insert(5, _card("ood", "Out-of-domain rejection", pct(s.get("ood_rejection")),
                              f"false rejection {pct(s.get('false_rejection'))}", _tone(s.get("ood_rejection"), 0.8, 0.5)))
    return "\n".join(cards)


def latency_table(latency: dict[str, dict[str, float]]) -> str:
    head = "<tr><th>stage</th><th class=num>p50 ms</th><th class=num>p95 ms</th><th class=num>max ms</th><th class=num>n</th></tr>"
    body = "".join(
        f"<tr><td>{e(STAGE_LABELS.get(k, k))}</td><td class=num>{v['p50']:.1f}</td><td class=num>{v['p95']:.1f}</td>"
        f"<td class=num>{v['max']:.1f}</td><td class=num>{int(v.get('n', 0))}</td></tr>"
        for k, v in latency.items()
    )
    return f"<table>{head}{body}</table>"


def _bar(v: object) -> str:
    w = 0.0 if v is None else max(0.0, min(1.0, float(v))) * 100  # type: ignore[arg-type]
    color = "#2f9e44" if w >= 90 else "#f59f00" if w >= 60 else "#e03131"
    return f'<div class="bar"><span style="width:{w:.1f}%;background:{color}"></span></div>'


def intent_table(per_intent: dict[str, dict[str, Any]]) -> str:
    if not per_intent:
        return "<p class=note>No file has a reference intent.</p>"
    head = ("<tr><th>intent</th><th class=num>files</th><th>accuracy</th><th class=num>precision</th>"
            "<th class=num>slot F1</th><th class=num>exact match</th></tr>")
    rows = sorted(per_intent.items(), key=lambda kv: (kv[1]["accuracy"] or 0, kv[0]))
    body = "".join(
        f"<tr><td>{e(k)}</td><td class=num>{v['n']}</td><td>{pct(v['accuracy'])} ({v['correct']}/{v['n']}){_bar(v['accuracy'])}</td>"
        f"<td class=num>{pct(v['precision'])}</td><td class=num>{pct(v['slot_f1'])}</td><td class=num>{pct(v['exact_match'])}</td></tr>"
        for k, v in rows
    )
    return f"<table>{head}{body}</table>"


def confusion_table(gold: list[str], pred: list[str], counts: dict[tuple[str, str], int]) -> str:
    if not gold:
        return "<p class=note>No file has a reference intent.</p>"
    row_totals = {g: sum(c for (a, _), c in counts.items() if a == g) for g in gold}
    cols = "".join(f'<th class="col">{e(p)}</th>' for p in pred)
    out = [f"<table class=confusion><tr><th></th>{cols}</tr>"]
    for g in gold:
        cells = []
        for p in pred:
            c = counts.get((g, p), 0)
            if not c:
                cells.append('<td class="zero">·</td>')
                continue
            share = c / max(row_totals[g], 1)
            if g == p:
                bg = f"rgba(47,158,68,{0.18 + 0.72 * share:.2f})"
            else:
                bg = f"rgba(224,49,49,{0.18 + 0.72 * share:.2f})"
            fg = "#fff" if share > 0.55 else "#1d2330"
            cells.append(f'<td style="background:{bg};color:{fg}" title="{e(g)} → {e(p)}: {c}">{c}</td>')
        out.append(f'<tr><th class="row">{e(g)}</th>{"".join(cells)}</tr>')
    out.append("</table>")
    return "".join(out)


def group_table(groups: dict[str, dict[str, Any]]) -> str:
    if not groups:
        return ""
    body = "".join(f"<tr><td>{e(g)}</td><td class=num>{v['n']}</td><td class=num>{pct(v['wer'])}</td></tr>"
                   for g, v in groups.items())
    return f"<table><tr><th>voice / source</th><th class=num>files</th><th class=num>WER</th></tr>{body}</table>"


def word_diff(ref: str, hyp: str) -> str:
    r, h = normalize_text(ref).split(), normalize_text(hyp).split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=r, b=h, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(e(" ".join(r[i1:i2])))
        if op in ("delete", "replace"):
            out.append(f"<del>{e(' '.join(r[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{e(' '.join(h[j1:j2]))}</ins>")
    return " ".join(out) or "<span class=note>(empty)</span>"


class _AudioBudget:
    def __init__(self, mb: float) -> None:
        self.left = int(mb * 1024 * 1024)

    def src(self, audio: str | None, report_dir: Path) -> str | None:
        if not audio:
            return None
        p = Path(audio)
        if not p.is_file():
            return None
        suffix = p.suffix.lower()
        try:
            if suffix in {".raw", ".pcm"}:
                import soundfile as sf

                from core.audio import load_audio

                buf = io.BytesIO()
                sf.write(buf, load_audio(p), 16000, format="WAV", subtype="PCM_16")
                data, mime = buf.getvalue(), "audio/wav"
            elif p.stat().st_size <= self.left:
                data, mime = p.read_bytes(), _AUDIO_MIME.get(suffix, "audio/wav")
            else:
                data, mime = b"", ""
        except Exception:
            return None
        if data and len(data) <= self.left:
            self.left -= len(data)
            return f"data:{mime};base64," + base64.b64encode(data).decode()
        try:
            return Path(os.path.relpath(p.resolve(), report_dir.resolve())).as_posix()
        except ValueError:
            return p.resolve().as_uri()


def _badness(r: dict[str, Any]) -> tuple[float, int, int]:
    s = r.get("scores") or {}
    wer = float(s.get("wer", 0.0) or 0.0)
    intent_wrong = 1 if s.get("intent_correct") is False else 0
    not_exact = 1 if s.get("exact_match") is False else 0
    return (wer, intent_wrong, not_exact)


def worst_files(rows: list[dict[str, Any]], budget: _AudioBudget, report_dir: Path, n: int = 12) -> str:
    ok = [r for r in rows if r.get("status") == "ok"]
    bad = sorted((r for r in ok if any(_badness(r))), key=_badness, reverse=True)[:n]
    if not bad:
        return "<p class=note>Every evaluated file is perfect: no transcript error, no wrong intent or slot.</p>"
    out = []
    for r in bad:
        ref = r.get("reference") or {}
        s = r.get("scores") or {}
        pills = []
        if "wer" in s:
            pills.append(f'<span class="pill {"bad" if s["wer"] else "good"}">WER {pct(s["wer"], 0)}</span>')
        if "intent_correct" in s:
            pills.append(f'<span class="pill {"good" if s["intent_correct"] else "bad"}">intent '
                         f'{"right" if s["intent_correct"] else "wrong"}</span>')
        if ref.get("voice") or ref.get("source"):
            pills.append(f'<span class="pill">{e(ref.get("voice") or ref.get("source"))}</span>')
        total = (r.get("latency_ms") or {}).get("total")
        if total is not None:
            pills.append(f'<span class="pill">{float(total):.0f} ms</span>')
        src = budget.src(r.get("audio_filepath"), report_dir)
        player = f'<audio controls preload="none" src="{e(src)}"></audio>' if src else ""
        dl = []
        if isinstance(ref.get("text"), str):
            dl.append(f"<dt>reference</dt><dd>{e(ref['text'])}</dd>")
        dl.append(f"<dt>heard</dt><dd>{e(r.get('transcript') or '(nothing)')}</dd>")
        if isinstance(ref.get("text"), str):
            dl.append(f"<dt>alignment</dt><dd>{word_diff(str(ref['text']), str(r.get('transcript') or ''))}</dd>")
        if r.get("removed"):
            dl.append(f"<dt>removed</dt><dd>{e(' '.join(map(str, r['removed'])))}</dd>")
        if isinstance(ref.get("intent"), str) or r.get("intent"):
            want = f"{ref.get('intent')} {_slots(ref.get('slots'))}" if ref.get("intent") else "(unlabelled)"
            dl.append(f"<dt>intent</dt><dd>{e(r.get('intent'))} {e(_slots(r.get('slots')))} "
                      f"<span style='color:#667085'>(expected {e(want)})</span></dd>")
        if r.get("reply"):
            dl.append(f"<dt>reply</dt><dd>{e(r['reply'])}</dd>")
        out.append(f'<div class="file"><div class="top"><div><span class="name" title="{e(r.get("audio_filepath"))}">'
                   f'{e(_display_name(str(r.get("key"))))}</span> '
                   f'{"".join(pills)}</div>{player}</div><dl>{"".join(dl)}</dl></div>')
    return "\n".join(out)


def _display_name(key: str) -> str:
    """The key without leading ``../`` hops (the full path is in the tooltip)."""
    parts = [p for p in key.split("/") if p not in ("..", ".")]
    return "/".join(parts[-3:]) if len(parts) > 3 else "/".join(parts) or key


def _slots(slots: object) -> str:
    if not isinstance(slots, dict) or not slots:
        return ""
    return "{" + ", ".join(f"{k}={v}" for k, v in slots.items()) + "}"


def failed_section(failed: list[dict[str, Any]]) -> str:
    if not failed:
        return ""
    body = "".join(f"<tr><td>{e(f.get('file'))}</td><td>{e(f.get('error'))}</td></tr>" for f in failed)
    return (f'<section id="failed" class="failed"><h2>Failed files ({len(failed)})</h2>'
            f'<p class="note">These could not be evaluated and are left out of every metric.</p>'
            f"<div class=scroll><table><tr><th>file</th><th>reason</th></tr>{body}</table></div></section>")


# --------------------------------------------------------------------------- page


def render_report(summary: dict[str, Any], rows: list[dict[str, Any]], path: Path, *, embed_audio_mb: float = 20.0) -> Path:
    """Write the report page; returns its path."""
    ok = [r for r in rows if r.get("status") == "ok"]
    latency = summary.get("latency_ms") or {}
    run = summary.get("run") or {}
    stack = summary.get("stack") or {}
    wers = [float(r["scores"]["wer"]) for r in ok if "wer" in (r.get("scores") or {})]
    mean_wer = sum(wers) / len(wers) if wers else math.nan
    manifest = Path(str(summary.get("manifest", "")))
    title = f"QuickTurn evaluation · {manifest.parent.name + '/' if manifest.name == 'manifest.jsonl' else ''}{manifest.name}"
    subtitle = (f"{summary.get('files_ok', 0)} of {summary.get('files', 0)} files · "
                f"{float(summary.get('audio_seconds') or 0):.0f} s of audio · {e(run.get('mode', ''))} · "
                f"<code>{e(summary.get('backend', 'embedded'))}</code> · {e(summary.get('created', ''))}")
    mode_note = ("Audio was fed at real-time pace, as from a microphone." if run.get("mode") == "real time" else
                 "Fast mode: audio fed as fast as possible, so the endpoint stage is audio time and the others are "
                 "processing time under load; use a real-time run for latency claims.")
    gold, pred, counts = confusion(rows)
    budget = _AudioBudget(embed_audio_mb)
    parts = {
        "title": e(title),
        "subtitle": subtitle,
        "css": (TEMPLATES / "report.css").read_text(),
        "headline": headline(summary),
        "latency_note": e(f"{mode_note} Total = end of speech detected → first reply audio "
                          f"(the 300 ms budget); the endpoint delay (silence needed to end the turn) comes before it."),
        "cdf_png": latency_cdf_png(ok, STAGES),
        "median_png": median_turn_png(latency),
        "latency_table": latency_table(latency) if latency else "<p class=note>No turn produced a reply.</p>",
        "intent_note": e(f"Accuracy = share of the intent's files classified as it; precision = share of predictions "
                         f"of it that were right. Slot F1 on (slot, value) pairs after normalization. "
                         f"Out-of-domain rejection {pct(summary.get('ood_rejection'))}, "
                         f"false rejection {pct(summary.get('false_rejection'))}."),
        "intent_table": intent_table(summary.get("per_intent") or {}),
        "confusion": confusion_table(gold, pred, counts),
        "wer_note": e(f"Corpus WER {pct(summary.get('wer'))} (total edits / total reference words), "
                      f"mean per-file WER {pct(mean_wer) if wers else 'n/a'}, CER {pct(summary.get('cer'))}. "
                      "Text normalized before scoring: lower case, numbers spelled out, punctuation dropped."),
        "wer_png": wer_hist_png(wers),
        "group_table": group_table(summary.get("wer_by_group") or {}),
        "worst": worst_files(rows, budget, path.parent),
        "failed": failed_section(summary.get("failed") or []),
        "footer": e(f"stages: ASR {stack.get('asr')}, disfluency {stack.get('disfluency')}, NLU {stack.get('nlu')}, "
                    f"dialog {stack.get('dialog')}, TTS {stack.get('tts')} · generated by quickturn eval")
        if stack else "generated by quickturn eval",
    }
    page = Template((TEMPLATES / "report.html").read_text()).substitute(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
