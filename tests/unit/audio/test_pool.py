"""The decode pool: bounded threads of its own, new work refused when full, admitted work never
refused midway (#14 item 2)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from voxserve.audio.pool import DecodePool
from voxserve.errors import Overloaded


async def test_new_work_beyond_workers_and_queue_is_refused_at_once() -> None:
    pool = DecodePool(workers=1, queue=1, retry_after=4)
    gate = threading.Event()
    running = asyncio.create_task(pool.run(gate.wait))
    waiting = asyncio.create_task(pool.run(gate.wait))
    await asyncio.sleep(0.05)
    state = pool.state()
    assert (state.active, state.waiting, state.saturated) == (1, 1, True)
    with pytest.raises(Overloaded) as refused:
        await pool.run(gate.wait)
    assert refused.value.retry_after == 4
    later = asyncio.create_task(pool.run(lambda: "admitted", admitted=True))  # waits, not refused
    gate.set()
    assert await asyncio.gather(running, waiting, later) == [True, True, "admitted"]
    assert pool.state().saturated is False


async def test_iterate_admits_once_and_pulls_on_pool_threads() -> None:
    pool = DecodePool(workers=1, queue=0)
    threads: set[str] = set()

    def items():  # type: ignore[no-untyped-def]
        for i in range(3):
            threads.add(threading.current_thread().name)
            yield i

    pulled = [item async for item in pool.iterate(items)]
    assert pulled == [0, 1, 2]
    assert threading.main_thread().name not in threads
    assert pool.state().saturated is False
