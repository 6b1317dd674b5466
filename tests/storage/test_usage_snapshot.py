"""UsageRepository.record with a refund, and snapshot: a request's record and its refund are
stored together and read together, on every backend (#14: a report once showed a record with
the balance from before its refund)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tests.storage import factories
from tests.storage.factories import balance
from voxserve.storage.protocol import Storage

AT = datetime(2025, 5, 1, 10, tzinfo=UTC)


async def test_a_record_carries_its_refund(storage: Storage) -> None:
    owner = await storage.keys.create_owner("payer", credits=100)
    assert await storage.usage.reserve_credits(owner.id, 40)

    await storage.usage.record(factories.usage(owner.id, AT, credits=25), refund=15)

    assert await balance(storage, owner.id) == 75
    snapshot = await storage.usage.snapshot(owner.id)
    assert snapshot is not None
    assert (snapshot.balance, snapshot.overall.credits) == (75, 25)
    assert [r.credits for r in snapshot.records] == [25]
    assert [p.credits for p in snapshot.periods] == [25]


async def test_a_negative_refund_is_refused_and_nothing_is_recorded(storage: Storage) -> None:
    owner = await storage.keys.create_owner("payer", credits=10)
    with pytest.raises(ValueError, match="negative"):
        await storage.usage.record(factories.usage(owner.id, AT), refund=-1)
    assert await storage.usage.records(owner.id) == []


async def test_snapshot_of_an_unknown_owner_is_none(storage: Storage) -> None:
    assert await storage.usage.snapshot("nobody") is None


async def test_concurrent_settles_and_snapshots_always_add_up(storage: Storage) -> None:
    """Every snapshot taken while requests settle: balance + recorded credits + the reservations
    not yet settled is the starting balance."""
    owner = await storage.keys.create_owner("payer", credits=1000)
    requests = 20
    assert all([await storage.usage.reserve_credits(owner.id, 10) for _ in range(requests)])

    async def settle() -> None:
        await storage.usage.record(factories.usage(owner.id, AT, credits=6), refund=4)

    async def watch() -> list[int]:
        totals = []
        for _ in range(requests):
            snapshot = await storage.usage.snapshot(owner.id, limit=1000)
            assert snapshot is not None and snapshot.balance is not None
            unsettled = requests - len(snapshot.records)
            totals.append(snapshot.balance + snapshot.overall.credits + 10 * unsettled)
        return totals

    *_, totals = await asyncio.gather(*(settle() for _ in range(requests)), watch())
    assert set(totals) == {1000}
    assert await balance(storage, owner.id) == 1000 - 6 * requests
