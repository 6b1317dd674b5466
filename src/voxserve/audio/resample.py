"""Sample-rate conversion with soxr (high quality), whole-clip and chunked."""

from __future__ import annotations

import numpy as np
import soxr

from voxserve.audio.types import Samples

_QUALITY = "HQ"


def as_samples(samples: object) -> Samples:
    """Return ``samples`` as a contiguous 1-D float32 array (no copy when it already is one)."""
    array = np.ascontiguousarray(samples, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"expected mono (1-D) samples, got shape {array.shape}")
    return array


def _check_rates(from_rate: int, to_rate: int) -> None:
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")


def resample(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """Resample mono ``samples`` from ``from_rate`` to ``to_rate`` Hz.

    The output has ``round(len(samples) * to_rate / from_rate)`` samples. Equal rates return the
    input unchanged (as float32).
    """
    _check_rates(from_rate, to_rate)
    samples = as_samples(samples)
    if from_rate == to_rate or len(samples) == 0:
        return samples
    out = soxr.resample(samples, from_rate, to_rate, quality=_QUALITY)
    return as_samples(out)


class StreamResampler:
    """Resample a mono stream that arrives in chunks of any length.

    Feed chunks to :meth:`process` and call :meth:`flush` once at the end to get the tail the
    filter still holds; the concatenated output then equals :func:`resample` of the whole input
    (same length). After ``flush`` the resampler is reset and may be used for a new stream.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        _check_rates(from_rate, to_rate)
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream: soxr.ResampleStream | None = None
        if from_rate != to_rate:
            self._stream = soxr.ResampleStream(
                from_rate, to_rate, 1, dtype="float32", quality=_QUALITY
            )

    def process(self, chunk: Samples) -> Samples:
        """Resample one chunk; may return fewer samples than expected (the filter's delay)."""
        chunk = as_samples(chunk)
        if self._stream is None:
            return chunk
        return as_samples(self._stream.resample_chunk(chunk, last=False))

    def flush(self) -> Samples:
        """Return the remaining output at the end of the stream and reset for reuse."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        tail = as_samples(self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        self._stream.clear()
        return tail
