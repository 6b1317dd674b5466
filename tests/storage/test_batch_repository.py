"""Batch jobs in SQL: owner scoping, conditional transitions, outcomes counted once, filters.

Batch jobs run on PostgreSQL only (their queue lives there), but the repository is plain SQL and
is checked on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.storage import factories
from voxserve.storage.batches import BatchJobFilter, BatchJobRecord, BatchRequestRecord
from voxserve.storage.database import Database, create_engine
from voxserve.storage.migrate import migrate
from voxserve.storage.sql_batch import SqlBatchRepository


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await migrate(database_url)  # SQLite starts empty; PostgreSQL is migrated already
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def repo(engine: AsyncEngine) -> SqlBatchRepository:
    return SqlBatchRepository(Database(engine))


def job(job_id: str, owner_id: str = "alice", **changes: object) -> BatchJobRecord:
    record = BatchJobRecord(
        id=job_id,
        owner_id=owner_id,
        endpoint="/v1/audio/transcriptions",
        status="QUEUED",
        created_at=factories.T0,
        timeout_hours=24,
        metadata={"team": "a"},
        total_requests=2,
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def requests(job_id: str) -> list[BatchRequestRecord]:
    return [BatchRequestRecord(job_id, i, f"c{i}", {"file_id": f"file-{i}"}) for i in range(2)]


async def test_jobs_are_scoped_to_their_owner(repo: SqlBatchRepository) -> None:
    created = await repo.create(job("batch-1"), requests("batch-1"))

    assert await repo.get("alice", "batch-1") == created
    assert await repo.get("bob", "batch-1") is None
    assert await repo.get_by_id("batch-1") == created
    assert (await repo.list("bob", BatchJobFilter(), offset=0, limit=10)) == ([], 0)


async def test_a_job_s_requests_go_in_one_insert_however_many(
    engine: AsyncEngine, repo: SqlBatchRepository
) -> None:
    sent: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _execute(*args: Any) -> None:
        sent.append(args[2])

    await repo.create(job("batch-1", total_requests=1), many("batch-1", 1))
    one = len(sent)
    sent.clear()
    fifty = many("batch-2", 50)
    await repo.create(job("batch-2", total_requests=50), fifty)

    into_requests = [s for s in sent if s.lstrip().upper().startswith("INSERT INTO BATCH_REQUESTS")]
    assert (len(sent), len(into_requests)) == (one, 1)
    assert await repo.pending_requests("batch-2") == fifty


def many(job_id: str, count: int) -> list[BatchRequestRecord]:
    """Requests with and without a custom id (a bulk insert must store both as given)."""
    return [
        BatchRequestRecord(job_id, i, f"c{i}" if i % 2 else None, {"file_id": f"file-{i}"})
        for i in range(count)
    ]


async def test_a_transition_applies_only_from_the_given_statuses(repo: SqlBatchRepository) -> None:
    await repo.create(job("batch-1"), requests("batch-1"))

    running = await repo.transition("batch-1", ("QUEUED",), {"status": "RUNNING"})
    again = await repo.transition("batch-1", ("QUEUED",), {"status": "CANCELLED"})

    assert running is not None and running.status == "RUNNING"
    assert again is None
    assert (await repo.get_by_id("batch-1")).status == "RUNNING"  # type: ignore[union-attr]


async def test_an_outcome_is_counted_once(repo: SqlBatchRepository) -> None:
    await repo.create(job("batch-1"), requests("batch-1"))
    first, second = await repo.pending_requests("batch-1")
    done = replace(first, status_code=200, response={"text": "hi"}, finished_at=factories.T0)
    failed = replace(second, status_code=404, response={"message": "gone"})

    await repo.record_outcome(done, succeeded=True)
    await repo.record_outcome(done, succeeded=True)  # a retried job storing it again
    counted = await repo.record_outcome(failed, succeeded=False)

    assert counted is not None
    assert (counted.completed_requests, counted.succeeded_requests) == (2, 1)
    assert counted.failed_requests == 1
    assert await repo.pending_requests("batch-1") == []
    finished = await repo.finished_requests("batch-1")
    assert [(r.custom_id, r.status_code, r.response) for r in finished] == [
        ("c0", 200, {"text": "hi"}),
        ("c1", 404, {"message": "gone"}),
    ]


async def test_list_filters_and_orders(repo: SqlBatchRepository) -> None:
    later = factories.T0 + timedelta(hours=1)
    await repo.create(job("batch-1", model="a"), [])
    await repo.create(job("batch-2", created_at=later, status="SUCCESS"), [])

    newest, total = await repo.list("alice", BatchJobFilter(), offset=0, limit=10)
    oldest, _ = await repo.list("alice", BatchJobFilter(newest_first=False), offset=0, limit=1)
    done, _ = await repo.list("alice", BatchJobFilter(statuses=("SUCCESS",)), offset=0, limit=10)
    by_model, _ = await repo.list("alice", BatchJobFilter(model="a"), offset=0, limit=10)
    after, _ = await repo.list(
        "alice", BatchJobFilter(created_after=factories.T0), offset=0, limit=10
    )
    tagged, _ = await repo.list("alice", BatchJobFilter(metadata={"team": "a"}), offset=0, limit=10)

    assert total == 2 and [j.id for j in newest] == ["batch-2", "batch-1"]
    assert [j.id for j in oldest] == ["batch-1"]
    assert [j.id for j in done] == [j.id for j in after] == ["batch-2"]
    assert [j.id for j in by_model] == ["batch-1"]
    assert len(tagged) == 2


async def test_update_sets_json_fields(repo: SqlBatchRepository) -> None:
    await repo.create(job("batch-1"), [])
    errors = [{"message": "gone", "count": 2}]

    updated = await repo.update("batch-1", {"errors": errors, "metadata": None, "output_file": "f"})

    assert updated is not None
    assert (updated.errors, updated.metadata, updated.output_file) == (tuple(errors), None, "f")
    with pytest.raises(ValueError, match="not batch job fields"):
        await repo.update("batch-1", {"nonsense": 1})


async def test_only_a_job_in_the_given_statuses_is_deleted_with_its_requests(
    repo: SqlBatchRepository,
) -> None:
    await repo.create(job("batch-1"), requests("batch-1"))
    await repo.create(job("batch-2", status="SUCCESS"), requests("batch-2"))
    final = ("SUCCESS", "CANCELLED")

    assert not await repo.delete("alice", "batch-1", final)
    assert not await repo.delete("bob", "batch-2", final)
    assert await repo.delete("alice", "batch-2", final)

    assert await repo.get("alice", "batch-2") is None
    assert await repo.pending_requests("batch-2") == []
    assert await repo.get("alice", "batch-1") is not None


async def test_unfinished_jobs_of_every_owner_oldest_first(repo: SqlBatchRepository) -> None:
    later = factories.T0 + timedelta(hours=1)
    await repo.create(job("batch-1", created_at=later, status="RUNNING"), [])
    await repo.create(job("batch-2", owner_id="bob"), [])
    await repo.create(job("batch-3", status="SUCCESS"), [])
    await repo.create(job("batch-4", created_at=later + timedelta(hours=1)), [])

    found = await repo.unfinished(later + timedelta(minutes=1))

    assert [j.id for j in found] == ["batch-2", "batch-1"]
