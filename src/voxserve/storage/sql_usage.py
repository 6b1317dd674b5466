"""Usage records and credit balances in SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voxserve.storage.database import Database
from voxserve.storage.protocol import UsageRecord, UsageSnapshot, UsageTotals
from voxserve.storage.tables import OwnerRow, UsageRow, usage_record, usage_row

PERIODS = ("day", "month")


class SqlUsageRepository:
    """``UsageRepository`` over SQLAlchemy."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def reserve_credits(self, owner_id: str, amount: int) -> bool:
        """Take ``amount`` credits in one conditional UPDATE, so concurrent reservations can
        never overdraw; False when the balance is too low or the owner does not exist."""
        if amount < 0:
            raise ValueError("amount must not be negative")
        statement = (
            update(OwnerRow)
            .where(
                OwnerRow.id == owner_id,
                (OwnerRow.credits.is_(None)) | (OwnerRow.credits >= amount),
            )
            .values(credits=OwnerRow.credits - amount)  # NULL (unlimited) stays NULL
            .execution_options(synchronize_session=False)
        )
        async with self._db.write() as session:
            result: Any = await session.execute(statement)
            return bool(result.rowcount)

    async def refund_credits(self, owner_id: str, amount: int) -> None:
        async with self._db.write() as session:
            await session.execute(_refund(owner_id, amount))

    async def record(self, record: UsageRecord, *, refund: int = 0) -> None:
        """The record and its refund in one transaction (see ``UsageRepository.record``)."""
        statement = _refund(record.owner_id, refund) if refund else None
        async with self._db.write() as session:
            if statement is not None:
                await session.execute(statement)
            session.add(usage_row(record))

    async def totals(
        self,
        owner_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        period: str | None = None,
    ) -> list[UsageTotals]:
        """Totals from ``since`` (inclusive) to ``until`` (exclusive), overall or per UTC
        ``day``/``month`` (oldest period first; periods without requests are left out)."""
        async with self._db.read() as session:
            return await self._totals(session, owner_id, since, until, period)

    async def records(
        self,
        owner_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[UsageRecord]:
        """The owner's newest records first, from ``since`` (inclusive) to ``until``
        (exclusive)."""
        async with self._db.read() as session:
            return await self._records(session, owner_id, since, until, limit)

    async def snapshot(
        self,
        owner_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        period: str = "day",
        limit: int = 100,
    ) -> UsageSnapshot | None:
        """One read transaction: a SQLite (WAL) transaction reads one snapshot; PostgreSQL
        needs REPEATABLE READ for its statements to share one."""
        async with self._db.read() as session:
            if self._db.dialect == "postgresql":
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            owner = await session.get(OwnerRow, owner_id)
            if owner is None:
                return None
            records = await self._records(session, owner_id, since, until, limit)
            periods = await self._totals(session, owner_id, since, until, period)
            return UsageSnapshot(owner.credits, UsageTotals.total_of(periods), periods, records)

    async def _totals(
        self,
        session: AsyncSession,
        owner_id: str,
        since: datetime | None,
        until: datetime | None,
        period: str | None,
    ) -> list[UsageTotals]:
        if period is not None and period not in PERIODS:
            raise ValueError(f"period must be one of {PERIODS} or None, not {period!r}")
        conditions = _range(owner_id, since, until)
        sums = (
            func.count(),
            func.coalesce(func.sum(UsageRow.characters), 0),
            func.coalesce(func.sum(UsageRow.audio_seconds), 0.0),
            func.coalesce(func.sum(UsageRow.tokens), 0),
            func.coalesce(func.sum(UsageRow.credits), 0),
        )
        if period is None:
            row = (await session.execute(select(*sums).where(*conditions))).one()
            return [_totals(None, row)]
        key = self._period_key(period).label("period")
        statement = select(key, *sums).where(*conditions).group_by(key).order_by(key)
        rows = (await session.execute(statement)).all()
        return [_totals(_period_start(row[0]), row[1:]) for row in rows]

    async def _records(
        self,
        session: AsyncSession,
        owner_id: str,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[UsageRecord]:
        statement = (
            select(UsageRow)
            .where(*_range(owner_id, since, until))
            .order_by(UsageRow.created_at.desc(), UsageRow.id.desc())
            .limit(limit)
        )
        return [usage_record(row) for row in await session.scalars(statement)]

    def _period_key(self, period: str) -> ColumnElement[str]:
        """The UTC period of ``created_at`` as text: ``YYYY-MM-DD`` or ``YYYY-MM``."""
        if self._db.dialect == "postgresql":
            pattern = "YYYY-MM-DD" if period == "day" else "YYYY-MM"
            return func.to_char(func.timezone("UTC", UsageRow.created_at), pattern)
        # SQLite stores UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' (see UTCDateTime).
        length = 10 if period == "day" else 7
        return func.substr(UsageRow.created_at, 1, length)


def _refund(owner_id: str, amount: int) -> Any:
    if amount < 0:
        raise ValueError("amount must not be negative")
    return (
        update(OwnerRow)
        .where(OwnerRow.id == owner_id, OwnerRow.credits.is_not(None))
        .values(credits=OwnerRow.credits + amount)  # in SQL: never a stale value written back
        .execution_options(synchronize_session=False)
    )


def _range(
    owner_id: str, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    conditions = [UsageRow.owner_id == owner_id]
    if since is not None:
        conditions.append(UsageRow.created_at >= since)
    if until is not None:
        conditions.append(UsageRow.created_at < until)
    return conditions


def _period_start(key: str) -> datetime:
    year, month, *day = (int(part) for part in key.split("-"))
    return datetime(year, month, day[0] if day else 1, tzinfo=UTC)


def _totals(period_start: datetime | None, sums: Any) -> UsageTotals:
    requests, characters, audio_seconds, tokens, credits = sums
    return UsageTotals(
        period_start=period_start,
        requests=int(requests),
        characters=int(characters),
        audio_seconds=float(audio_seconds),
        tokens=int(tokens),
        credits=int(credits),
    )
