"""Test signals and an independent PyAV decoder (so encoder tests do not trust our decoder)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from voxserve.audio.types import Samples

REPO_ROOT = Path(__file__).resolve().parents[3]


def tone(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.5) -> Samples:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(samples: Samples, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


@dataclass(frozen=True)
class Decoded:
    samples: Samples
    """Mono (channel mean) float32."""
    rate: int
    container: str

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


def pyav_decode(data: bytes) -> Decoded:
    """Decode with PyAV alone: every frame converted to planar float and averaged over channels."""
    with av.open(io.BytesIO(data)) as container:
        resampler = av.AudioResampler(format="fltp")
        parts = [
            converted.to_ndarray().mean(axis=0)
            for frame in container.decode(audio=0)
            for converted in resampler.resample(frame)
        ]
        rate = container.streams.audio[0].codec_context.sample_rate
        name = container.format.name
    return Decoded(np.concatenate(parts).astype(np.float32), rate, name)


def write_container(
    fmt: str, codec: str, samples: Samples, rate: int, *, channels: int = 1, **options: str
) -> bytes:
    """Encode ``samples`` with PyAV directly into container ``fmt`` (an input made elsewhere);
    with ``channels=2`` every channel carries the same signal."""
    layout = "stereo" if channels == 2 else "mono"
    interleaved = np.repeat(samples, channels)[np.newaxis, :]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        if options:
            stream.codec_context.options = options
        frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def shared_data_dir() -> Path | None:
    """The shared speech data folder (``VOXSERVE_TEST_DATA`` or ``shared/data`` above the repo)."""
    env = os.environ.get("VOXSERVE_TEST_DATA")
    candidates = [Path(env)] if env else [p / "shared" / "data" for p in REPO_ROOT.parents]
    return next((p for p in candidates if (p / "manifest.json").is_file()), None)
