"""The voice library's value types: what a client gives to make a voice (``VoiceDraft``), what
every adapter shows (``VoiceView``), and the conversions from stored records and presets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from voxserve.core.ids import utcnow
from voxserve.core.presets import PRESET_CREATED_AT, Preset
from voxserve.storage.protocol import VoiceRecord, VoiceSample

if TYPE_CHECKING:
    from voxserve.audio.decode import Source  # PyAV only where audio is decoded

VoiceType = Literal["all", "custom", "preset"]


@dataclass(frozen=True)
class VoiceView:
    """A voice as every adapter shows it, preset or custom."""

    id: str
    name: str
    type: Literal["preset", "custom"]
    owner_id: str | None
    created_at: datetime
    languages: tuple[str, ...] = ()
    gender: str | None = None
    age: int | None = None
    tags: tuple[str, ...] | None = None
    color: str | None = None
    description: str | None = None
    slug: str | None = None
    retention_notice: int | None = None
    trimmed_seconds: float | None = None
    emotions: tuple[str, ...] = ()
    engine: str | None = None
    """The engine of a preset voice."""
    sample_seconds: float | None = None


@dataclass(frozen=True)
class VoiceDraft:
    """What a client gives to create a custom voice."""

    name: str
    sample: Source
    """The encoded sample (any supported container): bytes, or an open file (an upload as the
    web framework spooled it, a fetched ``voice_url``) that is decoded from where it is."""
    sample_filename: str | None = None
    slug: str | None = None
    languages: tuple[str, ...] = ()
    gender: str | None = None
    age: int | None = None
    tags: tuple[str, ...] | None = None
    color: str | None = None
    description: str | None = None
    retention_notice: int = 30
    emotion_samples: Mapping[str, bytes] = field(default_factory=dict)
    """Extra samples keyed by emotion (``happy``...), used by ``[emotion=...]`` tags."""
    denoise: bool = False
    """Reduce background noise in the samples before storing them."""


UPDATABLE = frozenset(
    {
        "name",
        "slug",
        "languages",
        "gender",
        "age",
        "tags",
        "color",
        "description",
        "retention_notice",
    }
)


def custom_view(record: VoiceRecord) -> VoiceView:
    return VoiceView(
        id=record.id,
        name=record.name,
        type="custom",
        owner_id=record.owner_id,
        created_at=record.created_at,
        languages=record.languages,
        gender=record.gender,
        age=record.age,
        tags=record.tags,
        color=record.color,
        description=record.description,
        slug=record.slug,
        retention_notice=record.retention_notice,
        trimmed_seconds=record.trimmed_seconds,
        emotions=tuple(s.emotion for s in record.samples if s.emotion),
        sample_seconds=record.main_sample.seconds,
    )


def preset_view(preset: Preset) -> VoiceView:
    v = preset.voice
    return VoiceView(
        id=preset.id,
        name=v.name,
        type="preset",
        owner_id=None,
        created_at=PRESET_CREATED_AT,
        languages=v.languages,
        gender=v.gender,
        emotions=v.emotions,
        engine=preset.engine,
    )


def new_record(
    owner_id: str,
    voice_id: str,
    draft: VoiceDraft,
    samples: tuple[VoiceSample, ...],
    trimmed: float,
) -> VoiceRecord:
    """The row for a new custom voice whose samples are already stored."""
    return VoiceRecord(
        id=voice_id,
        owner_id=owner_id,
        name=draft.name,
        created_at=utcnow(),
        samples=samples,
        slug=draft.slug,
        languages=draft.languages,
        gender=draft.gender,
        age=draft.age,
        tags=draft.tags,
        color=draft.color,
        description=draft.description,
        retention_notice=draft.retention_notice,
        trimmed_seconds=round(trimmed, 3) if trimmed > 0 else None,
    )
