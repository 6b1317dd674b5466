"""FileRepository on every backend."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from tests.storage import factories
from tests.storage.factories import T0
from voxserve.errors import Conflict
from voxserve.storage.protocol import Owner, Storage


async def test_create_and_get(storage: Storage, owner: Owner) -> None:
    record = factories.file(owner.id, expires_at=T0 + timedelta(hours=24))

    created = await storage.files.create(record)

    assert created == record
    assert await storage.files.get(owner.id, record.id) == record
    assert created.created_at.tzinfo == UTC


async def test_other_owner_cannot_see_file(
    storage: Storage, owner: Owner, other_owner: Owner
) -> None:
    record = await storage.files.create(factories.file(owner.id))
    assert await storage.files.get(other_owner.id, record.id) is None
    assert await storage.files.get(owner.id, "file-missing") is None


async def test_duplicate_id_is_a_conflict(storage: Storage, owner: Owner) -> None:
    record = await storage.files.create(factories.file(owner.id))
    with pytest.raises(Conflict):
        await storage.files.create(factories.file(owner.id, id=record.id))


async def test_list_newest_first_with_purpose_and_pages(
    storage: Storage, owner: Owner, other_owner: Owner
) -> None:
    for minute in range(4):
        purpose = "audio" if minute % 2 == 0 else "batch"
        await storage.files.create(
            factories.file(owner.id, minutes=minute, purpose=purpose, filename=f"f{minute}")
        )
    await storage.files.create(factories.file(other_owner.id, minutes=9))

    page, total = await storage.files.list(owner.id, offset=1, limit=2)
    audio, audio_total = await storage.files.list(owner.id, offset=0, limit=10, purpose="audio")

    assert ([f.filename for f in page], total) == (["f2", "f1"], 4)
    assert ([f.filename for f in audio], audio_total) == (["f2", "f0"], 2)


async def test_deleted_file_is_invisible(storage: Storage, owner: Owner) -> None:
    kept = await storage.files.create(factories.file(owner.id))
    gone = await storage.files.create(factories.file(owner.id))
    at = T0 + timedelta(hours=1)

    deleted = await storage.files.mark_deleted(owner.id, gone.id, at=at)

    assert deleted is not None
    assert deleted.deleted_at == at
    assert await storage.files.get(owner.id, gone.id) is None
    assert await storage.files.list(owner.id, offset=0, limit=10) == ([kept], 1)
    assert await storage.files.mark_deleted(owner.id, gone.id, at=at) is None


async def test_mark_deleted_of_foreign_file_is_none(
    storage: Storage, owner: Owner, other_owner: Owner
) -> None:
    record = await storage.files.create(factories.file(owner.id))
    assert await storage.files.mark_deleted(other_owner.id, record.id, at=T0) is None
    assert await storage.files.get(owner.id, record.id) == record


async def test_due_for_purge_and_purge(storage: Storage, owner: Owner) -> None:
    now = T0 + timedelta(days=1)
    live = await storage.files.create(factories.file(owner.id, filename="live"))
    later = await storage.files.create(
        factories.file(owner.id, filename="later", expires_at=now + timedelta(seconds=1))
    )
    expired = await storage.files.create(
        factories.file(owner.id, filename="expired", minutes=1, expires_at=now)
    )
    deleted = await storage.files.create(factories.file(owner.id, filename="deleted", minutes=2))
    await storage.files.mark_deleted(owner.id, deleted.id, at=T0)

    due = await storage.files.due_for_purge(now)

    assert [f.id for f in due] == [expired.id, deleted.id]
    for record in due:
        await storage.files.purge(record.id)
    assert await storage.files.due_for_purge(now) == []
    assert {f.id for f in (await storage.files.list(owner.id, offset=0, limit=9))[0]} == {
        live.id,
        later.id,
    }


async def test_referenced_blob_keys(storage: Storage, owner: Owner) -> None:
    live = await storage.files.create(factories.file(owner.id))
    deleted = await storage.files.create(factories.file(owner.id))
    purged = await storage.files.create(factories.file(owner.id))
    await storage.files.mark_deleted(owner.id, deleted.id, at=T0)
    await storage.files.purge(purged.id)

    assert await storage.files.referenced_blob_keys() == {live.blob_key, deleted.blob_key}


async def test_get_by_id_ignores_the_owner_but_not_deletion(storage: Storage, owner: Owner) -> None:
    record = await storage.files.create(factories.file(owner.id))
    assert await storage.files.get_by_id(record.id) == record
    assert await storage.files.get_by_id("file-missing") is None
    await storage.files.mark_deleted(owner.id, record.id, at=T0)
    assert await storage.files.get_by_id(record.id) is None
