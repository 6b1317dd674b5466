"""Server-wide secrets and cross-replica locks, on every storage backend: the URL-signing key is
created once however many replicas start together, an older install's ``secret.key`` is adopted,
and a lock is held by one storage (replica) at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path

from voxserve.storage.protocol import Storage
from voxserve.storage.secrets import SIGNING_KEY, signing_key
from voxserve.storage.sql import open_storage


async def test_concurrent_creates_agree_on_the_first_value(storage: Storage) -> None:
    values = await asyncio.gather(
        *(storage.secrets.get_or_create("k", f"value-{n}") for n in range(8))
    )
    assert len(set(values)) == 1
    assert await storage.secrets.get_or_create("k", "later") == values[0]


async def test_signing_key_is_made_once_and_kept(storage: Storage, tmp_path: Path) -> None:
    first = await signing_key(storage.secrets, None, tmp_path)
    assert len(first) == 64
    assert await signing_key(storage.secrets, None, tmp_path) == first
    assert await signing_key(storage.secrets, "configured", tmp_path) == b"configured"
    assert not (tmp_path / "secret.key").exists()  # nothing of it on this replica's disk


async def test_an_older_installs_key_file_is_adopted(storage: Storage, tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("cafe" * 16 + "\n")

    assert await signing_key(storage.secrets, None, tmp_path) == b"cafe" * 16
    (tmp_path / "secret.key").write_text("other")  # adopted once: the database's key stays
    assert await signing_key(storage.secrets, None, tmp_path) == b"cafe" * 16
    assert await storage.secrets.get_or_create(SIGNING_KEY, "x") == "cafe" * 16


async def test_a_lock_has_one_holder_at_a_time(storage: Storage) -> None:
    async with storage.locks.hold("cleanup") as first:
        async with storage.locks.hold("cleanup") as second:
            assert (first, second) == (True, False)
        async with storage.locks.hold("other") as other:
            assert other
    async with storage.locks.hold("cleanup") as again:
        assert again


async def test_two_replicas_on_one_database_share_secret_and_lock(
    sql_storage: Storage, database_url: str, tmp_path: Path
) -> None:
    async with open_storage(database_url, tmp_path / "b") as replica:
        mine = await signing_key(sql_storage.secrets, None, tmp_path / "a")
        assert await signing_key(replica.secrets, None, tmp_path / "b") == mine
        if not database_url.startswith("postgresql"):
            return  # SQLite is one machine's: its lock is per process
        async with (
            sql_storage.locks.hold("cleanup") as first,
            replica.locks.hold("cleanup") as second,
        ):
            assert (first, second) == (True, False)
        async with replica.locks.hold("cleanup") as after:
            assert after
