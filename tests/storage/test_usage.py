"""UsageRepository: credits and usage records, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.storage import factories
from tests.storage.factories import balance
from voxserve.storage.protocol import Owner, Storage, UsageTotals


async def test_reserve_and_refund(storage: Storage) -> None:
    owner = await storage.keys.create_owner("payer", credits=5)

    assert await storage.usage.reserve_credits(owner.id, 3) is True
    assert await storage.usage.reserve_credits(owner.id, 3) is False
    assert await balance(storage, owner.id) == 2
    await storage.usage.refund_credits(owner.id, 3)
    assert await balance(storage, owner.id) == 5
    assert await storage.usage.reserve_credits(owner.id, 5) is True
    assert await balance(storage, owner.id) == 0


async def test_unlimited_owner_always_reserves(storage: Storage, owner: Owner) -> None:
    assert await storage.usage.reserve_credits(owner.id, 1_000_000) is True
    await storage.usage.refund_credits(owner.id, 10)
    assert await balance(storage, owner.id) is None


async def test_reserve_for_unknown_owner_is_false(storage: Storage) -> None:
    assert await storage.usage.reserve_credits("nobody", 1) is False


async def test_negative_amounts_are_refused(storage: Storage, owner: Owner) -> None:
    with pytest.raises(ValueError, match="negative"):
        await storage.usage.reserve_credits(owner.id, -1)
    with pytest.raises(ValueError, match="negative"):
        await storage.usage.refund_credits(owner.id, -1)


async def test_records_newest_first(storage: Storage, owner: Owner, other_owner: Owner) -> None:
    t0 = datetime(2025, 5, 1, 10, tzinfo=UTC)
    for hour in range(4):
        await storage.usage.record(
            factories.usage(owner.id, t0 + timedelta(hours=hour), characters=hour)
        )
    await storage.usage.record(factories.usage(other_owner.id, t0))

    records = await storage.usage.records(owner.id, limit=3)
    since = await storage.usage.records(owner.id, since=t0 + timedelta(hours=2))

    assert [r.characters for r in records] == [3, 2, 1]
    assert [r.characters for r in since] == [3, 2]
    assert all(r.id is not None and r.owner_id == owner.id for r in records)
    assert records[0].created_at == t0 + timedelta(hours=3)
    assert records[0].created_at.tzinfo == UTC
    assert (records[0].endpoint, records[0].engine, records[0].status) == (
        "speech",
        "fake-tts",
        200,
    )


async def test_totals_overall_and_per_period(
    storage: Storage, owner: Owner, other_owner: Owner
) -> None:
    times = [
        datetime(2025, 1, 31, 23, 59, tzinfo=UTC),
        datetime(2025, 2, 1, 0, 0, tzinfo=UTC),
        datetime(2025, 2, 1, 22, 0, tzinfo=UTC),
        datetime(2025, 2, 3, 9, 0, tzinfo=UTC),
    ]
    for n, at in enumerate(times, start=1):
        await storage.usage.record(
            factories.usage(owner.id, at, characters=n, audio_seconds=0.5, tokens=10, credits=n)
        )
    await storage.usage.record(factories.usage(other_owner.id, times[0], characters=100))

    overall = await storage.usage.totals(owner.id)
    days = await storage.usage.totals(owner.id, period="day")
    months = await storage.usage.totals(owner.id, period="month")
    window = await storage.usage.totals(owner.id, since=times[1], until=times[3])

    assert overall == [UsageTotals(None, 4, 10, 2.0, 40, 10)]
    assert days == [
        UsageTotals(datetime(2025, 1, 31, tzinfo=UTC), 1, 1, 0.5, 10, 1),
        UsageTotals(datetime(2025, 2, 1, tzinfo=UTC), 2, 5, 1.0, 20, 5),
        UsageTotals(datetime(2025, 2, 3, tzinfo=UTC), 1, 4, 0.5, 10, 4),
    ]
    assert months == [
        UsageTotals(datetime(2025, 1, 1, tzinfo=UTC), 1, 1, 0.5, 10, 1),
        UsageTotals(datetime(2025, 2, 1, tzinfo=UTC), 3, 9, 1.5, 30, 9),
    ]
    assert window == [UsageTotals(None, 2, 5, 1.0, 20, 5)]


async def test_totals_group_by_utc_day_whatever_the_input_zone(
    storage: Storage, owner: Owner
) -> None:
    tokyo = datetime(2025, 2, 3, 5, 0, tzinfo=timezone(timedelta(hours=9)))  # 2 Feb 20:00 UTC
    await storage.usage.record(factories.usage(owner.id, tokyo))
    days = await storage.usage.totals(owner.id, period="day")
    assert [d.period_start for d in days] == [datetime(2025, 2, 2, tzinfo=UTC)]


async def test_totals_when_empty(storage: Storage, owner: Owner) -> None:
    assert await storage.usage.totals(owner.id) == [UsageTotals(None, 0, 0, 0.0, 0, 0)]
    assert await storage.usage.totals(owner.id, period="day") == []


async def test_totals_refuse_unknown_period(storage: Storage, owner: Owner) -> None:
    with pytest.raises(ValueError, match="period"):
        await storage.usage.totals(owner.id, period="week")
