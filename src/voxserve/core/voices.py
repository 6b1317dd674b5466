"""The voice library: preset voices from the engines plus each owner's custom (cloned) voices.

One service for every API shape, so a voice made through any of them is the same voice everywhere.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

from voxserve.audio.decode import decode, decode_head
from voxserve.audio.encode import encode
from voxserve.audio.process import denoise as denoise_clip
from voxserve.audio.process import is_silent, to_mono_wav
from voxserve.audio.types import AudioClip
from voxserve.core.ids import utcnow, uuid7
from voxserve.core.presets import PRESET_CREATED_AT, Preset, PresetCatalog
from voxserve.engines.manager import EngineManager
from voxserve.engines.protocol import SynthesisRequest
from voxserve.errors import InvalidRequest, LimitExceeded, ValidationFailed, VoiceNotFound
from voxserve.settings import LimitSettings, RetentionSettings
from voxserve.storage.protocol import (
    BlobStore,
    VoiceQuery,
    VoiceRecord,
    VoiceRepository,
    VoiceSample,
)

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
"""Stored samples are mono 16-bit WAV at this rate (what cloning engines want)."""
VoiceType = Literal["all", "custom", "preset"]
PRESET_SAMPLE_TEXT = "Hello! This is {name}, one of the voices of this server."


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
    sample: bytes
    """The encoded sample (any supported container)."""
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


@dataclass(frozen=True)
class PreparedSample:
    wav: bytes
    seconds: float
    trimmed_seconds: float


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


class VoiceService:
    """Lists, creates, updates and deletes voices; owns sample validation and voice limits."""

    def __init__(
        self,
        repo: VoiceRepository,
        blobs: BlobStore,
        presets: PresetCatalog,
        engines: EngineManager,
        limits: LimitSettings,
        retention: RetentionSettings,
    ) -> None:
        self._repo = repo
        self._blobs = blobs
        self._presets = presets
        self._engines = engines
        self._limits = limits
        self._retention = retention

    @property
    def presets(self) -> PresetCatalog:
        return self._presets

    async def list(
        self, owner_id: str, *, type: VoiceType, query: VoiceQuery, offset: int, limit: int
    ) -> tuple[list[VoiceView], int]:
        """A page of voices (custom ones first, newest first; then presets) and the total."""
        items: list[VoiceView] = []
        custom_total = 0
        if type in ("all", "custom"):
            records, custom_total = await self._repo.list(
                owner_id, query, offset=offset, limit=limit
            )
            items = [custom_view(r) for r in records]
        if type == "custom":
            return items, custom_total
        presets = self._presets.matching(
            text=query.text, genders=query.genders, languages=query.languages
        )
        start = max(0, offset - custom_total)
        room = limit - len(items)
        items += [preset_view(p) for p in presets[start : start + room]]
        return items, custom_total + len(presets)

    async def get(self, owner_id: str, voice_id: str) -> VoiceView:
        """Raises VoiceNotFound (also for another owner's voice)."""
        preset = self._presets.get(voice_id)
        if preset is not None:
            return preset_view(preset)
        return custom_view(await self.get_record(owner_id, voice_id))

    async def get_record(self, owner_id: str, voice_id: str) -> VoiceRecord:
        record = await self._repo.get(owner_id, voice_id)
        if record is None:
            raise VoiceNotFound(voice_id)
        return record

    async def create(self, owner_id: str, draft: VoiceDraft) -> VoiceView:
        """Validate and store the samples, then the voice row; nothing is left half-stored.

        Raises:
            ValidationFailed: a sample is not audio, silent or too short; a bad emotion name.
            LimitExceeded: the owner has the maximum number of custom voices.
        """
        await self._check_room(owner_id)
        main = await self._prepare(draft.sample, "sample_audio", draft.denoise)
        extras = {
            _emotion_name(emotion): await self._prepare(
                data, f"emotion_samples.{emotion}", draft.denoise
            )
            for emotion, data in draft.emotion_samples.items()
        }
        voice_id = uuid7()
        samples = [(None, main), *extras.items()]
        stored: list[VoiceSample] = []
        try:
            for emotion, prepared in samples:
                key = _sample_key(owner_id, voice_id, emotion)
                await self._blobs.put(key, prepared.wav)
                stored.append(VoiceSample(key, prepared.seconds, emotion))
            record = await self._repo.create(
                _new_record(owner_id, voice_id, draft, tuple(stored), main.trimmed_seconds),
                max_per_owner=self._limits.max_custom_voices,
            )
        except BaseException:
            await asyncio.shield(self._delete_blobs([s.blob_key for s in stored]))
            raise
        log.info("voice created", extra={"voice_id": voice_id, "owner_id": owner_id})
        return custom_view(record)

    async def update(
        self,
        owner_id: str,
        voice_id: str,
        changes: Mapping[str, Any],
        emotion_samples: Mapping[str, bytes] | None = None,
    ) -> VoiceView:
        """Change the given fields (and add or replace emotion samples).

        Raises:
            VoiceNotFound, InvalidRequest (preset voices), ValidationFailed.
        """
        self._refuse_preset(voice_id)
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValidationFailed(f"Unknown fields: {', '.join(sorted(unknown))}.")
        await self.get_record(owner_id, voice_id)
        for emotion, data in (emotion_samples or {}).items():
            await self._set_emotion_sample(owner_id, voice_id, _emotion_name(emotion), data)
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
        record = await self._repo.update(owner_id, voice_id, {**fields, "updated_at": utcnow()})
        if record is None:
            raise VoiceNotFound(voice_id)
        return custom_view(record)

    async def delete(self, owner_id: str, voice_id: str, *, soft: bool = False) -> VoiceView:
        """Hide the voice at once. A hard delete purges its samples now; a soft delete keeps them
        for the retention period. A crash in between leaves a row the cleanup purges later.
        """
        self._refuse_preset(voice_id)
        now = utcnow()
        keep = timedelta(days=self._retention.deleted_voice_days) if soft else timedelta(0)
        record = await self._repo.mark_deleted(owner_id, voice_id, at=now, purge_after=now + keep)
        if record is None:
            raise VoiceNotFound(voice_id)
        if not soft:
            await asyncio.shield(self.purge(record))
        return custom_view(record)

    async def purge(self, record: VoiceRecord) -> None:
        """Remove a deleted voice's blobs (samples and voice states), then its row."""
        prefix = _voice_prefix(record.owner_id, record.id)
        keys = [info.key async for info in self._blobs.list(prefix)]
        await self._delete_blobs(keys + [s.blob_key for s in record.samples])
        await self._repo.purge(record.id)

    async def sample(self, owner_id: str, voice_id: str) -> bytes:
        """The voice's sample as 16-bit mono WAV (made once by the engine for presets)."""
        preset = self._presets.get(voice_id)
        if preset is not None:
            return await self._preset_sample(preset)
        record = await self.get_record(owner_id, voice_id)
        try:
            return await self._blobs.get(record.main_sample.blob_key)
        except KeyError:
            raise VoiceNotFound(voice_id) from None

    # ------------------------------------------------------------------ internals

    async def _check_room(self, owner_id: str) -> None:
        # Fail fast before decoding; the repository enforces the limit atomically.
        if await self._repo.count(owner_id) >= self._limits.max_custom_voices:
            raise LimitExceeded(limit_message(self._limits.max_custom_voices))

    async def _prepare(self, data: bytes, field_name: str, denoise: bool) -> PreparedSample:
        return await asyncio.to_thread(
            prepare_sample, data, self._limits, field_name=field_name, denoise=denoise
        )

    async def _set_emotion_sample(
        self, owner_id: str, voice_id: str, emotion: str, data: bytes
    ) -> None:
        prepared = await self._prepare(data, f"emotion_samples.{emotion}", False)
        key = _sample_key(owner_id, voice_id, emotion)
        await self._blobs.put(key, prepared.wav)
        if not await self._repo.set_sample(
            owner_id, voice_id, VoiceSample(key, prepared.seconds, emotion)
        ):
            await self._blobs.delete(key)
            raise VoiceNotFound(voice_id)

    async def _preset_sample(self, preset: Preset) -> bytes:
        key = f"presets/{preset.engine}/{preset.voice.id}/sample.wav"
        try:
            return await self._blobs.get(key)
        except KeyError:
            pass
        text = PRESET_SAMPLE_TEXT.format(name=preset.voice.name)
        request = SynthesisRequest(text=text, voice=preset.voice.id)
        rate = self._engines.tts(preset.engine).capabilities().sample_rate
        chunks = [c async for c in self._engines.stream_tts(preset.engine, request)]
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        wav = await asyncio.to_thread(encode, samples.astype(np.float32), rate, "wav")
        await self._blobs.put(key, wav)
        return wav

    def _refuse_preset(self, voice_id: str) -> None:
        if self._presets.get(voice_id) is not None:
            raise InvalidRequest("Preset voices cannot be changed or deleted.", field="voice_id")

    async def _delete_blobs(self, keys: builtins.list[str]) -> None:
        for key in dict.fromkeys(keys):
            try:
                await self._blobs.delete(key)
            except OSError:
                log.warning("could not delete blob %s; the cleanup will retry", key)


def limit_message(limit: int) -> str:
    return f"Voice limit reached: at most {limit} custom voices per owner."


def prepare_sample(
    data: bytes, limits: LimitSettings, *, field_name: str, denoise: bool = False
) -> PreparedSample:
    """Decode, check and normalise a voice sample (blocking: run it in a thread).

    Raises:
        ValidationFailed: empty, undecodable, silent or too short audio.
    """
    if not data:
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


def decode_reference(
    data: bytes, limits: LimitSettings, field_name: str = "ref_audio"
) -> AudioClip:
    """A one-off cloning reference, checked like a stored sample (blocking)."""
    prepared = prepare_sample(data, limits, field_name=field_name)
    return decode(prepared.wav)


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


def _new_record(
    owner_id: str,
    voice_id: str,
    draft: VoiceDraft,
    samples: tuple[VoiceSample, ...],
    trimmed: float,
) -> VoiceRecord:
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


def _emotion_name(emotion: str) -> str:
    name = emotion.strip().lower()
    if not name.isidentifier() or len(name) > 32:
        raise ValidationFailed(f"Emotion names are short words; got '{emotion}'.", field="emotion")
    return name


def _voice_prefix(owner_id: str, voice_id: str) -> str:
    return f"voices/{owner_id}/{voice_id}/"


def _sample_key(owner_id: str, voice_id: str, emotion: str | None) -> str:
    return f"{_voice_prefix(owner_id, voice_id)}sample-{emotion or 'main'}.wav"


def voice_state_key(
    owner_id: str, voice_id: str, engine: str, version: str, emotion: str | None
) -> str:
    """Where a cloned voice state is cached (one per voice, sample, engine and engine version)."""
    return f"{_voice_prefix(owner_id, voice_id)}state/{engine}-{version}-{emotion or 'main'}.bin"
