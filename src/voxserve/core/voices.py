"""The voice library: preset voices from the engines plus each owner's custom (cloned) voices.

One service for every API shape, so a voice made through any of them is the same voice everywhere.
Its value types are in ``voice_types``; sample checking and the blob layout in ``voice_samples``.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import numpy as np

from voxserve.audio.decode import Source
from voxserve.audio.encode import encode
from voxserve.audio.pool import DecodePool
from voxserve.audio.types import AudioClip
from voxserve.core.ids import utcnow, uuid7
from voxserve.core.presets import Preset, PresetCatalog
from voxserve.core.voice_samples import (
    PreparedSample,
    decode_reference,
    emotion_name,
    made_from,
    prepare_sample,
    sample_key,
    state_prefix,
    voice_prefix,
)

# Re-exported: core/speech.py imports these from here.
from voxserve.core.voice_types import (
    UPDATABLE,
    VoiceDraft,
    VoiceType,
    VoiceView,
    custom_view,
    new_record,
    preset_view,
)
from voxserve.engines.manager import EngineManager
from voxserve.engines.protocol import SynthesisRequest
from voxserve.errors import InvalidRequest, LimitExceeded, ValidationFailed, VoiceNotFound
from voxserve.offload import run_in_thread
from voxserve.settings import LimitSettings, RetentionSettings
from voxserve.storage.protocol import (
    BlobStore,
    VoiceQuery,
    VoiceRecord,
    VoiceRepository,
    VoiceSample,
)

log = logging.getLogger(__name__)

PRESET_SAMPLE_TEXT = "Hello! This is {name}, one of the voices of this server."


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
        decoding: DecodePool,
    ) -> None:
        self._repo = repo
        self._decoding = decoding
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
            emotion_name(emotion): await self._prepare(
                data, f"emotion_samples.{emotion}", draft.denoise
            )
            for emotion, data in draft.emotion_samples.items()
        }
        voice_id = uuid7()
        samples = [(None, main), *extras.items()]
        stored: list[VoiceSample] = []
        try:
            for emotion, prepared in samples:
                key = sample_key(owner_id, voice_id, emotion)
                await self._blobs.put(key, prepared.wav)
                stored.append(VoiceSample(key, prepared.seconds, emotion))
            record = await self._repo.create(
                new_record(owner_id, voice_id, draft, tuple(stored), main.trimmed_seconds),
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
        if emotion_samples:
            # Fail on a missing voice before decoding any sample; without samples the update
            # itself finds it missing.
            before = await self.get_record(owner_id, voice_id)
            for emotion, data in emotion_samples.items():
                await self._set_emotion_sample(before, emotion_name(emotion), data)
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
        prefix = voice_prefix(record.owner_id, record.id)
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

    async def reference_clip(self, data: bytes) -> AudioClip:
        """A one-off cloning reference (``ref_audio``), checked like a sample, decoded on the
        decode pool.

        Raises:
            ValidationFailed: as a sample. Overloaded: the decode pool is full.
        """
        return await self._decoding.run(decode_reference, data, self._limits)

    async def _prepare(self, data: Source, field_name: str, denoise: bool) -> PreparedSample:
        # Only the first sample_max_seconds are decoded, on the decode pool (429 when full).
        prepare = functools.partial(
            prepare_sample, data, self._limits, field_name=field_name, denoise=denoise
        )
        return await self._decoding.run(prepare)

    async def _set_emotion_sample(self, before: VoiceRecord, emotion: str, data: bytes) -> None:
        """Store the new sample, point the row at it, then delete the sample it replaces and
        the voice states made from that one."""
        owner_id, voice_id = before.owner_id, before.id
        prepared = await self._prepare(data, f"emotion_samples.{emotion}", False)
        key = sample_key(owner_id, voice_id, emotion)
        await self._blobs.put(key, prepared.wav)
        if not await self._repo.set_sample(
            owner_id, voice_id, VoiceSample(key, prepared.seconds, emotion)
        ):
            await self._blobs.delete(key)
            raise VoiceNotFound(voice_id)
        old = next((s.blob_key for s in before.samples if s.emotion == emotion), None)
        if old is not None:
            states = [i.key async for i in self._blobs.list(state_prefix(old))]
            await self._delete_blobs([old, *(k for k in states if made_from(k, old))])

    async def _preset_sample(self, preset: Preset) -> bytes:
        key = f"presets/{preset.engine}/{preset.voice.id}/sample.wav"
        try:
            return await self._blobs.get(key)
        except KeyError:
            pass
        text = PRESET_SAMPLE_TEXT.format(name=preset.voice.name)
        request = SynthesisRequest(text=text, voice=preset.voice.id)
        rate = self._engines.tts_handle(preset.engine).capabilities.sample_rate
        chunks = [c async for c in self._engines.stream_tts(preset.engine, request)]
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        wav = await run_in_thread(encode, samples.astype(np.float32), rate, "wav")
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
