"""The dialog's speaker volume (SetVolume) applied to what the assistant says (issue 26)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from assistant import output_volume
from assistant.components import Components
from assistant.pipeline import Conversation
from assistant.turn_result import TurnResult, collect
from core.settings import load_settings


def test_levels_map_to_gains_and_five_is_the_voice_as_synthesized() -> None:
    pcm = np.array([1000, -1000, 30000], np.int16)
    assert output_volume.apply(pcm, 5) is pcm
    assert output_volume.gain(0) == 0.0 and not output_volume.apply(pcm, 0).any()
    assert output_volume.gain(7) == pytest.approx(10 ** (6 / 20))
    loud = output_volume.apply(pcm, 10)
    assert loud.dtype == np.int16 and loud[2] == 32767 and loud[1] < -1000  # limited, not wrapped


def test_a_mute_reply_is_heard_and_notifications_are_not_silenced() -> None:
    v = output_volume.SessionVolume()
    assert v.for_reply(7) == 7
    assert v.for_reply(0) == 7  # "Okay, muted." at the level before it
    assert v.level == 0 and v.for_notification() == 7
    assert v.for_reply(0) == 0  # the next replies while muted are not heard
    assert v.for_reply(None) == 0  # a backend without volume leaves it as it is
    assert v.for_reply(6) == 6 and v.for_notification() == 6


@pytest.mark.slow
def test_turning_the_volume_up_makes_the_next_reply_louder(tmp_path: Path) -> None:
    settings = load_settings(overrides={"nlu": "keywords", "tts": {"engine": "espeak"}})
    components = Components.load(settings, need_asr=False, db_path=tmp_path / "d.sqlite")

    async def go() -> list[TurnResult]:
        conv = Conversation(components, "vol", barge_in=False)
        out = []
        for text in ("what can you do", "turn the volume up", "turn the volume up", "what can you do", "mute",
                     "what can you do"):
            await conv.say(text)
            out.append(TurnResult.from_events(collect(conv)))
        return out

    before, up1, up2, after, mute, muted = asyncio.run(go())
    assert before.reply == after.reply and before.reply_audio is not None and after.reply_audio is not None
    assert up1.intent == up2.intent == "SetVolume"
    ratio = float(np.abs(after.reply_audio.astype(np.float64)).mean() / np.abs(before.reply_audio.astype(np.float64)).mean())
    assert ratio == pytest.approx(10 ** (6 / 20), rel=0.05), ratio  # two steps of 3 dB
    assert mute.reply_audio is not None and np.abs(mute.reply_audio).max() > 0  # the mute reply is heard
    assert muted.reply and (muted.reply_audio is None or not np.abs(muted.reply_audio).any())
