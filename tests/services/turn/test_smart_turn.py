"""Smart Turn v3.2 as a file: pinned, verified, fed exactly as Pipecat feeds it, and right on real speech.

The behaviour checks use real coffee orders (barista-dev) and one generated piper-joe utterance.
Each turn is built as the pipeline will build it: the speech up to a word's end (faster-whisper
tiny.en word timestamps), then the pause heard so far as digital silence. Measured numbers are
in the comments; the asserts keep a margin.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.audio import load_audio
from core.errors import InvalidAudio, ModelFileError
from services.model_files import SMART_TURN_V3, WHISPER_TINY_EN, verified_dir, verify_files
from services.turn.smart_turn import MODEL_FILE, SmartTurn, load_smart_turn
from tests.conftest import REPO, utterance

RATE = 16_000


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return load_smart_turn()


@pytest.fixture(scope="module")
def pipecat_features():  # type: ignore[no-untyped-def]
    """Pipecat's own numpy feature code, loaded by path (a plain numpy module) without importing pipecat."""
    path = SMART_TURN_V3.directory().parent / "_whisper_features.py"
    spec = importlib.util.spec_from_file_location("_pipecat_whisper_features_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert not any(name.split(".")[0] == "pipecat" for name in sys.modules)
    return module.compute_whisper_log_mel_features


def pipecat_window(pcm: np.ndarray) -> np.ndarray:
    """Pipecat 1.14.0's fitting of a turn to the model (base_smart_turn.py, local_smart_turn_v3.py)."""
    audio = pcm.astype(np.float32) / 32768.0
    max_samples = 8 * RATE
    if len(audio) > max_samples:
        return audio[-max_samples:]
    return np.pad(audio, (max_samples - len(audio), 0), mode="constant", constant_values=0)


def silence(ms: int) -> np.ndarray:
    return np.zeros(ms * RATE // 1000, np.int16)


# ------------------------------------------------------------------ the file


def test_model_loads_from_the_pinned_package_without_importing_pipecat() -> None:
    """A fresh interpreter loads the sha256-checked file from pipecat-ai 1.14.0 and never imports pipecat."""
    code = (
        "import sys\n"
        "from services.turn.smart_turn import load_smart_turn\n"
        "import numpy as np\n"
        "p = load_smart_turn().probability(np.zeros(16000, np.int16))\n"
        "assert 0.0 <= p <= 1.0, p\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] == 'pipecat')\n"
        "assert not leaked, leaked\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
    assert importlib.metadata.version("pipecat-ai") == "1.14.0"
    spec = importlib.util.find_spec("pipecat")  # locates the package without importing it
    assert spec is not None and spec.submodule_search_locations
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    assert verified_dir(SMART_TURN_V3) == package_dir / "audio/turn/smart_turn/data"
    assert set(SMART_TURN_V3.files) == {MODEL_FILE}


def test_a_file_that_fails_its_sha256_is_refused() -> None:
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        verify_files(SMART_TURN_V3.directory(), {MODEL_FILE: "0" * 64}, what="pipecat")


# ------------------------------------------------------------------ features


@pytest.mark.parametrize("case", ["speech", "short-noise", "longer-than-8s", "silence"])
def test_features_equal_pipecats(case, smart_turn, pipecat_features) -> None:  # type: ignore[no-untyped-def]
    """faster-whisper's extractor plus our windowing equals Pipecat's vendored transformers extractor.

    Measured: at most 3.0e-6 apart (float32 vs Pipecat's float64 STFT), probabilities equal to 1e-7.
    """
    # A committed recording, not a generated clip: piper's synthesis differs from machine to machine, and
    # on one synthesis the two feature paths (float32 vs float64 STFT) moved the probability by 1.4e-3.
    speech = load_audio(REPO / "tests" / "fixtures" / "lamp_piper_joe.wav")
    pcm = {
        "speech": speech,
        "short-noise": (np.random.default_rng(7).standard_normal(RATE // 2) * 3000).astype(np.int16),
        "longer-than-8s": np.tile(speech, 5),
        "silence": np.zeros(RATE, np.int16),
    }[case]
    ours = smart_turn.features(pcm)
    theirs = pipecat_features(pipecat_window(pcm), do_normalize=True)
    assert ours.shape == theirs.shape == (80, 800) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
    (p_theirs,) = smart_turn._session.run(None, {"input_features": theirs[None]})
    assert abs(smart_turn.probability(pcm) - float(p_theirs.reshape(-1)[0])) < 1e-4


# ------------------------------------------------------------------ behaviour on real speech


@pytest.fixture(scope="module")
def word_times():  # type: ignore[no-untyped-def]
    """Word end times (s) of a clip, from faster-whisper tiny.en (the verified pinned model)."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(verified_dir(WHISPER_TINY_EN)), device="cpu", compute_type="int8", cpu_threads=1)

    def words(pcm: np.ndarray) -> list[tuple[str, float]]:
        audio = pcm.astype(np.float32) / 32768.0
        segments, _ = model.transcribe(audio, language="en", beam_size=1, word_timestamps=True)
        return [(w.word.strip(" .,?!").lower(), w.end) for s in segments for w in s.words]

    return words


def test_a_complete_request_scores_high(smart_turn, utterances) -> None:  # type: ignore[no-untyped-def]
    """'set a timer for five minutes' as heard, with its 0.37 s of trailing silence: measured 0.986."""
    pcm = load_audio(utterance(utterances, "set a timer for five minutes")["path"])
    assert smart_turn.probability(pcm) > 0.9


# Real coffee orders from barista-dev (real speakers, fixed audio; piper's synthesis differs from run to
# run and moved these scores by up to 0.8), each cut right after "with", where a speaker may pause to
# choose what comes next: (recording, the next word). Measured with 200 ms of silence: complete
# 0.983 / 0.976 / 0.982 / 0.988, cut 0.019 / 0.013 / 0.029 / 0.025.
CUTS = [
    ("audio/1698c3c6-", "brown"),  # i'd like a triple shot coffee with | brown sugar
    ("audio/1ea9f810-", "a"),  # get me a small iced coffee with | a lot of skim milk and some brown sugar
    ("audio/2630f6ea-", "skim"),  # brew a 16-ounce mocha with | skim milk and sweetener
    ("audio/3135ac62-", "a"),  # get me a 20-ounce single shot americano with | a little bit of sweetener
]


@pytest.mark.parametrize(("recording", "next_word"), CUTS)
def test_a_real_order_cut_after_with_scores_low_and_the_whole_order_high(  # type: ignore[no-untyped-def]
    recording, next_word, smart_turn, shared_dir, word_times
) -> None:
    directory = shared_dir / "data" / "barista-dev"
    (path,) = [p for p in (directory / "audio").iterdir() if f"audio/{p.name}".startswith(recording)]
    pcm = load_audio(path)
    words = word_times(pcm)
    names = [w for w, _ in words]
    i = names.index("with")
    assert names[i + 1] == next_word, words  # the ASR heard the order we mean to cut
    cut = np.concatenate([pcm[: round(words[i][1] * RATE)], silence(200)])
    complete = np.concatenate([pcm[: round(words[-1][1] * RATE)], silence(200)])
    p_cut, p_complete = smart_turn.probability(cut), smart_turn.probability(complete)
    assert p_complete > 0.9, (p_cut, p_complete)
    assert p_cut < 0.2, (p_cut, p_complete)


def test_only_the_last_eight_seconds_count(smart_turn, utterances) -> None:  # type: ignore[no-untyped-def]
    """Audio older than the window changes nothing: the model judges how the turn ends."""
    pcm = load_audio(utterance(utterances, "set a timer for five minutes")["path"])
    noise = (np.random.default_rng(1).standard_normal(3 * RATE) * 8000).astype(np.int16)
    tail = np.concatenate([silence(6000), pcm])[-8 * RATE :]
    assert smart_turn.probability(np.concatenate([noise, tail])) == smart_turn.probability(tail)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(RATE, np.float32),
        np.zeros(0, np.int16),
        np.zeros((RATE, 2), np.int16),
        [0] * RATE,
    ],
    ids=["float32", "empty", "stereo", "list"],
)
def test_bad_audio_is_invalid_audio(bad, smart_turn) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidAudio) as info:
        smart_turn.probability(bad)
    assert "\n" not in str(info.value)


def test_the_loader_shares_one_session() -> None:
    assert load_smart_turn() is load_smart_turn()


def test_one_instance_serves_several_threads(smart_turn, utterances) -> None:  # type: ignore[no-untyped-def]
    """Sessions share the model and call it through asyncio.to_thread: concurrent calls agree with serial ones."""
    from concurrent.futures import ThreadPoolExecutor

    pcm = load_audio(utterance(utterances, "turn off the lamp in the bedroom")["path"])
    clips = [pcm[: RATE // 2 * k] for k in (2, 3, 4)] * 2
    serial = [smart_turn.probability(c) for c in clips]
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(smart_turn.probability, clips)) == serial
