"""UsageRepository.records over a time range: ``since`` inclusive, ``until`` exclusive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from tests.storage import factories
from voxserve.storage.protocol import Owner, Storage

T0 = datetime(2025, 5, 1, 10, tzinfo=UTC)


async def test_records_until_is_exclusive_and_limit_counts_in_range(
    storage: Storage, owner: Owner, other_owner: Owner
) -> None:
    for hour in range(6):
        at = T0 + timedelta(hours=hour)
        await storage.usage.record(factories.usage(owner.id, at, characters=hour))
    await storage.usage.record(factories.usage(other_owner.id, T0 + timedelta(hours=1)))
    until = T0 + timedelta(hours=4)

    before = await storage.usage.records(owner.id, until=until)
    newest_two = await storage.usage.records(owner.id, until=until, limit=2)
    window = await storage.usage.records(owner.id, since=T0 + timedelta(hours=1), until=until)

    assert [r.characters for r in before] == [3, 2, 1, 0]
    assert [r.characters for r in newest_two] == [3, 2]
    assert [r.characters for r in window] == [3, 2, 1]


async def test_records_until_in_another_timezone(storage: Storage, owner: Owner) -> None:
    for hour in range(3):
        at = T0 + timedelta(hours=hour)
        await storage.usage.record(factories.usage(owner.id, at, characters=hour))
    # 13:00 at UTC+2 is 11:00 UTC.
    until = datetime(2025, 5, 1, 13, tzinfo=timezone(timedelta(hours=2)))

    assert [r.characters for r in await storage.usage.records(owner.id, until=until)] == [0]
