"""Stored files in SQL."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voxserve.errors import Conflict
from voxserve.storage.database import Database
from voxserve.storage.protocol import FileRecord
from voxserve.storage.tables import FileRow, file_record, file_row


class SqlFileRepository:
    """``FileRepository`` over SQLAlchemy. Deleted files are invisible to ``get`` and ``list``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, record: FileRecord) -> FileRecord:
        """Insert the file row.

        Raises:
            Conflict: a file with this id exists.
        """
        async with self._db.write() as session:
            session.add(file_row(record))
            try:
                await session.flush()
            except IntegrityError:
                raise Conflict(f"File '{record.id}' already exists.") from None
            return await _reload(session, record.id)

    async def get(self, owner_id: str, file_id: str) -> FileRecord | None:
        statement = select(FileRow).where(
            FileRow.id == file_id, FileRow.owner_id == owner_id, FileRow.deleted_at.is_(None)
        )
        async with self._db.read() as session:
            row = await session.scalar(statement)
            return None if row is None else file_record(row)

    async def get_by_id(self, file_id: str) -> FileRecord | None:
        """Any owner's live file (signed URLs: the signature proves access)."""
        statement = select(FileRow).where(FileRow.id == file_id, FileRow.deleted_at.is_(None))
        async with self._db.read() as session:
            row = await session.scalar(statement)
            return None if row is None else file_record(row)

    async def list(
        self, owner_id: str, *, offset: int, limit: int, purpose: str | None = None
    ) -> tuple[builtins.list[FileRecord], int]:
        """A page of the owner's files, newest first, and how many there are in all."""
        conditions = [FileRow.owner_id == owner_id, FileRow.deleted_at.is_(None)]
        if purpose is not None:
            conditions.append(FileRow.purpose == purpose)
        page = (
            select(FileRow)
            .where(*conditions)
            .order_by(FileRow.created_at.desc(), FileRow.id.desc())
            .offset(offset)
            .limit(limit)
        )
        total = select(func.count()).select_from(FileRow).where(*conditions)
        async with self._db.read() as session:
            rows = list(await session.scalars(page))
            count = int((await session.execute(total)).scalar_one())
            return [file_record(row) for row in rows], count

    async def mark_deleted(self, owner_id: str, file_id: str, *, at: datetime) -> FileRecord | None:
        statement = (
            select(FileRow)
            .where(
                FileRow.id == file_id, FileRow.owner_id == owner_id, FileRow.deleted_at.is_(None)
            )
            .with_for_update()
        )
        async with self._db.write() as session:
            row = await session.scalar(statement)
            if row is None:
                return None
            row.deleted_at = at
            await session.flush()
            return await _reload(session, file_id)

    async def due_for_purge(self, now: datetime) -> builtins.list[FileRecord]:
        """Deleted files, and files whose ``expires_at`` has passed."""
        statement = (
            select(FileRow)
            .where(or_(FileRow.deleted_at.is_not(None), FileRow.expires_at <= now))
            .order_by(FileRow.created_at, FileRow.id)
        )
        async with self._db.read() as session:
            return [file_record(row) for row in await session.scalars(statement)]

    async def purge(self, file_id: str) -> None:
        async with self._db.write() as session:
            await session.execute(delete(FileRow).where(FileRow.id == file_id))

    async def referenced_blob_keys(self) -> set[str]:
        async with self._db.read() as session:
            return set(await session.scalars(select(FileRow.blob_key).distinct()))


async def _reload(session: AsyncSession, file_id: str) -> FileRecord:
    """The stored file as read back (datetimes normalized to UTC by the column type)."""
    statement = (
        select(FileRow).where(FileRow.id == file_id).execution_options(populate_existing=True)
    )
    return file_record((await session.scalars(statement)).one())
