"""Pitch-preserving time stretch (WSOLA), for engines that have no pace control of their own."""

from __future__ import annotations

import numpy as np

from voxserve.audio.types import Samples


def time_stretch(samples: Samples, speed: float, sample_rate: int) -> Samples:
    """Play ``samples`` ``speed`` times faster at the same pitch (WSOLA).

    Windows of 40 ms overlap by half at the output; each is taken from around its nominal place in
    the input, shifted by up to 10 ms to where it best continues the previous window, which
    keeps the waveform periodic across joins (no phasing, unlike a plain overlap-add).
    """
    size = 2 * max(1, int(0.02 * sample_rate))
    hop = size // 2
    tolerance = int(0.01 * sample_rate)
    window = np.hanning(size + 1)[:size]  # periodic Hann: halves overlapped sum to 1
    out_len = round(len(samples) / speed)
    frames = out_len // hop + 2
    padded = np.pad(samples.astype(np.float64), (hop + tolerance, int(frames * hop * speed) + size))
    out = np.zeros(frames * hop + size)
    previous = tolerance
    for k in range(frames):
        nominal = tolerance + round(k * hop * speed)
        if k > 0:
            natural = padded[previous + hop : previous + hop + size]
            around = padded[nominal - tolerance : nominal + tolerance + size]
            nominal += int(np.argmax(np.correlate(around, natural, mode="valid"))) - tolerance
        out[k * hop : k * hop + size] += window * padded[nominal : nominal + size]
        previous = nominal
    return out[hop : hop + out_len].astype(np.float32)
