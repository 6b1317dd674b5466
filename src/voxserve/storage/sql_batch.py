"""Batch jobs and their requests in SQL (see ``storage.batches``)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from voxserve.errors import Conflict
from voxserve.storage.batches import BatchJobFilter, BatchJobRecord, BatchRequestRecord
from voxserve.storage.database import Database
from voxserve.storage.tables import (
    Base,
    BatchJobRow,
    BatchRequestRow,
    batch_job_columns,
    batch_job_record,
    batch_job_row,
    batch_request_record,
    batch_request_values,
)

_REQUESTS = Base.metadata.tables[BatchRequestRow.__tablename__]


class SqlBatchRepository:
    """``BatchRepository`` over SQLAlchemy."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, job: BatchJobRecord, requests: Sequence[BatchRequestRecord]
    ) -> BatchJobRecord:
        """Insert the job and its requests in one transaction: the requests in one bulk
        ``INSERT`` (an executemany), not as ORM objects, since a job holds up to 10,000 of them.

        Raises:
            Conflict: a job with this id exists.
        """
        async with self._db.write() as session:
            session.add(batch_job_row(job))
            try:
                await session.flush()
            except IntegrityError:
                raise Conflict(f"Batch job '{job.id}' already exists.") from None
            if requests:  # Core, not ORM bulk: that splits the rows wherever a None is
                rows = [batch_request_values(r) for r in requests]
                await session.execute(insert(_REQUESTS), rows)
            return batch_job_record(await session.get_one(BatchJobRow, job.id))

    async def get(self, owner_id: str, job_id: str) -> BatchJobRecord | None:
        statement = select(BatchJobRow).where(
            BatchJobRow.id == job_id, BatchJobRow.owner_id == owner_id
        )
        async with self._db.read() as session:
            row = await session.scalar(statement)
            return None if row is None else batch_job_record(row)

    async def get_by_id(self, job_id: str) -> BatchJobRecord | None:
        async with self._db.read() as session:
            row = await session.get(BatchJobRow, job_id)
            return None if row is None else batch_job_record(row)

    async def list(
        self, owner_id: str, query: BatchJobFilter, *, offset: int, limit: int
    ) -> tuple[builtins.list[BatchJobRecord], int]:
        conditions = _conditions(owner_id, query)
        order = BatchJobRow.created_at.desc() if query.newest_first else BatchJobRow.created_at
        page = (
            select(BatchJobRow)
            .where(*conditions)
            .order_by(order, BatchJobRow.id)
            .offset(offset)
            .limit(limit)
        )
        count = select(func.count()).select_from(BatchJobRow).where(*conditions)
        async with self._db.read() as session:
            rows = (await session.scalars(page)).all()
            total = await session.scalar(count) or 0
            return [batch_job_record(r) for r in rows], total

    async def update(self, job_id: str, changes: Mapping[str, Any]) -> BatchJobRecord | None:
        return await self._set(job_id, changes, BatchJobRow.id == job_id)

    async def transition(
        self, job_id: str, from_statuses: Sequence[str], changes: Mapping[str, Any]
    ) -> BatchJobRecord | None:
        allowed = BatchJobRow.status.in_(list(from_statuses))
        return await self._set(job_id, changes, BatchJobRow.id == job_id, allowed)

    async def delete(self, owner_id: str, job_id: str, statuses: Sequence[str]) -> bool:
        statement = delete(BatchJobRow).where(
            BatchJobRow.id == job_id,
            BatchJobRow.owner_id == owner_id,
            BatchJobRow.status.in_(list(statuses)),
        )
        async with self._db.write() as session:  # its requests go too (ON DELETE CASCADE)
            return bool((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]

    async def unfinished(self, created_before: datetime) -> builtins.list[BatchJobRecord]:
        statement = (
            select(BatchJobRow)
            .where(
                BatchJobRow.status.in_(["QUEUED", "RUNNING"]),
                BatchJobRow.created_at < created_before,
            )
            .order_by(BatchJobRow.created_at, BatchJobRow.id)
        )
        async with self._db.read() as session:
            return [batch_job_record(r) for r in (await session.scalars(statement)).all()]

    async def pending_requests(self, job_id: str) -> builtins.list[BatchRequestRecord]:
        return await self._requests(job_id, BatchRequestRow.status_code.is_(None))

    async def finished_requests(self, job_id: str) -> builtins.list[BatchRequestRecord]:
        return await self._requests(job_id, BatchRequestRow.status_code.is_not(None))

    async def record_outcome(
        self, request: BatchRequestRecord, *, succeeded: bool
    ) -> BatchJobRecord | None:
        mark = (
            update(BatchRequestRow)
            .where(
                BatchRequestRow.job_id == request.job_id,
                BatchRequestRow.index == request.index,
                BatchRequestRow.status_code.is_(None),
            )
            .values(
                status_code=request.status_code,
                response=dict(request.response or {}),
                finished_at=request.finished_at,
            )
        )
        async with self._db.write() as session:
            marked = (await session.execute(mark)).rowcount  # type: ignore[attr-defined]
            if marked:
                counter = "succeeded_requests" if succeeded else "failed_requests"
                await session.execute(
                    update(BatchJobRow)
                    .where(BatchJobRow.id == request.job_id)
                    .values(
                        {
                            "completed_requests": BatchJobRow.completed_requests + 1,
                            counter: getattr(BatchJobRow, counter) + 1,
                        }
                    )
                )
            row = await session.get(BatchJobRow, request.job_id, populate_existing=True)
            return None if row is None else batch_job_record(row)

    async def _set(
        self, job_id: str, changes: Mapping[str, Any], *conditions: ColumnElement[bool]
    ) -> BatchJobRecord | None:
        values = {getattr(BatchJobRow, k): v for k, v in batch_job_columns(changes).items()}
        statement = update(BatchJobRow).where(*conditions).values(values)
        async with self._db.write() as session:
            if not (await session.execute(statement)).rowcount:  # type: ignore[attr-defined]
                return None
            row = await session.get(BatchJobRow, job_id, populate_existing=True)
            return None if row is None else batch_job_record(row)

    async def _requests(
        self, job_id: str, condition: ColumnElement[bool]
    ) -> builtins.list[BatchRequestRecord]:
        statement = (
            select(BatchRequestRow)
            .where(BatchRequestRow.job_id == job_id, condition)
            .order_by(BatchRequestRow.index)
        )
        async with self._db.read() as session:
            return [batch_request_record(r) for r in (await session.scalars(statement)).all()]


def _conditions(owner_id: str, query: BatchJobFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [BatchJobRow.owner_id == owner_id]
    if query.model is not None:
        conditions.append(BatchJobRow.model == query.model)
    if query.statuses:
        conditions.append(BatchJobRow.status.in_(list(query.statuses)))
    if query.created_after is not None:
        conditions.append(BatchJobRow.created_at > query.created_after)
    for key, value in query.metadata.items():
        conditions.append(BatchJobRow.metadata_[key].as_string() == str(value))
    return conditions
