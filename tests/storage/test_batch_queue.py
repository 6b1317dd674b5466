"""The batch job queue on procrastinate (PostgreSQL): queueing a job again is idempotent; ended
runs are pruned by procrastinate's builtin ``remove_old_jobs``."""

from __future__ import annotations

import pytest

from voxserve.jobs.queue import (
    PRUNE_TASK_NAME,
    QUEUE_NAME,
    TASK_NAME,
    create_app,
    ensure_schema,
    open_batch_queue,
)
from voxserve.settings import BatchSettings

pytestmark = pytest.mark.postgres


async def test_a_job_is_queued_again_only_when_the_queue_does_not_hold_it(
    postgres_url: str,
) -> None:
    async with open_batch_queue(postgres_url, BatchSettings()) as queue:
        held = await queue.enqueue("batch-held")
        lost = await queue.requeue("batch-lost")

        assert await queue.requeue("batch-held") is None
        assert lost is not None and lost != held
        assert await queue.requeue("batch-lost") is None  # now held: never queued twice
        assert await queue.abort(lost)  # it had not started
        assert await queue.requeue("batch-lost") is not None  # cancelled: no longer held


async def test_cancelled_runs_are_pruned_by_the_hourly_task(postgres_url: str) -> None:
    settings = BatchSettings(prune_after_hours=0)
    app = create_app(postgres_url, settings)
    assert [t.task.name for t in app.periodic_registry.periodic_tasks.values()] == [PRUNE_TASK_NAME]
    await ensure_schema(postgres_url)
    async with app.open_async():
        manager = app.job_manager
        cancelled = await app.configure_task(TASK_NAME, lock="batch-a").defer_async(job_id="a")
        await manager.cancel_job_by_id_async(cancelled)
        await app.configure_task(PRUNE_TASK_NAME).defer_async(timestamp=0)  # as the tick would

        await app.run_worker_async(queues=[QUEUE_NAME], wait=False, delete_jobs="successful")

        assert list(await manager.list_jobs_async(queue=QUEUE_NAME)) == []
