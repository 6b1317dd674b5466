"""Audio value types shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]
"""Mono float32 samples in [-1, 1]."""

AudioFormat = Literal["wav", "pcm", "pcm16", "mp3", "flac", "opus", "aac"]
"""Output formats. ``pcm`` is raw float32 little-endian (Mistral's meaning); ``pcm16`` is raw
signed 16-bit little-endian (OpenAI's ``pcm``)."""

AUDIO_FORMATS: tuple[AudioFormat, ...] = ("wav", "pcm", "pcm16", "mp3", "flac", "opus", "aac")

CONTENT_TYPES: dict[AudioFormat, str] = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "pcm16": "audio/pcm",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "aac": "audio/aac",
}


@dataclass(frozen=True)
class AudioClip:
    """A whole mono clip in memory."""

    samples: Samples
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0
