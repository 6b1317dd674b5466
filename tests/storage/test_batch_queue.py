"""The batch job queue on procrastinate (PostgreSQL): queueing a job again is idempotent."""

from __future__ import annotations

import pytest

from voxserve.jobs.queue import open_batch_queue
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
