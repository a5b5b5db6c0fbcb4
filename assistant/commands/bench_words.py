"""``quickturn bench words``: one-word answers by real speakers, right the first time?

Each clip (:mod:`assistant.evaluation.word_clips`) is one word cut from a real
coffee order ("large", "mocha"). For each, a fresh session first says the text
turn that makes the dialog ask for that slot ("i'd like a latte" → "What
size…?"), then the word is streamed through the whole pipeline (VAD, turn-taking,
ASR, tagger, NLU, dialog) as audio, with 0.3 s of silence before it and 2.5 s
after. Scored per clip:

* **heard**: a turn started (the VAD took the word for speech);
* **word**: the final transcript is the word (punctuation and case aside);
* **filled**: the dialog holds the word in the asked slot after the turn (what it acts on; the
  NLU's own slot is reported as ``nlu_filled``);
* **wrong**: the dialog holds another value in that slot (worse than asking again).

Every configuration (``--configs``) runs on the same clips in the same run, at
16 kHz and through an 8 kHz channel (``--channels``), so their figures compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.evaluation.word_clips import WordClip, build_word_clips, telephone
from core.audio import load_audio
from core.errors import InvalidInput

log = logging.getLogger(__name__)

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "no-question": {"_no_context": True},
    "no-sound-alike": {"dialog": {"sound_alike": False}},
}
"""Named setting overrides; ``_no_context`` skips the question (the word is said with nothing asked)."""
CHANNELS = ("16k", "8k")


def _filled(state: dict[str, Any] | None, slot: str) -> str | None:
    """The value the dialog holds for ``slot`` in the task in focus or the one it just finished."""
    if not state:
        return None
    frames = [*state.get("stack", []), *([state["last_done"]] if state.get("last_done") else [])]
    for frame in reversed(frames):
        got = frame.get("slots", {}).get(slot)
        if got:
            return str(got.get("normalized") or got.get("value"))
    return None


def _events_summary(events: Sequence[Any], clip: WordClip, state: dict[str, Any] | None) -> dict[str, Any]:
    from core.events import DialogAction, NluResultEvent, SpeechStarted, TranscriptFinal

    finals = [e.text for e in events if isinstance(e, TranscriptFinal)]
    nlu = [e.result for e in events if isinstance(e, NluResultEvent)]
    return {
        "heard": any(isinstance(e, SpeechStarted) for e in events),
        "transcript": " | ".join(finals),
        "word_right": [f.strip(" .,?!").lower() for f in finals] == [clip.word],
        "nlu_filled": any(s.slot == clip.slot and (s.normalized or s.value) == clip.word for r in nlu for s in r.slots),
        "held": (held := _filled(state, clip.slot)),
        "filled": held == clip.word,
        "reply": " | ".join(e.text for e in events if isinstance(e, DialogAction)),
    }


async def _run_clip(components: Any, clip: WordClip, pcm: np.ndarray, session: str, context: bool) -> dict[str, Any]:
    from assistant.pipeline import Conversation
    from assistant.turn_result import collect

    conv = Conversation(components, session, barge_in=False)
    if context:
        await conv.say(clip.context)
        collect(conv)
    audio = np.concatenate([np.zeros(int(0.3 * 16000), np.int16), pcm, np.zeros(int(2.5 * 16000), np.int16)])
    await conv.feed(audio)
    await conv.flush()
    store = getattr(components.dialog, "store", None)
    return _events_summary(collect(conv), clip, store.load_session(session) if store is not None else None)


def _components(config: str | None, overrides: dict[str, Any], db: Path) -> Any:
    from assistant.components import Components
    from core.settings import load_settings

    return Components.load(load_settings(config, {k: v for k, v in overrides.items() if not k.startswith("_")}), db_path=db)


def run_bench(config: str | None, clips: Sequence[WordClip], folder: Path, configs: Sequence[str],
              channels: Sequence[str], progress: bool = True) -> dict[str, Any]:
    from tqdm import tqdm

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        loaded = {name: _components(config, CONFIGS[name], Path(tmp) / f"{name}.sqlite") for name in configs}
        bar = tqdm(total=len(clips) * len(configs) * len(channels), desc="words", unit="turn", disable=not progress)
        for k, clip in enumerate(clips):
            pcm16 = load_audio(folder / clip.path)
            audio = {"16k": pcm16, "8k": telephone(pcm16)}
            for channel in channels:
                for name in configs:
                    context = not CONFIGS[name].get("_no_context", False)
                    row = asyncio.run(_run_clip(loaded[name], clip, audio[channel], f"w{k}-{channel}-{name}", context))
                    rows.append({"config": name, "channel": channel, "word": clip.word, "slot": clip.slot,
                                 "source": clip.source, "split": clip.split, **row})
                    bar.update()
        bar.close()
        for components in loaded.values():
            # Stop the ASR's batch worker before the interpreter exits: a full run ended in
            # "terminate called without an active exception" (abort) without it, twice in a row.
            if components.asr is not None:
                asyncio.run(components.asr.aclose())
    return {"summary": summarize(rows), "rows": rows}


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per configuration and channel: clips, heard %, word right %, slot filled %."""
    out: dict[str, Any] = {}
    for key in sorted({(r["config"], r["channel"]) for r in rows}):
        sel = [r for r in rows if (r["config"], r["channel"]) == key]
        n = len(sel)
        out[f"{key[0]}@{key[1]}"] = {
            "clips": n,
            "heard_pct": round(100 * sum(r["heard"] for r in sel) / n, 1),
            "word_pct": round(100 * sum(r["word_right"] for r in sel) / n, 1),
            "nlu_filled_pct": round(100 * sum(r["nlu_filled"] for r in sel) / n, 1),
            "filled_pct": round(100 * sum(r["filled"] for r in sel) / n, 1),
            "wrong_pct": round(100 * sum(r["held"] is not None and not r["filled"] for r in sel) / n, 1),
        }
    return out


def bench_words_main(argv: list[str]) -> int:
    from assistant.logs import setup_logging
    from core.settings import load_settings

    parser = argparse.ArgumentParser(prog="quickturn bench words", description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=["tune", "report", "all"], default="report",
                        help="which half of the clips (thresholds are chosen on tune only; default report)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated ({', '.join(CONFIGS)})")
    parser.add_argument("--channels", default=",".join(CHANNELS), help="16k, 8k (an 8 kHz channel) or both")
    parser.add_argument("--limit", type=int, help="at most N clips")
    parser.add_argument("--config", help="a settings file (YAML) under the named configurations")
    parser.add_argument("--json", action="store_true", help="print one JSON object (summary and per-clip rows)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    settings = load_settings(args.config)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    if unknown := [c for c in configs if c not in CONFIGS] + [c for c in channels if c not in CHANNELS]:
        raise InvalidInput(f"unknown configuration or channel: {', '.join(unknown)}")
    barista = settings.shared_dir / "data" / "barista-dev"
    if not (barista / "manifest.jsonl").is_file():
        raise InvalidInput(f"{barista}: barista-dev is missing (the real recordings live in ../shared/data)")
    folder, clips = build_word_clips(barista, settings.data_dir, progress=not args.quiet)
    clips = [c for c in clips if args.split == "all" or c.split == args.split][: args.limit]
    if not clips:
        raise InvalidInput("no clips in that split")
    result = run_bench(args.config, clips, folder, configs, channels, progress=not args.quiet)
    result.update({"split": args.split, "clips": len(clips), "cache": str(folder)})
    if args.json:
        print(json.dumps(result))
    else:
        print(f"one-word answers, {args.split} split, {len(clips)} words by real speakers (barista-dev)")
        print(f"{'configuration':<24}{'heard':>8}{'word':>8}{'filled':>8}{'wrong':>8}")
        for name, s in result["summary"].items():
            print(f"{name:<24}{s['heard_pct']:>7.1f}%{s['word_pct']:>7.1f}%{s['filled_pct']:>7.1f}%{s['wrong_pct']:>7.1f}%")
    sys.stdout.flush()
    return 0
