"""Owners and API keys in SQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, func, select, update

from voxserve.storage.database import Database, dialect_insert
from voxserve.storage.protocol import ApiKey, KeylessState, Owner
from voxserve.storage.tables import ApiKeyRow, OwnerRow, api_key_record, owner_record


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def utcnow() -> datetime:
    return datetime.now(UTC)


class SqlKeyRepository:
    """``KeyRepository`` over SQLAlchemy."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_owner(self, name: str, credits: int | None = None) -> Owner:
        row = OwnerRow(id=new_id("owner"), name=name, credits=credits, created_at=utcnow())
        async with self._db.write() as session:
            session.add(row)
        return owner_record(row)

    async def get_owner(self, owner_id: str) -> Owner | None:
        async with self._db.read() as session:
            row = await session.get(OwnerRow, owner_id)
            return None if row is None else owner_record(row)

    async def get_or_create_owner(self, owner_id: str, name: str) -> Owner:
        """The owner with this id, created if missing; safe when several callers race."""
        statement = (
            dialect_insert(self._db.dialect, OwnerRow)
            .values(id=owner_id, name=name, credits=None, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=[OwnerRow.id])
        )
        async with self._db.write() as session:
            await session.execute(statement)
            row = await session.get_one(OwnerRow, owner_id)
            return owner_record(row)

    async def list_owners(self) -> list[Owner]:
        statement = select(OwnerRow).order_by(OwnerRow.created_at, OwnerRow.id)
        async with self._db.read() as session:
            return [owner_record(row) for row in await session.scalars(statement)]

    async def find_owners_by_name(self, name: str) -> list[Owner]:
        statement = select(OwnerRow).where(OwnerRow.name == name).order_by(OwnerRow.created_at)
        async with self._db.read() as session:
            return [owner_record(row) for row in await session.scalars(statement)]

    async def add_credits(self, owner_id: str, amount: int) -> Owner | None:
        total = func.coalesce(OwnerRow.credits, 0) + amount
        # SQLite's two-argument max() is PostgreSQL's greatest().
        pick = func.greatest if self._db.dialect == "postgresql" else func.max
        balance: Any = pick(total, 0)
        statement = update(OwnerRow).where(OwnerRow.id == owner_id).values(credits=balance)
        async with self._db.write() as session:
            await session.execute(statement.execution_options(synchronize_session=False))
            row = await session.get(OwnerRow, owner_id, populate_existing=True)
            return None if row is None else owner_record(row)

    async def create_key(
        self, owner_id: str, name: str, key_hash: str, prefix: str, *, admin: bool = False
    ) -> ApiKey:
        row = ApiKeyRow(
            admin=admin,
            id=new_id("key"),
            owner_id=owner_id,
            name=name,
            key_hash=key_hash,
            prefix=prefix,
            created_at=utcnow(),
        )
        async with self._db.write() as session:
            session.add(row)
        return api_key_record(row)

    async def find_by_hash(self, key_hash: str) -> tuple[ApiKey, Owner] | None:
        statement = (
            select(ApiKeyRow, OwnerRow)
            .join(OwnerRow, OwnerRow.id == ApiKeyRow.owner_id)
            .where(ApiKeyRow.key_hash == key_hash, ApiKeyRow.revoked_at.is_(None))
        )
        async with self._db.read() as session:
            found = (await session.execute(statement)).one_or_none()
            if found is None:
                return None
            return api_key_record(found[0]), owner_record(found[1])

    async def find_key(self, key_hash: str) -> tuple[ApiKey, Owner] | None:
        statement = (
            select(ApiKeyRow, OwnerRow)
            .join(OwnerRow, OwnerRow.id == ApiKeyRow.owner_id)
            .where(ApiKeyRow.key_hash == key_hash)
        )
        async with self._db.read() as session:
            found = (await session.execute(statement)).one_or_none()
            if found is None:
                return None
            return api_key_record(found[0]), owner_record(found[1])

    async def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        statement = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        async with self._db.read() as session:
            return [api_key_record(row) for row in (await session.scalars(statement))]

    async def revoke_key(self, key_id: str) -> bool:
        statement = (
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        async with self._db.write() as session:
            result: Any = await session.execute(statement)
            return bool(result.rowcount)

    async def count_active_keys(self) -> int:
        statement = (
            select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None))
        )
        async with self._db.read() as session:
            return int((await session.execute(statement)).scalar_one())

    async def ever_created(self) -> bool:
        """Revoking only stamps ``revoked_at``; key rows are never deleted."""
        async with self._db.read() as session:
            return bool(await session.scalar(select(exists().where(ApiKeyRow.id.is_not(None)))))

    async def keyless_state(self, owner_id: str) -> KeylessState:
        """The owner's row with two EXISTS flags beside it (each stops at the first key it
        finds: no count over the table); the flags alone while the owner does not exist yet
        (a second statement, only until the first keyless request creates it)."""
        active = exists().where(ApiKeyRow.revoked_at.is_(None)).label("any_active")
        ever = exists().where(ApiKeyRow.id.is_not(None)).label("any_ever")
        async with self._db.read() as session:
            statement = select(OwnerRow, active, ever).where(OwnerRow.id == owner_id)
            row = (await session.execute(statement)).one_or_none()
            if row is not None:
                return KeylessState(bool(row[1]), bool(row[2]), owner_record(row[0]))
            flags = (await session.execute(select(active, ever))).one()
            return KeylessState(bool(flags[0]), bool(flags[1]), None)
