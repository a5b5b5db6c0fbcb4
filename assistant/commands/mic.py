"""``quickturn mic``: a live conversation through the microphone and speaker.

Half-duplex by default: while the assistant speaks, the microphone is muted
(a reply cannot trigger itself). ``--full-duplex`` keeps listening and lets
the user interrupt (barge-in): speech that starts during playback cancels the
reply, and the VAD threshold is raised while the speaker is active so the
reply's own audio leaking into the microphone does not trigger it.
Ctrl-C ends the session cleanly; the dialog state is already committed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from assistant.audio_devices import list_devices, open_pyaudio, pick_device, quiet_stderr
from assistant.components import Components, warm_in_background
from assistant.logs import setup_logging
from assistant.pipeline import Conversation
from core.audio import resample, to_pcm16
from core.events import (
    AudioChunk,
    DialogAction,
    Event,
    SpeechStarted,
    StageMetrics,
    TranscriptFinal,
    TranscriptPartial,
    TurnCancelled,
    to_json,
)
from core.settings import load_settings

CAPTURE_RATE_HZ = 16000
CAPTURE_FRAMES = 512


class Speaker:
    """Plays reply chunks on a PortAudio output stream from a background thread.

    Chunks carry their turn id; :meth:`stop_turn` drops everything queued for
    a cancelled turn, so no audio of an interrupted reply plays afterwards.
    """

    def __init__(self, pa, device_index: int, rate_hz: int) -> None:  # type: ignore[no-untyped-def]
        import pyaudio

        self.rate_hz = rate_hz
        with quiet_stderr():
            self._stream = pa.open(format=pyaudio.paInt16, channels=1, rate=rate_hz, output=True,
                                   output_device_index=device_index, frames_per_buffer=512)
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._cancelled: set[str] = set()
        self._closing = False
        self.playing_until = 0.0
        self.played_ms: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="speaker", daemon=True)
        self._thread.start()

    def play(self, turn_id: str, pcm: np.ndarray) -> None:
        self._queue.put((turn_id, pcm.astype(np.int16).tobytes()))
        self.playing_until = max(self.playing_until, time.monotonic()) + len(pcm) / self.rate_hz

    def stop_turn(self, turn_id: str) -> None:
        self._cancelled.add(turn_id)
        self.playing_until = time.monotonic()

    @property
    def active(self) -> bool:
        return time.monotonic() < self.playing_until + 0.15

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            turn_id, data = item
            if turn_id in self._cancelled or self._closing:
                continue
            self._stream.write(data)
            self.played_ms[turn_id] = self.played_ms.get(turn_id, 0.0) + 1000 * len(data) / 2 / self.rate_hz

    def close(self) -> None:
        """Drop queued audio, wait for the writer thread, then close the stream.

        The stream must not be closed while the thread is inside ``write``:
        PortAudio then frees buffers under it (heap corruption at exit).
        """
        self._closing = True
        self._queue.put(None)
        self._thread.join(timeout=10)
        if self._thread.is_alive():  # pragma: no cover - a wedged device; leave it to process exit
            return
        with quiet_stderr():
            self._stream.stop_stream()
            self._stream.close()


def mic_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="quickturn mic", description=__doc__.splitlines()[0])
    parser.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    parser.add_argument("--input", help="input device index or name substring")
    parser.add_argument("--output", help="output device index or name substring")
    parser.add_argument("--full-duplex", action="store_true", help="keep listening while speaking (barge-in)")
    parser.add_argument("--session", help="session id (resume a conversation)")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--events", type=Path, help="append every event as JSON lines to this file")
    parser.add_argument("--config")
    parser.add_argument("--db", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    pa = open_pyaudio()
    try:
        if args.list_devices:
            for d in list_devices(pa):
                kinds = ("in" if d.inputs else "") + ("/out" if d.outputs else "")
                print(f"{d.index:3d}  {d.name:40s} {kinds:7s} {d.default_rate_hz} Hz")
            return 0
        mic = pick_device(pa, args.input, "input")
        out = pick_device(pa, args.output, "output")
        settings = load_settings(args.config)
        db = args.db or settings.data_dir / "dialog.sqlite"
        db.parent.mkdir(parents=True, exist_ok=True)
        print(f"loading models… (input: {mic.name}, output: {out.name})", file=sys.stderr)
        components = Components.load(settings, db_path=db)
        stop_warming = warm_in_background(components)
        try:
            return asyncio.run(_session(pa, mic.index, out.index, components, args))
        finally:
            stop_warming()
    finally:
        with quiet_stderr():
            pa.terminate()


async def _session(pa, mic_index: int, out_index: int, components: Components, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    import pyaudio

    loop = asyncio.get_running_loop()
    conv = Conversation(components, args.session, barge_in=args.full_duplex, pace_output=True)
    speaker = Speaker(pa, out_index, components.tts.sample_rate_hz)
    frames: asyncio.Queue[bytes] = asyncio.Queue()
    stop = asyncio.Event()

    def on_audio(data, frame_count, time_info, status):  # type: ignore[no-untyped-def]
        loop.call_soon_threadsafe(frames.put_nowait, data)
        return (None, pyaudio.paContinue)

    with quiet_stderr():
        stream = pa.open(format=pyaudio.paInt16, channels=1, rate=CAPTURE_RATE_HZ, input=True,
                         input_device_index=mic_index, frames_per_buffer=CAPTURE_FRAMES, stream_callback=on_audio)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    events_file = args.events.open("a") if args.events else None
    print(f"session {conv.session_id}: speak now ({'full' if args.full_duplex else 'half'}-duplex; Ctrl-C to stop)", file=sys.stderr)

    async def pump_audio() -> None:
        silence = np.zeros(CAPTURE_FRAMES, np.int16)
        while True:
            data = await frames.get()
            pcm = np.frombuffer(data, dtype=np.int16)
            if args.full_duplex:
                conv.set_echo_guard(speaker.active)
            if speaker.active and not args.full_duplex:
                # Half-duplex: the microphone is muted while the reply plays.
                await conv.feed(silence[: len(pcm)])
            else:
                await conv.feed(pcm)

    async def show_events() -> None:
        while True:
            ev: Event = await conv.events.get()
            if events_file is not None:
                rec = to_json(ev)
                rec["wall_time"] = time.time()
                events_file.write(json.dumps(rec) + "\n")
                events_file.flush()
            _render(ev, speaker)

    async def notify(session_id: str, text: str) -> None:
        if session_id == conv.session_id:
            await conv.notify(text)

    tasks = [asyncio.create_task(pump_audio()), asyncio.create_task(show_events())]
    scheduler = getattr(components.dialog, "run_scheduler", None)
    if scheduler is not None:
        tasks.append(asyncio.create_task(scheduler(notify)))
    try:
        if args.seconds:
            await asyncio.wait_for(stop.wait(), timeout=args.seconds)
        else:
            await stop.wait()
    except TimeoutError:
        pass
    finally:
        with quiet_stderr():
            stream.stop_stream()
            stream.close()
        await conv.drain()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while not conv.events.empty():
            ev = conv.events.get_nowait()
            if events_file is not None:
                events_file.write(json.dumps(to_json(ev)) + "\n")
        await conv.close()
        speaker.close()
        if events_file is not None:
            events_file.close()
        print(f"\nsession {conv.session_id} saved", file=sys.stderr)
    return 0


def _render(ev: Event, speaker: Speaker) -> None:
    if isinstance(ev, SpeechStarted):
        print("\n… listening", file=sys.stderr)
    elif isinstance(ev, TranscriptPartial):
        print(f"\r  {ev.text}", end="", file=sys.stderr, flush=True)
    elif isinstance(ev, TranscriptFinal):
        print(f"\ryou: {ev.text}", flush=True)
    elif isinstance(ev, DialogAction):
        print(f"assistant: {ev.text}", flush=True)
    elif isinstance(ev, AudioChunk) and ev.stage == "tts":
        pcm = ev.pcm
        if ev.sample_rate_hz != speaker.rate_hz:
            pcm = to_pcm16(resample(pcm.astype(np.float32) / 32768.0, ev.sample_rate_hz, speaker.rate_hz))
        speaker.play(ev.turn_id, pcm)
    elif isinstance(ev, TurnCancelled):
        speaker.stop_turn(ev.turn_id)
        print(f"  (reply interrupted: {ev.reason})", file=sys.stderr)
    elif isinstance(ev, StageMetrics):
        lat = ev.latency_ms
        print(f"  [end of speech → first audio {lat.get('total', float('nan')):.0f} ms; endpoint {lat.get('endpoint', 0):.0f} ms]",
              file=sys.stderr)
