"""The batch job queue on procrastinate (PostgreSQL): queueing a job again is idempotent; ended
runs are pruned by procrastinate's builtin ``remove_old_jobs``; tables of another procrastinate
version stop the start with what to run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from tests.support.cli import invoke_keeping_logging
from voxserve.core.batch_types import QueueNotReady
from voxserve.jobs.queue import (
    PRUNE_TASK_NAME,
    QUEUE_NAME,
    TASK_NAME,
    create_app,
    ensure_schema,
    libpq_url,
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


async def test_tables_of_another_procrastinate_version_stop_the_start(postgres_url: str) -> None:
    await ensure_schema(postgres_url)
    await ensure_schema(postgres_url)  # the tables are there and match: nothing to do
    await drop_a_function(postgres_url)

    with pytest.raises(QueueNotReady) as outdated:
        async with open_batch_queue(postgres_url, BatchSettings()):
            pass
    message = str(outdated.value)
    assert "missing procrastinate_retry_job_v2" in message
    assert "procrastinate/sql/migrations" in message and "psql" in message


@pytest.fixture
def outdated_queue(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment of a command on a database whose job-queue tables are outdated."""
    asyncio.run(ensure_schema(postgres_url))
    asyncio.run(drop_a_function(postgres_url))
    monkeypatch.setenv("VOXSERVE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VOXSERVE_DATABASE_URL", postgres_url)


@pytest.mark.usefixtures("outdated_queue")
def test_the_worker_command_says_what_to_run() -> None:
    result = invoke_keeping_logging(["worker"])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].startswith("error: The job queue's tables")
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("outdated_queue")
def test_serve_says_what_to_run_in_one_line() -> None:
    result = invoke_keeping_logging(["serve", "--port", "0"])

    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: The job queue's tables"), lines
    assert "psql" in lines[0]


async def drop_a_function(database_url: str) -> None:
    """Make the tables look older than procrastinate 3.4 (which added this function)."""
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as connection:
        await connection.execute("DROP FUNCTION procrastinate_retry_job_v2")
