"""Migrations: idempotent, safe when run concurrently, and matching the table definitions.

Concurrent migrations from separate processes are tested in ``test_concurrency``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from tests.storage import factories
from voxserve.storage.database import async_url, create_engine
from voxserve.storage.migrate import alembic_config, current_revision, migrate
from voxserve.storage.protocol import UsageRecord, VoiceQuery
from voxserve.storage.sql import open_storage
from voxserve.storage.tables import Base

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


async def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        return await current_revision(engine)
    finally:
        await engine.dispose()


async def test_head_is_the_secrets_revision() -> None:
    assert HEAD == "0003"


async def test_migrate_twice_is_a_no_op(fresh_database_url: str, tmp_path: Path) -> None:
    assert await _revision(fresh_database_url) is None
    await migrate(fresh_database_url)
    async with open_storage(fresh_database_url, tmp_path / "blobs") as storage:
        owner = await storage.keys.create_owner("alice")

    await migrate(fresh_database_url)

    assert await _revision(fresh_database_url) == HEAD
    async with open_storage(fresh_database_url, tmp_path / "blobs") as storage:
        assert await storage.keys.get_owner(owner.id) == owner


async def test_schema_matches_the_tables(fresh_database_url: str) -> None:
    await migrate(fresh_database_url)

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    engine = create_engine(fresh_database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_concurrent_migrations_in_one_process(fresh_database_url: str) -> None:
    await asyncio.gather(*(migrate(fresh_database_url) for _ in range(3)))
    assert await _revision(fresh_database_url) == HEAD


async def test_data_survives_closing_and_reopening(fresh_database_url: str, tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    async with open_storage(fresh_database_url, blobs) as storage:
        owner = await storage.keys.create_owner("alice", credits=5)
        key = await storage.keys.create_key(owner.id, "k", "hash", "vx_1")
        voice = await storage.voices.create(factories.voice(owner.id), max_per_owner=20)
        file = await storage.files.create(factories.file(owner.id))
        await storage.usage.record(UsageRecord(owner.id, "speech", None, 200, factories.T0))
        await storage.blobs.put("files/x", b"payload")

    async with open_storage(fresh_database_url, blobs) as storage:
        assert await storage.keys.find_by_hash("hash") == (key, owner)
        assert await storage.voices.list(owner.id, VoiceQuery(), offset=0, limit=5) == ([voice], 1)
        assert await storage.files.get(owner.id, file.id) == file
        assert len(await storage.usage.records(owner.id)) == 1
        assert await storage.blobs.get("files/x") == b"payload"


async def test_open_storage_creates_missing_folders(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'a' / 'b' / 'voxserve.db'}"
    async with open_storage(url, tmp_path / "c" / "blobs") as storage:
        await storage.keys.create_owner("alice")
    assert (tmp_path / "a" / "b" / "voxserve.db").is_file()
    assert (tmp_path / "c" / "blobs").is_dir()


async def test_in_memory_sqlite(tmp_path: Path) -> None:
    async with open_storage("sqlite+aiosqlite://", tmp_path / "blobs") as storage:
        owner = await storage.keys.create_owner("alice")
        assert await storage.keys.get_owner(owner.id) == owner


async def test_concurrent_migrations_of_two_databases_in_one_process(tmp_path: Path) -> None:
    urls = [f"sqlite+aiosqlite:///{tmp_path / name}.db" for name in ("one", "two")]
    await asyncio.gather(*(migrate(url) for url in urls))
    assert [await _revision(url) for url in urls] == [HEAD, HEAD]


async def test_plain_urls_get_the_async_driver(tmp_path: Path) -> None:
    async with open_storage(f"sqlite:///{tmp_path / 'plain.db'}", tmp_path / "blobs") as storage:
        owner = await storage.keys.create_owner("alice")
    assert await _revision(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}") == HEAD
    assert str(async_url("postgresql://u@h/db")) == "postgresql+asyncpg://u@h/db"
    assert owner.name == "alice"
