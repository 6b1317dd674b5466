"""KeyRepository: owners and API keys, on every backend."""

from __future__ import annotations

import asyncio
from datetime import UTC

from voxserve.storage.protocol import Owner, Storage


async def test_create_and_get_owner(storage: Storage) -> None:
    created = await storage.keys.create_owner("alice", credits=50)

    found = await storage.keys.get_owner(created.id)

    assert found == created
    assert found.name == "alice"
    assert found.credits == 50
    assert found.created_at.tzinfo == UTC


async def test_owner_credits_default_to_unlimited(storage: Storage) -> None:
    created = await storage.keys.create_owner("alice")
    assert created.credits is None
    assert (await storage.keys.get_owner(created.id)) == created


async def test_get_unknown_owner_is_none(storage: Storage) -> None:
    assert await storage.keys.get_owner("nobody") is None


async def test_get_or_create_owner_creates_once(storage: Storage) -> None:
    first = await storage.keys.get_or_create_owner("local", "local")
    again = await storage.keys.get_or_create_owner("local", "another name")

    assert first.id == "local"
    assert again == first


async def test_get_or_create_owner_under_concurrency(storage: Storage) -> None:
    owners = await asyncio.gather(
        *(storage.keys.get_or_create_owner("local", f"n{i}") for i in range(10))
    )
    assert len({(o.id, o.name, o.created_at) for o in owners}) == 1


async def test_create_key_and_find_by_hash(storage: Storage, owner: Owner) -> None:
    key = await storage.keys.create_key(owner.id, "laptop", "hash-1", "vx_abcd")

    found = await storage.keys.find_by_hash("hash-1")

    assert found == (key, owner)
    assert key.owner_id == owner.id
    assert key.prefix == "vx_abcd"
    assert key.revoked_at is None
    assert key.created_at.tzinfo == UTC


async def test_find_unknown_hash_is_none(storage: Storage, owner: Owner) -> None:
    await storage.keys.create_key(owner.id, "laptop", "hash-1", "vx_abcd")
    assert await storage.keys.find_by_hash("hash-2") is None


async def test_revoked_key_is_not_found_and_not_active(storage: Storage, owner: Owner) -> None:
    key = await storage.keys.create_key(owner.id, "laptop", "hash-1", "vx_abcd")
    await storage.keys.create_key(owner.id, "server", "hash-2", "vx_efgh")
    assert await storage.keys.count_active_keys() == 2

    assert await storage.keys.revoke_key(key.id) is True

    assert await storage.keys.find_by_hash("hash-1") is None
    assert await storage.keys.count_active_keys() == 1
    assert await storage.keys.revoke_key(key.id) is False


async def test_revoke_unknown_key_is_false(storage: Storage) -> None:
    assert await storage.keys.revoke_key("key-nope") is False


async def test_list_keys_includes_revoked_oldest_first(storage: Storage, owner: Owner) -> None:
    first = await storage.keys.create_key(owner.id, "one", "hash-1", "vx_1")
    second = await storage.keys.create_key(owner.id, "two", "hash-2", "vx_2")
    await storage.keys.revoke_key(first.id)

    keys = await storage.keys.list_keys()

    assert [k.id for k in keys] == [first.id, second.id]
    assert keys[0].revoked_at is not None
    assert keys[0].revoked_at.tzinfo == UTC
    assert keys[1].revoked_at is None


async def test_count_active_keys_empty(storage: Storage) -> None:
    assert await storage.keys.count_active_keys() == 0
    assert await storage.keys.list_keys() == []


async def test_ever_created_stays_true_after_the_last_key_is_revoked(
    storage: Storage, owner: Owner
) -> None:
    # Keyless mode may only reopen on the operator's say-so once a key has existed (#14 item 3).
    assert await storage.keys.ever_created() is False
    key = await storage.keys.create_key(owner.id, "laptop", "hash-1", "vx_abcd")
    assert await storage.keys.ever_created() is True

    await storage.keys.revoke_key(key.id)

    assert await storage.keys.count_active_keys() == 0
    assert await storage.keys.ever_created() is True


async def test_find_key_finds_revoked_keys_too(storage: Storage, owner: Owner) -> None:
    key = await storage.keys.create_key(owner.id, "laptop", "hash-1", "vx_abcd")
    await storage.keys.create_key(owner.id, "server", "hash-2", "vx_efgh")
    assert await storage.keys.find_key("hash-1") == (key, owner)

    await storage.keys.revoke_key(key.id)

    found = await storage.keys.find_key("hash-1")
    assert found is not None
    assert found[0].id == key.id
    assert found[0].revoked_at is not None
    assert found[1] == owner
    still = await storage.keys.find_key("hash-2")
    assert still is not None
    assert still[0].revoked_at is None
    assert await storage.keys.find_key("never-issued") is None


async def test_keyless_state_reads_flags_and_owner(storage: Storage, owner: Owner) -> None:
    empty = await storage.keys.keyless_state("local")
    assert (empty.any_active, empty.any_ever, empty.owner) == (False, False, None)
    local = await storage.keys.get_or_create_owner("local", "local")
    key = await storage.keys.create_key(owner.id, "laptop", "hash-1", "vx_abcd")

    with_key = await storage.keys.keyless_state("local")
    await storage.keys.revoke_key(key.id)
    revoked = await storage.keys.keyless_state("local")

    assert (with_key.any_active, with_key.any_ever, with_key.owner) == (True, True, local)
    assert (revoked.any_active, revoked.any_ever, revoked.owner) == (False, True, local)
    assert (await storage.keys.keyless_state(owner.id)).owner == owner
