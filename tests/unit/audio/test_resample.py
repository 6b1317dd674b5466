"""soxr resampling, whole and chunked."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.unit.audio.signals import dominant_frequency, tone
from voxserve.audio.resample import StreamResampler, resample


@pytest.mark.parametrize(("from_rate", "to_rate"), [(24000, 16000), (22050, 48000), (44100, 8000)])
def test_resample_changes_length_by_the_ratio_and_keeps_pitch(from_rate: int, to_rate: int) -> None:
    samples = tone(1.3, from_rate)

    out = resample(samples, from_rate, to_rate)

    assert out.dtype == np.float32
    assert abs(len(out) - len(samples) * to_rate / from_rate) <= 1
    assert dominant_frequency(out, to_rate) == pytest.approx(440, abs=1)


def test_equal_rates_and_empty_input_are_no_ops() -> None:
    samples = tone(0.1, 16000)

    assert resample(samples, 16000, 16000) is samples
    assert len(resample(np.zeros(0, np.float32), 16000, 24000)) == 0


def test_stream_resampler_matches_whole_resampling_for_uneven_chunks() -> None:
    samples = tone(1.0, 24000)
    resampler = StreamResampler(24000, 16000)
    bounds = np.cumsum([0, 1, 37, 0, 4800, 11000, 3, 8159])
    assert bounds[-1] == len(samples)

    pieces = [resampler.process(samples[a:b]) for a, b in itertools.pairwise(bounds)]
    pieces.append(resampler.flush())
    streamed = np.concatenate(pieces)

    whole = resample(samples, 24000, 16000)
    assert len(streamed) == len(whole)
    np.testing.assert_allclose(streamed, whole, atol=1e-4)


def test_stream_resampler_can_be_reused_after_flush_and_passes_through_equal_rates() -> None:
    resampler = StreamResampler(24000, 12000)
    first = np.concatenate([resampler.process(tone(0.5, 24000)), resampler.flush()])
    second = np.concatenate([resampler.process(tone(0.5, 24000)), resampler.flush()])
    np.testing.assert_allclose(first, second, atol=1e-6)

    same = StreamResampler(16000, 16000)
    chunk = tone(0.1, 16000)
    assert same.process(chunk) is chunk
    assert len(same.flush()) == 0


def test_rejects_bad_rates_and_multichannel_input() -> None:
    with pytest.raises(ValueError, match="positive"):
        resample(tone(0.1, 16000), 0, 16000)
    with pytest.raises(ValueError, match="mono"):
        resample(np.zeros((2, 10), np.float32), 16000, 8000)
