"""Sans-I/O pieces of the ASR and TTS stages, and model file verification."""

from __future__ import annotations

import pytest

from core.errors import ModelFileError
from core.numbers import spell_numbers, spoken_number
from core.text import normalize_transcript, split_phrases
from services.asr.decoder import cut_loops, cut_restart, looks_looped
from services.asr.stabilizer import PrefixStabilizer
from services.model_files import sha256_file, verify_files


def test_numbers_are_spelled_as_spoken() -> None:
    assert spoken_number(0) == "zero"
    assert spoken_number(123) == "one hundred twenty three"
    assert spell_numbers("10 of clubs").split() == ["ten", "of", "clubs"]
    assert normalize_transcript("Wake me up at 7:30.") == "wake me up at seven thirty"
    assert normalize_transcript("Wake me up at 730.") == "wake me up at seven thirty"
    assert normalize_transcript("Wake me up at 7.30.") == "wake me up at seven thirty"
    assert normalize_transcript("In 1995, Mr. Smith paid $3,000!") == "in nineteen ninety five mister smith paid three thousand"
    assert normalize_transcript("the 2nd of May") == "the second of may"
    # Coffee sizes as Whisper writes them; the grammar says "sixteen ounce".
    assert normalize_transcript("A 16oz latte and an 8 oz. mocha") == "a sixteen ounce latte and an eight ounce mocha"


def test_loop_signatures() -> None:
    assert looks_looped("go forward ten meters go forward ten".split())
    assert looks_looped("what time is it what".split())
    assert looks_looped("five five five five".split())
    assert not looks_looped("set a timer for five minutes".split())
    assert not looks_looped("eight of spades four of clubs seven of hearts".split())


def test_rate_checked_loop_cut_keeps_real_repeats() -> None:
    # "five five" spoken in one second is a plausible rate: kept.
    assert cut_loops(["five", "five"], speech_s=1.0) == (["five", "five"], False)
    # Nine "five"s in one second is a loop: cut down to a plausible length.
    words, cut = cut_loops(["five"] * 9, speech_s=1.0)
    assert cut and len(words) <= 6


def test_stabilizer_never_takes_back_stable_words() -> None:
    s = PrefixStabilizer()
    assert s.update("set a".split()) == 0
    assert s.update("set a timer".split()) == 2
    assert s.update("set a timer for".split()) == 3
    # The decoder wavers on the tail: the stable prefix stays.
    assert s.update("set a time four".split()) == 0 or s.stable == ["set", "a", "timer"]
    assert s.stable == ["set", "a", "timer"]


def test_first_phrase_is_short() -> None:
    phrases = split_phrases("Okay, your timer for five minutes is running. I will tell you when it is done.")
    assert phrases[0] == "Okay,"
    assert len(phrases) == 3
    long_first = split_phrases("It will be sunny and warm in Paris tomorrow with a high of twenty two degrees")
    assert len(long_first[0].split()) <= 6


def test_model_checksum_mismatch_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights")
    good = sha256_file(f)
    assert verify_files(tmp_path, {"model.bin": good}, what="test") == tmp_path
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        verify_files(tmp_path, {"model.bin": "0" * 64}, what="test")
    with pytest.raises(ModelFileError, match="missing"):
        verify_files(tmp_path, {"other.bin": good}, what="test")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Truncated restarts after a sentence end: cut without a long-window re-decode.
        ("Set a timer for 5 minutes. Set a", "set a timer for five minutes"),
        ("What's the date today? What's", "what's the date today"),
        ("Who won the football game last night? Who won the", "who won the football game last night"),
        # A full repeat may be real speech: left to the long-window decode.
        ("Place some jazz music. Place some jazz music", None),
        ("Yes. Yes.", None),
        # Repeats without a sentence end, or a different second sentence: not a restart.
        ("5 5 5 5 5", None),
        ("10 of close 10 of close 10", None),
        ("Stop. Turn it off", None),
        ("Set a timer for five minutes", None),
    ],
)
def test_cut_restart(raw: str, expected: str | None) -> None:
    kept = cut_restart(raw)
    assert (None if kept is None else " ".join(kept)) == expected


def test_fallback_windows_try_ten_seconds_then_whisper_s_thirty() -> None:
    from services.asr.decoder import fallback_windows

    assert fallback_windows(10.0, 2.5) == [10.0, 30.0]
    assert fallback_windows(30.0, 2.5) == [30.0]
    # Speech longer than the first window: that window would decode the same audio again.
    assert fallback_windows(10.0, 12.0) == [30.0]
    assert fallback_windows(10.0, 30.0) == [30.0]


def test_the_re_decode_stops_at_the_first_window_that_does_not_look_looped() -> None:
    import numpy as np

    from core.types import Hypothesis
    from services.asr.decoder import WhisperDecoder

    looped = {6.0: True, 10.0: False, 30.0: False}
    calls: list[float] = []

    def fake_window(audio, speech_s, window_s, hints, beam, timestamps=False, n_best=1):  # type: ignore[no-untyped-def]
        calls.append(window_s)
        return Hypothesis(f"w{window_s:g}", "", -0.1), looped[window_s]

    dec = object.__new__(WhisperDecoder)  # no model: the window decode is scripted
    dec.min_window_s, dec.fallback_window_s, dec.loop_guard, dec.timestamp_cut = 6.0, 10.0, True, False
    dec.beam_size = dec.final_beam_size = dec.n_best = 1
    dec._decode_window = fake_window  # type: ignore[method-assign]
    pcm = np.zeros(16000 * 2, np.int16)
    hyp = dec.decode(pcm, final=True)
    assert (calls, hyp.text, hyp.fallback, hyp.fallback_window_s) == ([6.0, 10.0], "w10", True, 10.0)
    calls.clear()
    looped[10.0] = True  # still looped on 10 s: Whisper's native 30 s window decides
    hyp = dec.decode(pcm, final=True)
    assert (calls, hyp.text, hyp.fallback_window_s) == ([6.0, 10.0, 30.0], "w30", 30.0)
    calls.clear()
    assert dec.decode(pcm, final=False).text == "w6" and calls == [6.0]  # partials never re-decode


def test_cut_periodic_keeps_one_copy_only_at_an_impossible_rate() -> None:
    from services.asr.decoder import cut_periodic

    looped = "wake me up at seven thirty wake me up at seven thirty wake me up at seven".split()
    assert cut_periodic(looped, speech_s=2.2) == "wake me up at seven thirty".split()
    # The same words over 6 s of audio could be a person repeating themselves: leave it to the re-decode.
    assert cut_periodic(looped, speech_s=6.0) is None
    assert cut_periodic("set a timer for five minutes please".split(), speech_s=1.0) is None


def test_repeated_trigram_is_a_loop_only_at_an_impossible_rate() -> None:
    order = "can i have a double shot americano with a little bit of soy milk and a little bit of brown sugar".split()
    assert looks_looped(order)  # without timing, as before
    assert not looks_looped(order, speech_s=5.2)  # 21 words in 5.2 s: a person ordering
    assert looks_looped(order, speech_s=3.0)  # 7 words a second: the decoder
    assert looks_looped("go forward ten meters go forward ten".split(), speech_s=5.0)  # restart rule: no rate needed
