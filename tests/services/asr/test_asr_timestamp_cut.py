"""The timestamp-checked cut: Whisper segments that start in the zero padding are dropped.

Unit tests feed token id lists (``<|0.00|>`` is the id after ``<|notimestamps|>``,
each further id 20 ms later); the last test decodes a committed piper rendering with the
real model.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.settings import REPO_ROOT
from core.text import normalize_transcript
from services.asr.decoder import Segment, cut_after_speech, parse_segments, timestamped_text

TB = 50363  # <|0.00|> of tiny.en
EOT = 50256


def ts(seconds: float) -> int:
    return TB + round(seconds / 0.02)


def test_segments_are_parsed_from_timestamp_pairs() -> None:
    ids = [ts(0.0), 11, 12, ts(2.0), ts(2.0), 13, ts(3.5), ts(6.0), 14, 15]
    assert parse_segments(ids, TB) == [
        Segment(0.0, 2.0, (11, 12)),
        Segment(2.0, 3.5, (13,)),
        Segment(6.0, None, (14, 15)),  # the decode stopped inside it (token cap)
    ]
    # A closing timestamp with no text after it makes no segment; text before any timestamp starts at 0.
    assert parse_segments([11, ts(1.0)], TB) == [Segment(0.0, 1.0, (11,))]
    assert parse_segments([ts(0.0), 11, ts(1.0), ts(1.0)], TB) == [Segment(0.0, 1.0, (11,))]
    assert parse_segments([], TB) == []


def test_only_segments_starting_after_the_audio_are_cut() -> None:
    segs = [Segment(0.0, 2.0, (1,)), Segment(2.0, 2.5, (2,)), Segment(2.5, 4.0, (3,)), Segment(4.0, 6.0, (4,))]
    # 2.2 s of audio, 0.4 s margin: a segment starting at 2.5 s may be the end of the speech; one at 4.0 s is padding.
    assert cut_after_speech(segs, 2.2, 0.4) == segs[:3]
    assert cut_after_speech(segs, 2.2, 0.2) == segs[:2]
    assert cut_after_speech(segs, 6.0, 0.4) == segs
    # Timestamps only increase: everything from the first late segment on goes.
    odd = [Segment(0.0, 1.0, (1,)), Segment(5.0, 5.5, (2,)), Segment(1.0, 2.0, (3,))]
    assert cut_after_speech(odd, 2.0) == odd[:1]


def test_timestamped_text_drops_the_padding_loop() -> None:
    # "set a timer" (0-2 s) decoded again from the padding at 2.9 s and 4.8 s, then EOT.
    words = [900, 901, 902]
    generated = [ts(0.0), *words, ts(2.0), ts(2.9), *words, ts(4.6), ts(4.8), *words, ts(6.0), EOT]
    assert timestamped_text(generated, TB, EOT, speech_s=2.2) == (words, True)
    assert timestamped_text(generated, TB, EOT, speech_s=5.0) == (words * 3, False)


def test_trailing_segments_without_words_are_dropped() -> None:
    dots = 1399  # stands for "..."
    generated = [ts(0.0), 900, 901, ts(5.0), ts(5.0), *[dots] * 20]  # ran into the token cap inside the speech
    has_words = lambda ids: dots not in ids  # noqa: E731
    assert timestamped_text(generated, TB, EOT, 5.2, has_words=has_words) == ([900, 901], True)
    assert timestamped_text(generated, TB, EOT, 5.2) == ([900, 901, *[dots] * 20], False)


UTTERANCE = "turn off the lamp in the bedroom"


# A piper-joe rendering of UTTERANCE from `quickturn setup`'s generated set, committed: piper's
# synthesis is not deterministic, and on some renderings Whisper's loop starts inside the speech,
# where no timestamp cut can see it (a clean clone's fresh rendering failed this way once).
LAMP_WAV = REPO_ROOT / "tests" / "fixtures" / "lamp_piper_joe.wav"
LAMP_SHA256 = "039e159c2fac87be3befbe31265bf4fc7c69f14504003da0b6be9455c0e2376b"


@pytest.fixture(scope="module")
def lamp_audio() -> np.ndarray:
    """The committed piper-joe file, trimmed as `bench asr` does."""
    import hashlib

    from assistant.commands.bench_asr import speech_region
    from core.audio import load_audio
    from services.vad.silero import SileroVad

    assert hashlib.sha256(LAMP_WAV.read_bytes()).hexdigest() == LAMP_SHA256
    return speech_region(load_audio(LAMP_WAV), SileroVad())


def test_real_model_timestamped_final_needs_no_re_decode(components, lamp_audio) -> None:  # type: ignore[no-untyped-def]
    """Without timestamps the 6 s window loops on this file (the utterance 3x, then a re-decode); with them it
    gives the utterance once, without a long-window re-decode."""
    dec = components.asr.decoder
    saved = dec.timestamp_cut
    try:
        dec.timestamp_cut = False
        plain = dec.decode(lamp_audio, None, final=True)
        dec.timestamp_cut = True
        hyp = dec.decode(lamp_audio, None, final=True)
        partial = dec.decode(lamp_audio, None, final=False)  # partials stay without timestamps
    finally:
        dec.timestamp_cut = saved
    assert normalize_transcript(plain.raw_text).count("lamp") >= 2, plain  # the loop this test is about
    assert (hyp.text, hyp.fallback) == (UTTERANCE, False), hyp
    assert normalize_transcript(hyp.raw_text) == UTTERANCE, hyp.raw_text
    assert not partial.fallback
