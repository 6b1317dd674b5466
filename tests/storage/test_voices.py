"""VoiceRepository: create, read, list, update, samples, deletion and purge, on every backend."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

from tests.storage import factories
from tests.storage.factories import T0
from voxserve.errors import Conflict, LimitExceeded
from voxserve.storage.protocol import Owner, Storage, VoiceQuery, VoiceSample

LIMIT = 20


async def test_create_and_get_round_trip(storage: Storage, owner: Owner) -> None:
    sad = VoiceSample("voices/x/sad.wav", 2.5, "sad")
    main = VoiceSample("voices/x/main.wav", 4.0)
    record = factories.voice(
        owner.id,
        "Narrator",
        samples=(sad, main),
        slug="narrator",
        languages=("en", "fr"),
        gender="female",
        age=40,
        tags=("calm", "warm"),
        color="#ff0000",
        description="A calm narrator.",
        retention_notice=7,
        trimmed_seconds=1.25,
    )

    created = await storage.voices.create(record, max_per_owner=LIMIT)
    found = await storage.voices.get(owner.id, record.id)

    assert found == created
    assert created.samples == (main, sad)  # main sample first
    assert created.main_sample == main
    assert created.sample_for("sad") == sad
    assert created.sample_for("angry") == main
    assert (created.languages, created.tags) == (("en", "fr"), ("calm", "warm"))
    assert (created.gender, created.age, created.color) == ("female", 40, "#ff0000")
    assert (created.retention_notice, created.trimmed_seconds) == (7, 1.25)
    assert created.created_at == T0
    assert created.created_at.tzinfo == UTC


async def test_defaults_round_trip(storage: Storage, owner: Owner) -> None:
    record = factories.voice(owner.id)
    created = await storage.voices.create(record, max_per_owner=LIMIT)
    assert created == record


async def test_datetimes_come_back_in_utc(storage: Storage, owner: Owner) -> None:
    paris = timezone(timedelta(hours=2))
    record = factories.voice(owner.id)
    local = record.created_at.astimezone(paris)
    created = await storage.voices.create(
        factories.voice(owner.id, id=record.id, created_at=local), max_per_owner=LIMIT
    )
    assert created.created_at == T0
    assert created.created_at.utcoffset() == timedelta(0)


async def test_other_owner_cannot_see_voice(
    storage: Storage, owner: Owner, other_owner: Owner
) -> None:
    record = await storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
    assert await storage.voices.get(other_owner.id, record.id) is None
    assert await storage.voices.get(owner.id, "missing") is None


async def test_create_needs_a_main_sample(storage: Storage, owner: Owner) -> None:
    record = factories.voice(owner.id, samples=(VoiceSample("voices/x/sad.wav", 2.0, "sad"),))
    with pytest.raises(ValueError, match="main sample"):
        await storage.voices.create(record, max_per_owner=LIMIT)


async def test_create_refuses_two_samples_for_one_emotion(storage: Storage, owner: Owner) -> None:
    samples = (VoiceSample("a.wav", 2.0), VoiceSample("b.wav", 2.0))
    with pytest.raises(ValueError, match="one sample per emotion"):
        await storage.voices.create(factories.voice(owner.id, samples=samples), max_per_owner=LIMIT)


async def test_create_for_unknown_owner_fails(storage: Storage) -> None:
    with pytest.raises(ValueError, match="unknown owner"):
        await storage.voices.create(factories.voice("nobody"), max_per_owner=LIMIT)


async def test_create_duplicate_id_is_a_conflict(storage: Storage, owner: Owner) -> None:
    record = await storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
    with pytest.raises(Conflict):
        await storage.voices.create(factories.voice(owner.id, id=record.id), max_per_owner=LIMIT)
    assert await storage.voices.count(owner.id) == 1


async def test_limit_counts_live_voices_per_owner(
    storage: Storage, owner: Owner, other_owner: Owner
) -> None:
    first = await storage.voices.create(factories.voice(owner.id), max_per_owner=2)
    await storage.voices.create(factories.voice(owner.id), max_per_owner=2)

    with pytest.raises(LimitExceeded, match=r"at most 2 custom voices per owner"):
        await storage.voices.create(factories.voice(owner.id), max_per_owner=2)
    await storage.voices.create(factories.voice(other_owner.id), max_per_owner=2)

    await storage.voices.mark_deleted(owner.id, first.id, at=T0, purge_after=T0)
    await storage.voices.create(factories.voice(owner.id), max_per_owner=2)
    assert await storage.voices.count(owner.id) == 2


async def test_failed_create_stores_nothing(storage: Storage, owner: Owner) -> None:
    record = factories.voice(owner.id)
    await storage.voices.create(factories.voice(owner.id), max_per_owner=1)
    with pytest.raises(LimitExceeded):
        await storage.voices.create(record, max_per_owner=1)
    assert await storage.voices.get(owner.id, record.id) is None
    assert record.main_sample.blob_key not in await storage.voices.referenced_blob_keys()


async def test_list_newest_first_with_pages(storage: Storage, owner: Owner) -> None:
    for minute in range(5):
        await storage.voices.create(
            factories.voice(owner.id, f"v{minute}", minutes=minute), max_per_owner=LIMIT
        )

    page, total = await storage.voices.list(owner.id, VoiceQuery(), offset=1, limit=2)
    everything, _ = await storage.voices.list(owner.id, VoiceQuery(), offset=0, limit=100)

    assert total == 5
    assert [v.name for v in page] == ["v3", "v2"]
    assert [v.name for v in everything] == ["v4", "v3", "v2", "v1", "v0"]
    assert all(v.samples for v in everything)


async def test_list_breaks_created_at_ties_by_id_descending(storage: Storage, owner: Owner) -> None:
    ids = ["a", "c", "b"]
    for voice_id in ids:
        await storage.voices.create(factories.voice(owner.id, id=voice_id), max_per_owner=LIMIT)
    page, _ = await storage.voices.list(owner.id, VoiceQuery(), offset=0, limit=10)
    assert [v.id for v in page] == ["c", "b", "a"]


async def test_list_past_the_end(storage: Storage, owner: Owner) -> None:
    await storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
    assert await storage.voices.list(owner.id, VoiceQuery(), offset=5, limit=10) == ([], 1)
    assert await storage.voices.list(owner.id, VoiceQuery(), offset=0, limit=0) == ([], 1)


async def _names(storage: Storage, owner: Owner, query: VoiceQuery) -> tuple[set[str], int]:
    page, total = await storage.voices.list(owner.id, query, offset=0, limit=100)
    return {v.name for v in page}, total


async def test_list_filters(storage: Storage, owner: Owner, other_owner: Owner) -> None:
    voices = [
        factories.voice(owner.id, "Deep Émile", gender="male", languages=("fr",),
                        description="Radio host", tags=("bass",)),
        factories.voice(owner.id, "Anna", gender="female", languages=("en", "de"),
                        description="deep and warm"),
        factories.voice(owner.id, "Bob 100%_", gender="male", languages=("EN",), tags=None),
        factories.voice(other_owner.id, "Deep other", gender="male", languages=("fr",)),
    ]  # fmt: skip
    for record in voices:
        await storage.voices.create(record, max_per_owner=LIMIT)

    assert await _names(storage, owner, VoiceQuery(text="deep")) == ({"Deep Émile"}, 1)
    assert await _names(storage, owner, VoiceQuery(text="ÉMILE")) == ({"Deep Émile"}, 1)
    assert await _names(storage, owner, VoiceQuery(text="DEEP", text_in_details=True)) == (
        {"Deep Émile", "Anna"},
        2,
    )
    assert await _names(storage, owner, VoiceQuery(text="bas", text_in_details=True)) == (
        {"Deep Émile"},
        1,
    )
    assert await _names(storage, owner, VoiceQuery(text="0%_")) == ({"Bob 100%_"}, 1)
    assert await _names(storage, owner, VoiceQuery(text="%")) == ({"Bob 100%_"}, 1)
    assert await _names(storage, owner, VoiceQuery(genders=("female",))) == ({"Anna"}, 1)
    assert await _names(storage, owner, VoiceQuery(languages=("en", "it"))) == (
        {"Anna", "Bob 100%_"},
        2,
    )
    both = VoiceQuery(genders=("male",), languages=("fr",), text="e")
    assert await _names(storage, owner, both) == ({"Deep Émile"}, 1)
    assert await _names(storage, owner, VoiceQuery(languages=("ja",))) == (set(), 0)


async def test_count(storage: Storage, owner: Owner, other_owner: Owner) -> None:
    assert await storage.voices.count(owner.id) == 0
    for _ in range(3):
        await storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
    await storage.voices.create(factories.voice(other_owner.id), max_per_owner=LIMIT)
    assert await storage.voices.count(owner.id) == 3


async def test_update_sets_fields(storage: Storage, owner: Owner) -> None:
    record = await storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
    later = T0 + timedelta(days=1)

    updated = await storage.voices.update(
        owner.id,
        record.id,
        {
            "name": "Renamed",
            "languages": ["de"],
            "tags": ("a", "b"),
            "age": 30,
            "updated_at": later,
        },
    )

    assert updated is not None
    assert (updated.name, updated.languages, updated.tags, updated.age) == (
        "Renamed",
        ("de",),
        ("a", "b"),
        30,
    )
    assert updated.updated_at == later
    assert updated.samples == record.samples
    assert await storage.voices.get(owner.id, record.id) == updated


async def test_update_sets_updated_at_and_clears_tags(storage: Storage, owner: Owner) -> None:
    record = await storage.voices.create(
        factories.voice(owner.id, tags=("x",)), max_per_owner=LIMIT
    )
    updated = await storage.voices.update(owner.id, record.id, {"tags": None})
    assert updated is not None
    assert updated.tags is None
    assert updated.updated_at is not None
    assert updated.updated_at.tzinfo == UTC


async def test_update_refuses_unknown_fields(storage: Storage, owner: Owner) -> None:
    record = await storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
    with pytest.raises(ValueError, match="owner_id"):
        await storage.voices.update(owner.id, record.id, {"owner_id": "someone"})


async def test_update_missing_or_foreign_voice_is_none(
    storage: Storage, owner: Owner, other_owner: Owner
) -> None:
    record = await storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
    assert await storage.voices.update(other_owner.id, record.id, {"name": "x"}) is None
    assert await storage.voices.update(owner.id, "missing", {"name": "x"}) is None
    assert (await storage.voices.get(owner.id, record.id)) == record


async def test_set_sample_adds_and_replaces(storage: Storage, owner: Owner) -> None:
    record = await storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
    happy = VoiceSample("voices/x/happy.wav", 2.0, "happy")
    happy2 = VoiceSample("voices/x/happy-2.wav", 3.0, "happy")
    main2 = VoiceSample("voices/x/main-2.wav", 5.0)

    assert await storage.voices.set_sample(owner.id, record.id, happy)
    assert await storage.voices.set_sample(owner.id, record.id, happy2)
    assert await storage.voices.set_sample(owner.id, record.id, main2)

    found = await storage.voices.get(owner.id, record.id)
    assert found is not None
    assert found.samples == (main2, happy2)
    assert found.updated_at is not None


async def test_set_sample_on_missing_voice_is_false(
    storage: Storage, owner: Owner, other_owner: Owner
) -> None:
    record = await storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
    sample = VoiceSample("voices/x/sad.wav", 2.0, "sad")
    assert await storage.voices.set_sample(other_owner.id, record.id, sample) is False
    assert await storage.voices.set_sample(owner.id, "missing", sample) is False
    await storage.voices.mark_deleted(owner.id, record.id, at=T0, purge_after=T0)
    assert await storage.voices.set_sample(owner.id, record.id, sample) is False


async def test_deleted_voice_is_invisible(storage: Storage, owner: Owner) -> None:
    kept = await storage.voices.create(factories.voice(owner.id, "kept"), max_per_owner=LIMIT)
    gone = await storage.voices.create(factories.voice(owner.id, "gone"), max_per_owner=LIMIT)
    at, purge_after = T0 + timedelta(hours=1), T0 + timedelta(days=30)

    deleted = await storage.voices.mark_deleted(owner.id, gone.id, at=at, purge_after=purge_after)

    assert deleted is not None
    assert (deleted.deleted_at, deleted.purge_after) == (at, purge_after)
    assert deleted.samples == gone.samples
    assert await storage.voices.get(owner.id, gone.id) is None
    assert await storage.voices.list(owner.id, VoiceQuery(), offset=0, limit=10) == ([kept], 1)
    assert await storage.voices.count(owner.id) == 1
    assert await storage.voices.update(owner.id, gone.id, {"name": "back"}) is None
    again = await storage.voices.mark_deleted(owner.id, gone.id, at=at, purge_after=purge_after)
    assert again is None


async def test_mark_deleted_of_foreign_voice_is_none(
    storage: Storage, owner: Owner, other_owner: Owner
) -> None:
    record = await storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
    assert (
        await storage.voices.mark_deleted(other_owner.id, record.id, at=T0, purge_after=T0) is None
    )
    assert await storage.voices.get(owner.id, record.id) == record


async def test_due_for_purge_and_purge(storage: Storage, owner: Owner) -> None:
    live = await storage.voices.create(factories.voice(owner.id, "live"), max_per_owner=LIMIT)
    due = await storage.voices.create(factories.voice(owner.id, "due"), max_per_owner=LIMIT)
    later = await storage.voices.create(factories.voice(owner.id, "later"), max_per_owner=LIMIT)
    now = T0 + timedelta(days=1)
    await storage.voices.mark_deleted(owner.id, due.id, at=T0, purge_after=now)
    await storage.voices.mark_deleted(owner.id, later.id, at=T0, purge_after=now + timedelta(1))

    found = await storage.voices.due_for_purge(now)

    assert [v.id for v in found] == [due.id]
    assert found[0].samples == due.samples
    assert found[0].deleted_at == T0
    await storage.voices.purge(due.id)
    assert await storage.voices.due_for_purge(now) == []
    assert [v.id for v in await storage.voices.due_for_purge(now + timedelta(2))] == [later.id]
    assert await storage.voices.get(owner.id, live.id) == live


async def test_referenced_blob_keys(storage: Storage, owner: Owner) -> None:
    live = await storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
    sad = VoiceSample("voices/extra/sad.wav", 2.0, "sad")
    await storage.voices.set_sample(owner.id, live.id, sad)
    deleted = await storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
    purged = await storage.voices.create(factories.voice(owner.id), max_per_owner=LIMIT)
    for record in (deleted, purged):
        await storage.voices.mark_deleted(owner.id, record.id, at=T0, purge_after=T0)
    await storage.voices.purge(purged.id)

    keys = await storage.voices.referenced_blob_keys()

    assert keys == {live.main_sample.blob_key, sad.blob_key, deleted.main_sample.blob_key}


async def test_naive_datetimes_are_refused(sql_storage: Storage) -> None:
    owner = await sql_storage.keys.create_owner("alice")
    naive = factories.voice(owner.id, created_at=T0.replace(tzinfo=None))
    with pytest.raises(StatementError, match="naive datetime"):
        await sql_storage.voices.create(naive, max_per_owner=LIMIT)
