"""What only the in-memory storage needs proving: it refuses naive datetimes as SQL does, and
shares safely with a server running in another thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.storage import factories
from tests.storage.factories import T0, balance
from voxserve.storage.memory import create_memory_storage, open_memory_storage
from voxserve.storage.protocol import Storage


async def test_naive_datetimes_are_refused() -> None:
    async with open_memory_storage() as storage:
        owner = await storage.keys.create_owner("alice")
        naive = factories.voice(owner.id, created_at=T0.replace(tzinfo=None))
        with pytest.raises(ValueError, match="naive datetime"):
            await storage.voices.create(naive, max_per_owner=20)
        assert await storage.voices.count(owner.id) == 0


def _reserve_in_own_loop(storage: Storage, owner_id: str, tries: int, results: list[bool]) -> None:
    async def reserve() -> list[bool]:
        return await asyncio.gather(
            *(storage.usage.reserve_credits(owner_id, 1) for _ in range(tries))
        )

    results.extend(asyncio.run(reserve()))


async def test_credits_hold_when_threads_with_their_own_loops_share_it() -> None:
    # A live test server runs its own event loop in a thread; the test's loop uses the same
    # storage object at the same time.
    storage = create_memory_storage()
    owner = await storage.keys.create_owner("payer", credits=100)
    results: list[bool] = []
    threads = [
        threading.Thread(target=_reserve_in_own_loop, args=(storage, owner.id, 60, results))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join)

    assert results.count(True) == 100
    assert await balance(storage, owner.id) == 0


async def test_two_storages_share_nothing() -> None:
    one, two = create_memory_storage(), create_memory_storage()
    owner = await one.keys.create_owner("alice")
    await one.blobs.put("k", b"x")
    assert await two.keys.get_owner(owner.id) is None
    assert not await two.blobs.exists("k")
