"""Custom voices in SQL.

The per-owner voice limit is checked and the voice inserted in one write transaction that first
serializes with every other create for the same owner: on PostgreSQL it locks the owner row
(``SELECT ... FOR UPDATE``); on SQLite the write transaction itself starts with
``BEGIN IMMEDIATE`` and so excludes every other writer, in any process.
"""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voxserve.errors import Conflict, LimitExceeded
from voxserve.storage.database import Database, dialect_insert
from voxserve.storage.protocol import VoiceQuery, VoiceRecord, VoiceSample
from voxserve.storage.tables import (
    OwnerRow,
    VoiceRow,
    VoiceSampleRow,
    sample_row,
    voice_columns,
    voice_record,
)
from voxserve.storage.voice_rules import (
    MAIN_EMOTION,
    check_samples,
    check_updatable,
    limit_message,
    matches,
    page,
)


class SqlVoiceRepository:
    """``VoiceRepository`` over SQLAlchemy."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, voice: VoiceRecord, *, max_per_owner: int) -> VoiceRecord:
        """Insert the voice and its samples unless the owner already has ``max_per_owner``.

        Raises:
            LimitExceeded: the owner has ``max_per_owner`` live voices.
            Conflict: a voice with this id exists.
            ValueError: no main sample, two samples for one emotion, or an unknown owner.
        """
        check_samples(voice.samples)
        async with self._db.write() as session:
            await _lock_owner(session, voice.owner_id)
            if await _count_live(session, voice.owner_id) >= max_per_owner:
                raise LimitExceeded(limit_message(max_per_owner))
            session.add(VoiceRow(**voice_columns(voice)))
            session.add_all(sample_row(voice.id, sample) for sample in voice.samples)
            try:
                await session.flush()
            except IntegrityError:
                raise Conflict(f"Voice '{voice.id}' already exists.") from None
            return await _reload(session, voice.id)

    async def get(self, owner_id: str, voice_id: str) -> VoiceRecord | None:
        async with self._db.read() as session:
            row = await session.scalar(_live(owner_id).where(VoiceRow.id == voice_id))
            if row is None:
                return None
            return (await _with_samples(session, [row]))[0]

    async def list(
        self, owner_id: str, query: VoiceQuery, *, offset: int, limit: int
    ) -> tuple[builtins.list[VoiceRecord], int]:
        """A page of live voices, newest first, and the total that match.

        Owner and gender filter in SQL; text and languages (a JSON column) in Python, which is
        cheap because an owner holds at most ``max_custom_voices`` live voices.
        """
        statement = _live(owner_id).order_by(VoiceRow.created_at.desc(), VoiceRow.id.desc())
        if query.genders:
            statement = statement.where(VoiceRow.gender.in_(query.genders))
        async with self._db.read() as session:
            rows = [row for row in await session.scalars(statement) if _matches(row, query)]
            listed, total = page(rows, offset=offset, limit=limit)
            return await _with_samples(session, listed), total

    async def count(self, owner_id: str) -> int:
        async with self._db.read() as session:
            return await _count_live(session, owner_id)

    async def update(
        self, owner_id: str, voice_id: str, changes: Mapping[str, Any]
    ) -> VoiceRecord | None:
        """Set the given fields; ``updated_at`` is now unless given.

        Raises:
            ValueError: a field that is not in ``UPDATABLE_FIELDS``.
        """
        check_updatable(changes)
        values = {"updated_at": datetime.now(UTC), **_column_values(changes)}
        async with self._db.write() as session:
            row = await _locked_live(session, owner_id, voice_id)
            if row is None:
                return None
            for name, value in values.items():
                setattr(row, name, value)
            await session.flush()
            return await _reload(session, voice_id)

    async def set_sample(self, owner_id: str, voice_id: str, sample: VoiceSample) -> bool:
        async with self._db.write() as session:
            row = await _locked_live(session, owner_id, voice_id)
            if row is None:
                return False
            await session.execute(self._upsert_sample(voice_id, sample))
            row.updated_at = datetime.now(UTC)
            return True

    async def mark_deleted(
        self, owner_id: str, voice_id: str, *, at: datetime, purge_after: datetime
    ) -> VoiceRecord | None:
        async with self._db.write() as session:
            row = await _locked_live(session, owner_id, voice_id)
            if row is None:
                return None
            row.deleted_at = at
            row.purge_after = purge_after
            await session.flush()
            return await _reload(session, voice_id)

    async def due_for_purge(self, now: datetime) -> builtins.list[VoiceRecord]:
        """Deleted voices whose ``purge_after`` has come (or was never set)."""
        statement = (
            select(VoiceRow)
            .where(
                VoiceRow.deleted_at.is_not(None),
                or_(VoiceRow.purge_after.is_(None), VoiceRow.purge_after <= now),
            )
            .order_by(VoiceRow.purge_after, VoiceRow.id)
        )
        async with self._db.read() as session:
            return await _with_samples(session, list(await session.scalars(statement)))

    async def purge(self, voice_id: str) -> None:
        async with self._db.write() as session:
            await session.execute(delete(VoiceSampleRow).where(VoiceSampleRow.voice_id == voice_id))
            await session.execute(delete(VoiceRow).where(VoiceRow.id == voice_id))

    async def referenced_blob_keys(self) -> set[str]:
        async with self._db.read() as session:
            return set(await session.scalars(select(VoiceSampleRow.blob_key).distinct()))

    def _upsert_sample(self, voice_id: str, sample: VoiceSample) -> Any:
        statement = dialect_insert(self._db.dialect, VoiceSampleRow).values(
            voice_id=voice_id,
            emotion=sample.emotion or MAIN_EMOTION,
            blob_key=sample.blob_key,
            seconds=sample.seconds,
        )
        return statement.on_conflict_do_update(
            index_elements=[VoiceSampleRow.voice_id, VoiceSampleRow.emotion],
            set_={"blob_key": statement.excluded.blob_key, "seconds": statement.excluded.seconds},
        )


# ---------------------------------------------------------------- helpers


def _live(owner_id: str) -> Any:
    return select(VoiceRow).where(VoiceRow.owner_id == owner_id, VoiceRow.deleted_at.is_(None))


async def _count_live(session: AsyncSession, owner_id: str) -> int:
    statement = (
        select(func.count())
        .select_from(VoiceRow)
        .where(VoiceRow.owner_id == owner_id, VoiceRow.deleted_at.is_(None))
    )
    return int((await session.execute(statement)).scalar_one())


async def _lock_owner(session: AsyncSession, owner_id: str) -> None:
    # FOR UPDATE is dropped on SQLite, where BEGIN IMMEDIATE already excludes other writers.
    statement = select(OwnerRow.id).where(OwnerRow.id == owner_id).with_for_update()
    if await session.scalar(statement) is None:
        raise ValueError(f"unknown owner {owner_id!r}: create the owner first")


async def _locked_live(session: AsyncSession, owner_id: str, voice_id: str) -> VoiceRow | None:
    statement = _live(owner_id).where(VoiceRow.id == voice_id).with_for_update()
    row: VoiceRow | None = await session.scalar(statement)
    return row


async def _reload(session: AsyncSession, voice_id: str) -> VoiceRecord:
    """The stored voice as read back (datetimes normalized to UTC by the column type)."""
    statement = (
        select(VoiceRow).where(VoiceRow.id == voice_id).execution_options(populate_existing=True)
    )
    row = (await session.scalars(statement)).one()
    return (await _with_samples(session, [row]))[0]


async def _with_samples(
    session: AsyncSession, rows: builtins.list[VoiceRow]
) -> builtins.list[VoiceRecord]:
    if not rows:
        return []
    statement = (
        select(VoiceSampleRow)
        .where(VoiceSampleRow.voice_id.in_([row.id for row in rows]))
        .execution_options(populate_existing=True)
    )
    samples: defaultdict[str, builtins.list[VoiceSampleRow]] = defaultdict(list)
    for sample in await session.scalars(statement):
        samples[sample.voice_id].append(sample)
    return [voice_record(row, samples[row.id]) for row in rows]


def _matches(row: VoiceRow, query: VoiceQuery) -> bool:
    return matches(
        query,
        name=row.name,
        description=row.description,
        tags=row.tags,
        languages=row.languages,
    )


def _column_values(changes: Mapping[str, Any]) -> dict[str, Any]:
    """JSON columns hold lists; records hold tuples."""
    values = dict(changes)
    if "languages" in values:
        values["languages"] = list(values["languages"] or ())
    if values.get("tags") is not None:
        values["tags"] = list(values["tags"])
    return values
