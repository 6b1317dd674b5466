"""Invariants under concurrency: the voice limit and credit reservations, within one storage,
across two storages on one database, and across processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.storage import factories
from tests.storage.factories import balance
from tests.storage.processes import run_workers
from voxserve.errors import LimitExceeded
from voxserve.storage.protocol import Owner, Storage, VoiceQuery, VoiceRecord
from voxserve.storage.sql import open_storage

LIMIT = 20


def _outcomes(results: list[object]) -> tuple[int, int]:
    unexpected = [r for r in results if not isinstance(r, VoiceRecord | LimitExceeded)]
    assert not unexpected, unexpected
    created = sum(isinstance(r, VoiceRecord) for r in results)
    return created, len(results) - created


async def test_voice_limit_holds_under_concurrent_creates(storage: Storage, owner: Owner) -> None:
    results = await asyncio.gather(
        *(storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT) for _ in range(25)),
        return_exceptions=True,
    )

    assert _outcomes(results) == (20, 5)
    assert await storage.voices.count(owner.id) == LIMIT
    assert (await storage.voices.list(owner.id, VoiceQuery(), offset=0, limit=100))[1] == LIMIT
    limited = next(r for r in results if isinstance(r, LimitExceeded))
    assert limited.message == "Voice limit reached: at most 20 custom voices per owner."


async def test_voice_limit_holds_across_two_storages(database_url: str, tmp_path: Path) -> None:
    async with (
        open_storage(database_url, tmp_path / "blobs") as one,
        open_storage(database_url, tmp_path / "blobs") as two,
    ):
        owner = await one.keys.create_owner("alice")
        results = await asyncio.gather(
            *(
                store.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
                for _ in range(13)
                for store in (one, two)
            ),
            return_exceptions=True,
        )
        assert _outcomes(results) == (20, 6)
        assert await two.voices.count(owner.id) == LIMIT


async def test_migrations_and_voice_limit_hold_across_processes(
    fresh_database_url: str, tmp_path: Path
) -> None:
    # Two processes open storage on a database never migrated, at the same moment, then
    # create 15 voices each at the same moment: exactly LIMIT of the 30 may exist.
    results = await asyncio.to_thread(
        run_workers,
        fresh_database_url,
        tmp_path / "blobs",
        "shared-owner",
        processes=2,
        count=15,
        limit=LIMIT,
    )

    assert [r["errors"] for r in results] == [[], []]
    assert sum(r["created"] for r in results) == LIMIT
    assert sum(r["limited"] for r in results) == 10
    async with open_storage(fresh_database_url, tmp_path / "blobs") as storage:
        assert await storage.voices.count("shared-owner") == LIMIT


async def test_credit_reservations_are_atomic(storage: Storage) -> None:
    owner = await storage.keys.create_owner("payer", credits=10)

    results = await asyncio.gather(*(storage.usage.reserve_credits(owner.id, 1) for _ in range(20)))

    assert results.count(True) == 10
    assert await balance(storage, owner.id) == 0


async def test_credit_reservations_are_atomic_across_storages(
    database_url: str, tmp_path: Path
) -> None:
    async with (
        open_storage(database_url, tmp_path / "blobs") as one,
        open_storage(database_url, tmp_path / "blobs") as two,
    ):
        owner = await one.keys.create_owner("payer", credits=10)
        results = await asyncio.gather(
            *(store.usage.reserve_credits(owner.id, 1) for _ in range(10) for store in (one, two))
        )
        assert results.count(True) == 10
        assert await balance(two, owner.id) == 0
