"""The Whisper duration cap lets through the tokens it promises (real model, real synthesized speech).

ctranslate2 stops a Whisper decode at ``max_length`` tokens in all *and* at
``max_length // 2`` generated tokens. The cap used to pass ``prompt + max_tokens``,
which halved it for prompt-less decodes and silently cut the end of long, fast
utterances (coffee orders lost "of cream").
"""

from __future__ import annotations

import numpy as np
import pytest

from core.audio import resample, to_pcm16

ORDER = "brew an iced mocha with lots of soy milk and a bit of brown sugar"


@pytest.fixture(scope="module")
def order_audio(components) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A 4 s grammar order in the piper voice, 16 kHz int16, with lead-in and trailing silence."""
    pcm = components.tts.synthesize(ORDER)
    audio = to_pcm16(resample(pcm.astype(np.float32) / 32768.0, components.tts.sample_rate_hz, 16000))
    return np.concatenate([np.zeros(4800, np.int16), audio, np.zeros(3200, np.int16)])


def test_max_length_allows_exactly_the_capped_tokens(components, order_audio) -> None:  # type: ignore[no-untyped-def]
    """Against ctranslate2 itself: with and without a prompt, the decode stops at max_tokens, not before."""
    import ctranslate2

    from services.asr.decoder import whisper_max_length

    dec = components.asr.decoder
    audio = np.concatenate([order_audio.astype(np.float32) / 32768.0, np.zeros(16000 * 6, np.float32)])[: 16000 * 6]
    mel = dec.features(audio)
    mel = np.ascontiguousarray(mel[:, : mel.shape[-1] - mel.shape[-1] % 2][None], dtype=np.float32)
    enc = dec.model.encode(ctranslate2.StorageView.from_array(mel), to_cpu=False)
    for prompt in (dec.prompt_tokens(None), dec.prompt_tokens(["latte", "americano", "cappuccino"] * 4)):
        for max_tokens in (8, 12):
            result = dec.model.generate(enc, [prompt], beam_size=1, max_length=whisper_max_length(len(prompt), max_tokens))
            assert len(result[0].sequences_ids[0]) == max_tokens, (len(prompt), max_tokens)


def test_long_order_keeps_its_last_words(components, order_audio) -> None:  # type: ignore[no-untyped-def]
    """The final decode of a ~4 s order reaches its end ("... brown sugar"); the halved cap stopped at "a bit of"."""
    hyp = components.asr.decoder.decode(order_audio, None, final=True)
    assert hyp.text.split()[-2:] == ["brown", "sugar"], hyp.text
