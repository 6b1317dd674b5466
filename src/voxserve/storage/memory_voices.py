"""Custom voices in memory: the ``VoiceRepository`` of ``storage.memory``.

The rules (samples, updatable fields, filters, the limit message) are ``storage.voice_rules``,
the same the SQL repository applies. The limit is checked and the voice stored under the state's
lock, so concurrent creates can never exceed it.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from voxserve.errors import Conflict, LimitExceeded
from voxserve.storage.memory_state import MemoryState, utc, utc_fields
from voxserve.storage.protocol import VoiceQuery, VoiceRecord, VoiceSample
from voxserve.storage.voice_rules import (
    MAIN_EMOTION,
    check_samples,
    check_updatable,
    limit_message,
    matches,
    ordered_samples,
    page,
)


class MemoryVoiceRepository:
    """``VoiceRepository`` in memory. Deleted voices are invisible to every read but
    ``due_for_purge``."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def create(self, voice: VoiceRecord, *, max_per_owner: int) -> VoiceRecord:
        """Store the voice unless the owner already has ``max_per_owner`` live voices.

        Raises:
            LimitExceeded: the owner has ``max_per_owner`` live voices.
            Conflict: a voice with this id exists.
            ValueError: no main sample, two samples for one emotion, an unknown owner, or a
                naive datetime.
        """
        check_samples(voice.samples)
        stored = utc_fields(voice, samples=ordered_samples(voice.samples))
        await self._state.turn()
        with self._state.lock:
            if voice.owner_id not in self._state.owners:
                raise ValueError(f"unknown owner {voice.owner_id!r}: create the owner first")
            if self._count_live(voice.owner_id) >= max_per_owner:
                raise LimitExceeded(limit_message(max_per_owner))
            if voice.id in self._state.voices:
                raise Conflict(f"Voice '{voice.id}' already exists.")
            self._state.voices[voice.id] = stored
        return stored

    async def get(self, owner_id: str, voice_id: str) -> VoiceRecord | None:
        with self._state.lock:
            return self._live(owner_id, voice_id)

    async def list(
        self, owner_id: str, query: VoiceQuery, *, offset: int, limit: int
    ) -> tuple[builtins.list[VoiceRecord], int]:
        """A page of live voices, newest first (ties: id descending), and the total that match."""
        with self._state.lock:
            voices = [v for v in self._state.voices.values() if _listed(v, owner_id, query)]
        voices.sort(key=lambda v: (v.created_at, v.id), reverse=True)
        return page(voices, offset=offset, limit=limit)

    async def count(self, owner_id: str) -> int:
        with self._state.lock:
            return self._count_live(owner_id)

    async def update(
        self, owner_id: str, voice_id: str, changes: Mapping[str, Any]
    ) -> VoiceRecord | None:
        """Set the given fields; ``updated_at`` is now unless given.

        Raises:
            ValueError: a field that ``update`` may not set.
        """
        check_updatable(changes)
        values = {"updated_at": datetime.now(UTC), **_record_values(changes)}
        await self._state.turn()
        with self._state.lock:
            found = self._live(owner_id, voice_id)
            if found is None:
                return None
            updated = utc_fields(found, **values)
            self._state.voices[voice_id] = updated
            return updated

    async def set_sample(self, owner_id: str, voice_id: str, sample: VoiceSample) -> bool:
        await self._state.turn()
        with self._state.lock:
            found = self._live(owner_id, voice_id)
            if found is None:
                return False
            emotion = sample.emotion or MAIN_EMOTION
            others = [s for s in found.samples if (s.emotion or MAIN_EMOTION) != emotion]
            samples = ordered_samples([*others, sample])
            now = datetime.now(UTC)
            self._state.voices[voice_id] = utc_fields(found, samples=samples, updated_at=now)
            return True

    async def mark_deleted(
        self, owner_id: str, voice_id: str, *, at: datetime, purge_after: datetime
    ) -> VoiceRecord | None:
        deleted_at, purge_at = utc(at), utc(purge_after)
        await self._state.turn()
        with self._state.lock:
            found = self._live(owner_id, voice_id)
            if found is None:
                return None
            deleted = utc_fields(found, deleted_at=deleted_at, purge_after=purge_at)
            self._state.voices[voice_id] = deleted
            return deleted

    async def due_for_purge(self, now: datetime) -> builtins.list[VoiceRecord]:
        """Deleted voices whose ``purge_after`` has come (or was never set)."""
        with self._state.lock:
            due = [
                v
                for v in self._state.voices.values()
                if v.deleted_at is not None and (v.purge_after is None or v.purge_after <= now)
            ]
        never = datetime.min.replace(tzinfo=UTC)
        return sorted(due, key=lambda v: (v.purge_after or never, v.id))

    async def purge(self, voice_id: str) -> None:
        with self._state.lock:
            self._state.voices.pop(voice_id, None)

    async def referenced_blob_keys(self) -> set[str]:
        with self._state.lock:
            return {s.blob_key for v in self._state.voices.values() for s in v.samples}

    # Called with the lock held.

    def _live(self, owner_id: str, voice_id: str) -> VoiceRecord | None:
        found = self._state.voices.get(voice_id)
        if found is None or found.owner_id != owner_id or found.deleted_at is not None:
            return None
        return found

    def _count_live(self, owner_id: str) -> int:
        return sum(
            v.owner_id == owner_id and v.deleted_at is None for v in self._state.voices.values()
        )


def _listed(voice: VoiceRecord, owner_id: str, query: VoiceQuery) -> bool:
    if voice.owner_id != owner_id or voice.deleted_at is not None:
        return False
    if query.genders and voice.gender not in query.genders:
        return False
    return matches(
        query,
        name=voice.name,
        description=voice.description,
        tags=voice.tags,
        languages=voice.languages,
    )


def _record_values(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Records hold tuples where callers may pass lists."""
    values = dict(changes)
    if "languages" in values:
        values["languages"] = tuple(values["languages"] or ())
    if values.get("tags") is not None:
        values["tags"] = tuple(values["tags"])
    return values
