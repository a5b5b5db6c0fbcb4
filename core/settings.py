"""The one typed settings object.

Values come, lowest priority first, from the defaults below, a TOML/YAML/JSON
file (``--config FILE`` or ``QUICKTURN_CONFIG``), environment variables
(``QUICKTURN_<SECTION>__<FIELD>``, e.g. ``QUICKTURN_VAD__SILENCE_MS=400``) and
CLI flags. Every limit is on by default and states its unit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import InvalidInput

REPO_ROOT = Path(__file__).resolve().parents[1]


class AudioSettings(BaseModel):
    sample_rate_hz: int = 16000
    frame_ms: int = Field(32, description="Frame size fed to the VAD (Silero needs 512 samples at 16 kHz).")
    max_utterance_s: float = Field(30.0, description="Longest single utterance accepted (seconds).")
    max_file_s: float = Field(120.0, description="Longest input file accepted by chat/eval (seconds).")
    max_stream_s: float = Field(
        14400.0, description="Longest recording `chat --turns` streams from disk, turn by turn (seconds).")


class VadSettings(BaseModel):
    threshold: float = 0.5
    silence_ms: int = Field(400, description="Silence that ends a turn under turn.policy fixed (the old endpointing timeout).")
    min_speech_ms: int = Field(150, description="Speech shorter than this is ignored (clicks, breaths).")
    pre_roll_ms: int = Field(200, description="Audio kept before the detected speech start.")


class TurnSettings(BaseModel):
    """When a user turn is over (docs/turn-taking.md).

    ``semantic`` (default) decides from every signal the pipeline has, first after
    ``eval_silence_ms`` of silence and again as the silence grows: the transcript
    through the disfluency tagger and the NLU (a complete request ends the turn; a
    trailing filler or function word, a word the tagger still holds, or a missing
    slot holds it), what the dialog just asked, and the Smart Turn audio model;
    after ``max_hold_ms`` of silence the turn ends whatever they say. ``fixed``
    is the old rule: ``vad.silence_ms`` of silence ends every turn.
    """

    policy: Literal["semantic", "fixed"] = "semantic"
    speculate_ms: int = Field(
        32, description="Silence after which the final decode, parse, dialog plan and first reply phrase are prepared."
    )
    eval_silence_ms: int = Field(128, description="Silence before the first end-of-turn decision (milliseconds).")
    reeval_ms: int = Field(160, description="While holding, decide again every this much more silence (milliseconds).")
    max_hold_ms: int = Field(2000, description="Silence after which the turn ends whatever the signals say (milliseconds).")
    max_turn_s: float = Field(
        30.0, gt=0, le=600,
        description="Longest turn (seconds of audio from its start): a turn still going ends here, whatever the policy "
                    "(the ASR reads at most 30 s at once, and an endless turn would hold the session's resources).",
    )
    min_speech_ms: int = Field(
        200, description="A turn with less speech than this is never ended early (noise bursts wait for max hold)."
    )
    smart_turn: bool = Field(True, description="Use the Smart Turn v3.2 audio model as the acoustic signal.")
    unknown_threshold: float = Field(
        0.8, description="Smart Turn probability that ends a request missing a slot or not understood, at once."
    )
    unknown_silence_ms: int = Field(
        600, description="Silence that ends a request missing a slot or not understood (milliseconds)."
    )
    doubt_threshold: float = Field(
        0.5, description="Smart Turn probability below which such a request is held for doubt_silence_ms instead."
    )
    doubt_silence_ms: int = Field(
        1500, description="Silence that ends a request Smart Turn thinks is unfinished (milliseconds)."
    )
    speculative_reply: bool = Field(
        True, description="Plan the reply and synthesize its first phrase during the silence; commit on the decision."
    )


class AsrSettings(BaseModel):
    model: Literal["tiny.en", "base"] = "tiny.en"
    threads: int = 2
    beam_size: int = Field(1, description="Beam of partial decodes (greedy keeps up with speech).")
    final_beam_size: int = Field(5, description="Beam of the (speculative) final decode: WER 0.12 → 0.09 here.")
    min_window_s: float = Field(
        6.0, description="Audio is zero-padded to at least this length before decoding (limits looping)."
    )
    fallback_window_s: float = Field(
        10.0,
        description="Window of the re-decode when a short-window result looks looped (0 disables); if that "
        "still looks looped, a last re-decode on Whisper's 30 s window.",
    )
    timestamp_cut: bool = Field(
        False,
        description="Final short-window decode with Whisper's timestamps; segments starting after the audio "
        "ended (in the zero padding) are dropped before the loop checks (docs/experiments/asr.md).",
    )
    n_best: int = Field(
        5, ge=1, le=10,
        description="Hypotheses a final beam decode keeps (at most final_beam_size): the others are parsed when the "
                    "top one holds a value the domain does not know (nlu.lexicon_domains; services/nlu/guard.py). "
                    "1: the top one only.",
    )
    partial_interval_ms: int = Field(300, description="New speech between two partial hypotheses.")
    tokens_per_second: float = Field(6.0, description="Token cap per second of speech (plus a small floor).")
    speculative: bool = Field(True, description="Decode at the first silence so the final is ready at the endpoint.")
    use_prompt_hints: bool = Field(True, description="Prompt Whisper with the dialog's expected answers (speech hints).")
    domain_hints: bool = Field(
        False,
        description="Also prompt with domain vocabulary (services/asr/hints.py). Off: measured worse overall "
        "(`quickturn bench asr`, docs/experiments/asr.md).",
    )
    hint_domains: list[str] = Field(
        default_factory=list,
        description="Prime Whisper with the closed vocabulary (categorical slot values) of these domains, "
        "e.g. [\"coffee\"] for a kiosk that only takes orders (docs/pipeline.md). Empty: no priming.",
    )
    max_batch: int = Field(
        4, ge=1, le=64,
        description="Most streams whose pending decodes the embedded ASR runs in one call (1: no cross-stream "
                    "batching; services/asr/batching.py, docs/scaling.md).",
    )
    batch_delay_ms: float = Field(
        0.0, ge=0, le=1000, description="How long an idle decoder waits for more requests to batch (0: start at once).",
    )
    batch_finals: bool = Field(
        False, description="Batch the beam-search finals too (measured slower at 4 streams here: docs/scaling.md).",
    )


class TtsSettings(BaseModel):
    engine: Literal["piper", "espeak"] = "piper"
    chunk_ms: int = Field(40, description="Reply audio is sent in chunks of this length (fast barge-in).")
    espeak_voice: str = "en-us"
    cache_phrases: int = Field(256, description="Synthesized phrases kept in an LRU cache (0 disables).")
    max_lead_s: float = Field(
        3.0, gt=0, le=600,
        description="For a listener playing in real time (the web server), the next phrase is synthesized only "
                    "when less than this much reply audio is left to play (seconds): a long reply does not take "
                    "the CPU all at once, and a reply cut short by barge-in was not synthesized for nothing.",
    )


class BackendSettings(BaseModel):
    uri: str = Field("embedded", description="embedded | triton://HOST:PORT | riva://HOST:PORT")
    timeout_s: float = Field(10.0, gt=0, description="Transport timeout of one remote call, model checks at start included (seconds).")
    deadline_s: float = Field(
        1.5, gt=0, le=60,
        description="Longest wait for a remote stage during a turn (seconds); past it the turn goes on with the local fallback.",
    )
    retry_after_s: float = Field(
        5.0, ge=0, le=3600,
        description="After a remote stage fails, its calls go to the local fallback for this long before the server is tried again (seconds).",
    )
    fallback: bool = Field(True, description="Use the local baseline (tiny.en, rule tagger, keyword NLU, espeak-ng) when a remote stage fails.")


class DialogSettings(BaseModel):
    backend: str = Field(
        "embedded", description="embedded | rasa://HOST:PORT (a Rasa server's REST channel, dialog/rasa_backend.py)"
    )
    timeout_s: float = Field(5.0, description="Longest wait for a remote dialog server per turn (seconds).")
    sound_alike: bool = Field(
        True, description="A short reply to a question with options fills the option it clearly sounds like "
                          "(\"maricano\" → americano; core/sound_alike.py).",
    )
    rasa_nlu: Literal["rasa", "quickturn"] = Field(
        "rasa", description="What Rasa gets: the cleaned text (rasa) or QuickTurn's intent/slots as /intent{...}."
    )


class Settings(BaseSettings):
    """Everything configurable in QuickTurn, in one place."""

    model_config = SettingsConfigDict(env_prefix="QUICKTURN_", env_nested_delimiter="__", extra="forbid")

    audio: AudioSettings = AudioSettings()
    vad: VadSettings = VadSettings()
    turn: TurnSettings = TurnSettings()
    asr: AsrSettings = AsrSettings()
    tts: TtsSettings = TtsSettings()
    backend: BackendSettings = BackendSettings()
    dialog: DialogSettings = DialogSettings()
    web: dict[str, Any] = Field(
        default_factory=dict,
        description="Web transport section, validated by assistant.web.settings.WebSettings "
        "(host, port, token, allowed_origins, limits).",
    )
    models_dir: Path = REPO_ROOT / "models"
    data_dir: Path = Field(REPO_ROOT / "var", description="Generated audio, databases, caches.")
    shared_dir: Path = REPO_ROOT.parent / "shared"
    disfluency: Literal["auto", "bert", "rules"] = "auto"
    nlu: Literal["auto", "bert", "keywords"] = "auto"
    nlu_guard: bool = Field(
        True,
        description="Let the NLU overrule disfluency removals that cut slot words out of a command "
        "(services/nlu/guard.py); costs one or two more NLU calls on turns with removals.",
    )
    lexicon_domains: list[str] = Field(
        default_factory=lambda: ["coffee"],
        description="Domains whose closed slot vocabulary a misheard transcript is snapped to before the NLU "
        "(\"light rose\" → light roast; domains/lexicon.py); the snapped text wins only when its parse has one of "
        "those domains' intents. Empty: off.",
    )
    lexicon_threshold: float = Field(
        0.75, ge=0, le=1, description="Lowest sound-alike score of a snapped span (chosen on barista-dev's tune half).",
    )


def read_config_file(path: Path) -> dict[str, Any]:
    """A settings file's values (YAML, TOML or JSON by suffix), unvalidated."""
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    if path.suffix == ".toml":
        import tomllib

        return tomllib.loads(text)
    return yaml.safe_load(text) or {}


def merge_settings(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base``, section by section (nested dicts merge, other values replace)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_settings(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(config_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build settings from file, environment and explicit overrides (highest priority).

    Args:
        config_file: a YAML/TOML/JSON file; ``None`` means ``$QUICKTURN_CONFIG`` if set.
        overrides: nested dict of values from CLI flags.
    """
    values: dict[str, Any] = {}
    path = config_file or os.environ.get("QUICKTURN_CONFIG")
    if path:
        p = Path(path)
        if not p.is_file():
            raise InvalidInput(f"config file not found: {p}")
        values = read_config_file(p)
    # Environment wins over the file: construct from env first, then merge.
    env_settings = Settings().model_dump(exclude_unset=True)
    values = merge_settings(values, env_settings)
    if overrides:
        values = merge_settings(values, overrides)
    try:
        return Settings(**values)
    except Exception as exc:  # pydantic.ValidationError
        raise InvalidInput(f"invalid settings: {exc}") from exc
