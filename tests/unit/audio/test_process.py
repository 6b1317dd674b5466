"""Clip helpers: storage form, trim, silence, level and denoise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.unit.audio.signals import dominant_frequency, pyav_decode, tone
from voxserve.audio.process import denoise, is_silent, rms_dbfs, to_mono_wav, trim
from voxserve.audio.types import AudioClip

RATE = 16000


def test_to_mono_wav_is_a_16_bit_wav_of_the_clip() -> None:
    clip = AudioClip(tone(0.5, RATE), RATE)

    data = to_mono_wav(clip)

    decoded = pyav_decode(data)
    assert data[:4] == b"RIFF"
    assert decoded.container == "wav"
    assert decoded.rate == RATE
    np.testing.assert_allclose(decoded.samples, clip.samples, atol=1 / 32767)


def test_trim_cuts_to_max_seconds_and_reports_what_was_removed() -> None:
    clip = AudioClip(tone(3.0, RATE), RATE)

    trimmed, removed = trim(clip, 2.5)
    untouched, nothing = trim(clip, 10.0)

    assert trimmed.duration == pytest.approx(2.5)
    assert removed == pytest.approx(0.5)
    np.testing.assert_array_equal(trimmed.samples, clip.samples[: int(2.5 * RATE)])
    assert untouched is clip
    assert nothing == 0.0
    with pytest.raises(ValueError, match="positive"):
        trim(clip, 0)


def test_rms_dbfs_and_is_silent() -> None:
    full_scale_sine = tone(1.0, RATE, amp=1.0)

    assert rms_dbfs(full_scale_sine) == pytest.approx(-3.01, abs=0.01)
    assert rms_dbfs(np.zeros(100, np.float32)) == -math.inf
    assert rms_dbfs(np.zeros(0, np.float32)) == -math.inf
    assert is_silent(np.zeros(RATE, np.float32))
    assert is_silent(np.zeros(0, np.float32))
    assert is_silent(tone(1.0, RATE, amp=0.001))  # about -63 dBFS
    assert not is_silent(tone(1.0, RATE, amp=0.1))
    assert not is_silent(tone(1.0, RATE, amp=0.001), threshold_dbfs=-70)


def test_denoise_removes_noise_and_keeps_tone_level_and_length() -> None:
    # A tone in bursts, like words with pauses, over steady white noise.
    seconds = 3.0
    t = np.arange(int(seconds * RATE)) / RATE
    active = (t % 1.0) < 0.5
    clean = tone(seconds, RATE, amp=0.3) * active
    noise = (0.03 * np.random.default_rng(3).standard_normal(len(t))).astype(np.float32)

    out = denoise(AudioClip(clean + noise, RATE))

    assert out.sample_rate == RATE
    assert len(out.samples) == len(clean)
    assert out.samples.dtype == np.float32
    residual = out.samples - clean
    noise_power_in = float(np.mean(noise[~active] ** 2))
    assert float(np.mean(residual[~active] ** 2)) < noise_power_in / 10  # > 10 dB less noise
    assert rms_dbfs(out.samples[active]) == pytest.approx(rms_dbfs(clean[active]), abs=1.0)
    assert dominant_frequency(out.samples, RATE) == pytest.approx(440, abs=1)


def test_denoise_leaves_silence_and_tiny_clips_alone() -> None:
    silence = AudioClip(np.zeros(RATE, np.float32), RATE)
    tiny = AudioClip(tone(0.01, RATE), RATE)

    assert denoise(silence) is silence
    assert denoise(tiny) is tiny
