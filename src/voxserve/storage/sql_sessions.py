"""Web app sign-in sessions in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update

from voxserve.storage.database import Database
from voxserve.storage.protocol import ApiKey, Owner, WebSession
from voxserve.storage.tables import (
    ApiKeyRow,
    OwnerRow,
    SessionRow,
    api_key_record,
    owner_record,
    session_record,
)


class SqlSessionRepository:
    """``SessionRepository`` over SQLAlchemy."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, session: WebSession) -> WebSession:
        row = SessionRow(
            id=session.id,
            owner_id=session.owner_id,
            key_id=session.key_id,
            created_at=session.created_at,
            expires_at=session.expires_at,
            revoked_at=session.revoked_at,
        )
        async with self._db.write() as db_session:
            db_session.add(row)
        return session

    async def find_live(
        self, session_id: str, now: datetime
    ) -> tuple[WebSession, ApiKey, Owner] | None:
        statement = (
            select(SessionRow, ApiKeyRow, OwnerRow)
            .join(OwnerRow, OwnerRow.id == SessionRow.owner_id)
            .join(ApiKeyRow, ApiKeyRow.id == SessionRow.key_id)
            .where(
                SessionRow.id == session_id,
                SessionRow.revoked_at.is_(None),
                SessionRow.expires_at > now,
                ApiKeyRow.revoked_at.is_(None),
            )
        )
        async with self._db.read() as db_session:
            found = (await db_session.execute(statement)).one_or_none()
            if found is None:
                return None
            return session_record(found[0]), api_key_record(found[1]), owner_record(found[2])

    async def revoke(self, session_id: str, at: datetime) -> bool:
        statement = (
            update(SessionRow)
            .where(SessionRow.id == session_id, SessionRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        async with self._db.write() as db_session:
            result: Any = await db_session.execute(statement)
            return bool(result.rowcount)

    async def purge_expired(self, before: datetime) -> int:
        statement = delete(SessionRow).where(
            or_(SessionRow.expires_at < before, SessionRow.revoked_at < before)
        )
        async with self._db.write() as db_session:
            result: Any = await db_session.execute(statement)
            return int(result.rowcount or 0)
