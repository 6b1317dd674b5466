"""Decode audio bytes with PyAV directly (independent of voxserve.audio, to check its output)."""

from __future__ import annotations

import io

import av
import numpy as np


def decode_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float32 samples and the stream's sample rate."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = [
            out.to_ndarray().reshape(-1)
            for frame in container.decode(stream)
            for out in resampler.resample(frame)
        ]
        parts += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), rate
