"""Voice samples: checking and normalising uploaded audio (blocking: run it in a thread), and
where a custom voice's samples and cached voice states live in the blob store.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from voxserve.audio.decode import Source, decode, decode_head
from voxserve.audio.process import denoise as denoise_clip
from voxserve.audio.process import is_silent, to_mono_wav
from voxserve.audio.types import AudioClip
from voxserve.errors import ValidationFailed
from voxserve.settings import LimitSettings

SAMPLE_RATE = 24000
"""Stored samples are mono 16-bit WAV at this rate (what cloning engines want)."""


@dataclass(frozen=True)
class PreparedSample:
    wav: bytes
    seconds: float
    trimmed_seconds: float


def prepare_sample(
    data: Source, limits: LimitSettings, *, field_name: str, denoise: bool = False
) -> PreparedSample:
    """Decode, check and normalise a voice sample (blocking: run it in a thread). Only the
    first ``limits.sample_max_seconds`` are decoded, from a file where ``data`` is one.

    Raises:
        ValidationFailed: empty, undecodable, silent or too short audio.
    """
    if _is_empty(data):
        raise ValidationFailed(f"{field_name}: the audio is empty.", field=field_name)
    try:
        clip, duration = decode_head(
            data, sample_rate=SAMPLE_RATE, max_seconds=limits.sample_max_seconds
        )
    except ValidationFailed as exc:
        raise ValidationFailed(f"{field_name}: {exc.message}", field=field_name) from None
    if is_silent(clip.samples):
        raise ValidationFailed(f"{field_name}: the audio is silent.", field=field_name)
    if duration < limits.sample_min_seconds:
        raise ValidationFailed(
            f"{field_name}: the audio is {duration:.2f} s long; at least "
            f"{limits.sample_min_seconds:g} s is needed.",
            field=field_name,
        )
    trimmed = duration - clip.duration
    if denoise:
        clip = denoise_clip(clip)
    return PreparedSample(to_mono_wav(clip), clip.duration, trimmed)


def _is_empty(data: Source) -> bool:
    if isinstance(data, bytes | bytearray | memoryview):
        return not data
    if isinstance(data, Path):
        return data.stat().st_size == 0
    empty = data.seek(0, os.SEEK_END) == 0
    data.seek(0)
    return empty


def decode_reference(
    data: bytes, limits: LimitSettings, field_name: str = "ref_audio"
) -> AudioClip:
    """A one-off cloning reference, checked like a stored sample (blocking)."""
    prepared = prepare_sample(data, limits, field_name=field_name)
    return decode(prepared.wav)


def emotion_name(emotion: str) -> str:
    """The normalised emotion name of an extra sample; raises ValidationFailed."""
    name = emotion.strip().lower()
    if not name.isidentifier() or len(name) > 32:
        raise ValidationFailed(f"Emotion names are short words; got '{emotion}'.", field="emotion")
    return name


# --------------------------------------------------------------------------- blob layout


def voice_prefix(owner_id: str, voice_id: str) -> str:
    """Every blob of one custom voice is under this prefix (purged with the voice)."""
    return f"voices/{owner_id}/{voice_id}/"


def sample_key(owner_id: str, voice_id: str, emotion: str | None) -> str:
    """A key for a new sample: unique per upload, so what is made from a sample (its cached
    voice states, named after it) never outlives it: a replaced sample's state is not the new
    one's, on any replica."""
    name = f"sample-{emotion or 'main'}-{secrets.token_hex(6)}"
    return f"{voice_prefix(owner_id, voice_id)}{name}.wav"


def voice_state_key(sample_key: str, engine: str, version: str) -> str:
    """Where the voice state that an engine (name and version) made from the sample at
    ``sample_key`` is cached: in the voice's folder, named after the sample."""
    stem = sample_key.rsplit("/", 1)[1].removesuffix(".wav")
    return f"{state_prefix(sample_key)}{engine}-{version}-{stem}.bin"


def state_prefix(sample_key: str) -> str:
    """The folder of the voice states cached for the voice whose sample is at ``sample_key``."""
    return f"{sample_key.rsplit('/', 1)[0]}/state/"


def made_from(state_key: str, sample_key: str) -> bool:
    """Whether the voice state at ``state_key`` was made from the sample at ``sample_key``."""
    stem = sample_key.rsplit("/", 1)[1].removesuffix(".wav")
    return state_key.startswith(state_prefix(sample_key)) and state_key.endswith(f"-{stem}.bin")
