"""``quickturn chat AUDIO`` and ``quickturn say TEXT``: one turn, explained."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from assistant.components import Components
from assistant.logs import setup_logging
from assistant.pipeline import Conversation
from assistant.turn_result import TurnResult, run_audio, run_text
from core.audio import load_audio
from core.errors import InvalidAudio, InvalidInput
from core.settings import Settings, load_settings

STAGES = ["endpoint", "asr", "disfluency", "nlu", "dialog", "tts_first_audio", "total"]


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="settings file (YAML/TOML/JSON)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", type=Path, help="write the reply audio here (WAV)")
    parser.add_argument("--session", help="session id (continue a conversation across calls)")
    parser.add_argument("--backend", help="embedded | triton://HOST:PORT | riva://HOST:PORT")
    parser.add_argument("--tts", choices=["piper", "espeak"], help="TTS engine")
    parser.add_argument("--dialog", help="dialog backend: embedded | rasa://HOST:PORT (a running Rasa server)")
    parser.add_argument("--db", type=Path, help="dialog database (default: DATA_DIR/dialog.sqlite)")
    parser.add_argument("-v", "--verbose", action="store_true")


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "backend", None):
        overrides["backend"] = {"uri": args.backend}
    if getattr(args, "tts", None):
        overrides["tts"] = {"engine": args.tts}
    if getattr(args, "dialog", None):
        overrides["dialog"] = {"backend": args.dialog}
    return load_settings(getattr(args, "config", None), overrides)


def chat_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="quickturn chat", description="Run one recorded utterance through the pipeline.")
    parser.add_argument("audio", type=Path, help="audio file (WAV/FLAC/OGG/MP3, any rate or channel count; .raw = 16 kHz PCM16)")
    parser.add_argument("--fast", action="store_true", help="do not pace the audio in real time")
    parser.add_argument("--turns", action="store_true",
                        help="a recording with any number of turns, of any length up to audio.max_stream_s: "
                             "streamed from disk, one line per turn as it ends (JSON lines with --json)")
    add_common(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    settings = settings_from(args)
    if args.turns:
        return _chat_turns(settings, args)
    pcm = load_audio(args.audio, max_seconds=settings.audio.max_utterance_s)
    if int((abs(pcm.astype("int32")) > 300).sum()) == 0:
        raise InvalidAudio(f"{args.audio}: the recording is silent")
    result = asyncio.run(_chat(settings, pcm, args))
    if not result.transcript and not result.errors:  # a failed stage is reported as what it is (_report)
        raise InvalidAudio(f"{args.audio}: no speech detected")
    return _report(result, args, settings)


async def _chat(settings: Settings, pcm, args: argparse.Namespace) -> TurnResult:  # type: ignore[no-untyped-def]
    components = Components.load(settings, db_path=_db_path(args, settings))
    conv = Conversation(components, args.session, barge_in=False)
    return await run_audio(conv, pcm, realtime=not args.fast)


def _chat_turns(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.commands.chat_turns import print_turn, stream_turns

    if args.out:
        raise InvalidInput("--out writes one reply; with --turns the replies are in the JSON lines' text")
    turns, failed = asyncio.run(stream_turns(
        settings, args.audio, db_path=_db_path(args, settings), session=args.session, realtime=not args.fast,
        emit=lambda n, s, r: print_turn(n, s, r, args.json)))
    if turns == 0:
        raise InvalidAudio(f"{args.audio}: no speech detected")
    if failed:
        print(f"quickturn: error: {failed} of {turns} turns failed", file=sys.stderr)
    return 1 if failed else 0


def say_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="quickturn say", description="Run one typed utterance (skips VAD and ASR).")
    parser.add_argument("text", nargs="+", help="what the user says")
    add_common(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    text = " ".join(args.text).strip()
    if not text:
        raise InvalidInput("nothing to say: give some text")
    settings = settings_from(args)

    async def go() -> TurnResult:
        components = Components.load(settings, need_asr=False, db_path=_db_path(args, settings))
        conv = Conversation(components, args.session, barge_in=False)
        return await run_text(conv, text)

    return _report(asyncio.run(go()), args, settings)


def _db_path(args: argparse.Namespace, settings: Settings) -> Path:
    path: Path = args.db or settings.data_dir / "dialog.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _report(result: TurnResult, args: argparse.Namespace, settings: Settings) -> int:
    out = args.out or settings.data_dir / "replies" / "last_reply.wav"
    saved = result.save_audio(out)
    if args.json:
        print(json.dumps(result.to_json(saved)))
    else:
        from rich.console import Console
        from rich.table import Table

        console = Console()
        console.print(f"[bold]transcript[/]  {result.transcript}")
        removed = f"  [dim](removed: {' '.join(result.removed)})[/]" if result.removed else ""
        console.print(f"[bold]cleaned[/]     {result.clean_transcript}{removed}")
        conf = f" ({result.confidence:.2f})" if result.confidence is not None else ""
        console.print(f"[bold]intent[/]      {result.intent}{conf}")
        console.print(f"[bold]slots[/]       {', '.join(f'{k}={v}' for k, v in result.slots.items()) or '-'}")
        console.print(f"[bold]reply[/]       {result.reply}")
        console.print(f"[bold]audio[/]       {saved}")
        table = Table(title="latency (ms)")
        for stage in STAGES:
            table.add_column(stage, justify="right")
        table.add_row(*[f"{result.latency_ms[s]:.1f}" if s in result.latency_ms else "-" for s in STAGES])
        console.print(table)
    for warning in result.warnings:
        print(f"quickturn: warning: {warning}", file=sys.stderr)
    for err in result.errors:
        print(f"quickturn: error: {err}", file=sys.stderr)
    return 1 if result.errors else 0
