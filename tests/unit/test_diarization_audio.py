"""The diarized path decodes its upload once: ``decode_whole`` fills one array (grown when the
container declared less, stopped past the limit), and the transcriber's windows are views of it
(``windows_of``), resampled only when the engine wants another rate."""

from __future__ import annotations

import numpy as np

from tests.support.audio_samples import pcm16_wav
from voxserve.audio.types import AudioClip
from voxserve.core.diarization import decode_whole, windows_of

RATE = 16000


def ramp(seconds: float) -> bytes:
    return pcm16_wav(0.5 * np.sin(np.arange(round(seconds * RATE)) / 50), RATE)


def test_decode_whole_grows_past_a_short_declaration_and_stops_past_the_limit() -> None:
    assert len(decode_whole(ramp(25.0), RATE, seconds=1.0).samples) == 25 * RATE
    assert len(decode_whole(ramp(25.0), RATE, seconds=25.0).samples) == 25 * RATE
    stopped = decode_whole(ramp(25.0), RATE, seconds=1.0, limit=5.0)
    assert 6 * RATE < len(stopped.samples) < 25 * RATE


async def test_windows_are_views_of_the_decoded_clip() -> None:
    clip = AudioClip(np.zeros(70 * RATE, dtype=np.float32), RATE)
    first, duration, rest = await windows_of(clip, RATE, 30.0)
    assert rest is not None
    later = [chunk async for chunk in rest]
    assert (first.duration, duration, [len(c) / RATE for c in later]) == (30.0, 70.0, [30.0, 10.0])
    assert all(np.shares_memory(c, clip.samples) for c in [first.samples, *later])
    short, _, none = await windows_of(AudioClip(clip.samples[: 5 * RATE], RATE), RATE, 30.0)
    assert (short.duration, none) == (5.0, None)


async def test_windows_at_another_rate_are_resampled() -> None:
    clip = AudioClip(np.zeros(40 * RATE, dtype=np.float32), RATE)
    first, _, rest = await windows_of(clip, 8000, 30.0)
    assert rest is not None
    assert (len(first.samples), first.sample_rate) == (30 * 8000, 8000)
    assert [len(c) async for c in rest] == [10 * 8000]
