"""The ``quickturn`` command line.

Subcommands owned by a stage live beside that stage and are found through
:data:`PLUGINS` (``(command, target) -> "module:function"``); each plugin
function takes the remaining argv and returns an exit code. Everything a user
can get wrong ends as one readable line on stderr and a non-zero exit code,
never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from core.errors import QuickTurnError

PLUGINS: dict[tuple[str, ...], str] = {
    ("train", "disfluency"): "training.disfluency.commands:train_main",
    ("eval", "disfluency"): "training.disfluency.commands:eval_main",
    ("bench", "disfluency"): "services.disfluency.commands:bench_main",
    ("clean",): "services.disfluency.commands:clean_main",
    ("train", "nlu"): "training.nlu.commands:train_main",
    ("train", "nlu-base"): "training.nlu.commands:adapt_main",
    ("train", "nlu-teacher"): "training.nlu.commands:teacher_main",
    ("train", "nlu-quantize"): "training.nlu.commands:quantize_main",
    ("eval", "nlu"): "training.nlu.commands:eval_main",
    ("bench", "asr"): "assistant.commands.bench_asr:bench_asr_main",
    ("bench", "turns"): "assistant.commands.bench_turns:bench_turns_main",
    ("bench", "words"): "assistant.commands.bench_words:bench_words_main",
    ("bench", "batch"): "assistant.commands.bench_batch:bench_batch_main",
    ("bench", "capacity"): "assistant.commands.bench_capacity:bench_capacity_main",
    ("bench", "churn"): "assistant.commands.bench_churn:bench_churn_main",
    ("bench", "nlu"): "services.nlu.commands:bench_main",
    ("parse",): "services.nlu.commands:parse_main",
    ("serve", "web"): "assistant.web.server:serve_web_main",
    ("serve", "triton"): "services.serving.triton_server:serve_triton_main",
    ("serve", "riva"): "services.serving.riva_server:serve_riva_main",
    ("test", "stories"): "dialog.commands:test_stories_main",
    ("bench", "dialog"): "dialog.commands:bench_main",
    ("dialog",): "dialog.commands:dialog_main",
    ("export", "rasa"): "dialog.commands:export_rasa_main",
    ("domain",): "domains.cli:main",
    ("chat",): "assistant.commands.chat:chat_main",
    ("say",): "assistant.commands.chat:say_main",
    ("mic",): "assistant.commands.mic:mic_main",
    ("bench",): "assistant.commands.bench:bench_main",
    ("setup",): "assistant.commands.setup:setup_main",
    ("eval",): "assistant.commands.evaluate:eval_main",
}

USAGE = """usage: quickturn COMMAND [ARGS...]

The assistant:
  chat AUDIO [--json]        one recorded utterance through the whole pipeline
  say "TEXT" [--json]        the same from text (skips VAD and ASR)
  mic                        a live microphone session (pyaudio)
  bench [--json]             per-stage latency p50/p95 and ASR WER on the utterance set
  bench turns [--json]       turn-taking from the outside: cut-offs, end of speech → reply audio, holds
  bench batch [--json]       the cost of one batched Whisper decode against batch size (1, 2, 4, 8)
  bench capacity [--json]    N websocket conversations at once: end of speech → reply audio p50/p95, CPU, RSS
  eval MANIFEST              batch evaluation of recorded audio
  setup                      generate the benchmark/demo utterances with the TTS voices
  serve web|triton|riva      the websocket web client, a Triton server, the Riva API facade
  test stories [PATH]        run the dialog story tests
  domain check|import|export validate domains; import Rasa/SNIPS/Rhino; export Rasa nlu.yml + domain.yml
  dialog                     one dialog turn from intent/slots (see docs/dialog.md)
  export rasa DIR            write a Rasa 3 project from the domains

Stages:
  clean [--json]             disfluency removal, one utterance per stdin line
  parse [--json]             intent + slots, one utterance per stdin line
  train disfluency|nlu|nlu-base|nlu-teacher|nlu-quantize
                             train a model (seeded; nlu-base: adapt the NLU encoder;
                             nlu-teacher: a larger tagger to distil from;
                             nlu-quantize: quantize the NLU model again from its float export)
  eval disfluency|nlu        evaluate a model
  bench disfluency|nlu       time a model on one thread

Run `quickturn COMMAND --help` for a command's options.
"""


def _resolve(spec: str) -> Callable[[list[str]], int]:
    module_name, func_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise QuickTurnError(f"this command is not available in this build ({exc.name} is missing)") from exc
    func: Callable[[list[str]], int] = getattr(module, func_name)
    return func


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0
    if args[0] in {"--version", "version"}:
        from assistant import __version__

        print(f"quickturn {__version__}")
        return 0
    key2 = tuple(args[:2])
    if len(args) >= 2 and key2 in PLUGINS:
        spec, rest = PLUGINS[key2], args[2:]
    elif (args[0],) in PLUGINS:
        spec, rest = PLUGINS[(args[0],)], args[1:]
    else:
        print(f"quickturn: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    try:
        return _resolve(spec)(rest)
    except QuickTurnError as exc:
        print(f"quickturn: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("quickturn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
