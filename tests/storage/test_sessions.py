"""SessionRepository and the admin flag, owners by name and credits added: on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from voxserve.storage.protocol import Storage, WebSession

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


async def new_session(storage: Storage, sid: str = "s1", hours: float = 1) -> WebSession:
    owner = await storage.keys.create_owner("alice")
    key = await storage.keys.create_key(owner.id, "k", f"hash-{sid}", "vx-abc", admin=True)
    session = WebSession(sid, owner.id, key.id, NOW, NOW + timedelta(hours=hours))
    return await storage.sessions.create(session)


async def test_a_live_session_is_found_with_its_key_and_owner(storage: Storage) -> None:
    session = await new_session(storage)
    found = await storage.sessions.find_live("s1", NOW + timedelta(minutes=5))
    assert found is not None
    got, key, owner = found
    assert got == session and key.admin is True and owner.name == "alice"
    assert got.expires_at.tzinfo == UTC


async def test_expired_revoked_or_unknown_sessions_are_not_found(storage: Storage) -> None:
    await new_session(storage)
    assert await storage.sessions.find_live("s1", NOW + timedelta(hours=2)) is None
    assert await storage.sessions.find_live("nope", NOW) is None
    assert await storage.sessions.revoke("s1", NOW) is True
    assert await storage.sessions.revoke("s1", NOW) is False
    assert await storage.sessions.find_live("s1", NOW) is None


async def test_revoking_the_key_ends_its_sessions(storage: Storage) -> None:
    session = await new_session(storage)
    await storage.keys.revoke_key(session.key_id)
    assert await storage.sessions.find_live("s1", NOW) is None


async def test_purge_removes_ended_sessions_only(storage: Storage) -> None:
    await new_session(storage, "old", hours=1)
    await new_session(storage, "new", hours=48)
    assert await storage.sessions.purge_expired(NOW + timedelta(hours=2)) == 1
    assert await storage.sessions.find_live("new", NOW + timedelta(hours=3)) is not None


async def test_owners_by_name_and_credits_added(storage: Storage) -> None:
    alice = await storage.keys.create_owner("alice", credits=5)
    unlimited = await storage.keys.create_owner("bob")
    assert [o.id for o in await storage.keys.find_owners_by_name("alice")] == [alice.id]
    assert {o.id for o in await storage.keys.list_owners()} >= {alice.id, unlimited.id}
    added = await storage.keys.add_credits(alice.id, 10)
    assert added is not None and added.credits == 15
    floored = await storage.keys.add_credits(alice.id, -100)
    assert floored is not None and floored.credits == 0
    started = await storage.keys.add_credits(unlimited.id, 7)
    assert started is not None and started.credits == 7
    assert await storage.keys.add_credits("nobody", 1) is None


async def test_keys_are_not_admin_by_default(storage: Storage) -> None:
    owner = await storage.keys.create_owner("alice")
    key = await storage.keys.create_key(owner.id, "k", "h", "vx-")
    assert key.admin is False
    assert (await storage.keys.list_keys())[0].admin is False
