"""Storage fixtures: every ``storage`` test runs on the in-memory storage, on SQLite and on
PostgreSQL (the contract is the same); ``sql_storage`` tests run on the SQL backends only (what
only SQL has: statement errors, two storages on one database, processes).

``postgres_server_url`` (session) and ``postgres_url`` (a new empty database per test) are thin
wrappers over ``tests.support.postgres`` and can move to ``tests/conftest.py`` unchanged.
Repository tests share one migrated PostgreSQL database, emptied before each test (a new
database per test would cost a checkpoint each); ``fresh_database_url`` gives a new, empty one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.postgres import (
    PostgresUnavailable,
    create_database,
    drop_database,
    postgres_server,
    run_blocking,
    truncate_tables,
)
from tests.support.s3_emulator import S3Emulator, s3_emulator
from voxserve.storage.memory import open_memory_storage
from voxserve.storage.migrate import migrate
from voxserve.storage.protocol import Owner, Storage
from voxserve.storage.sql import open_storage
from voxserve.storage.tables import Base

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""The SQL backends."""
STORAGE_BACKENDS = ["memory", *BACKENDS]
"""Every ``Storage``: the in-memory one keeps the same contract."""


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server for the whole session (skips when none can be had)."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
        except PostgresUnavailable as reason:
            pytest.skip(str(reason))
        yield url


@pytest.fixture
async def postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    url = await create_database(postgres_server_url)
    yield url
    await drop_database(postgres_server_url, url)


@pytest.fixture(scope="session")
def shared_postgres_url(postgres_server_url: str) -> Iterator[str]:
    """One migrated PostgreSQL database for the session's repository tests."""
    url = run_blocking(create_database(postgres_server_url))
    run_blocking(migrate(url))
    yield url
    run_blocking(drop_database(postgres_server_url, url))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Emulator]:
    """An S3 emulator (moto's S3 server) for the whole session, with a bucket ``voxserve``."""
    with s3_emulator() as emulator:
        emulator.create_bucket("voxserve")
        yield emulator


def _sqlite_url(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'db' / 'voxserve.db'}"


def _empty_database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return _sqlite_url(tmp_path)
    url: str = request.getfixturevalue("shared_postgres_url")
    run_blocking(truncate_tables(url, [t.name for t in Base.metadata.sorted_tables]))
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database without rows, on each backend."""
    return _empty_database_url(request, request.param, tmp_path)


@pytest.fixture(params=BACKENDS)
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that was never migrated, on each backend."""
    if request.param == "sqlite":
        return _sqlite_url(tmp_path)
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=STORAGE_BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """An empty storage on each backend, the in-memory one included."""
    if request.param == "memory":
        async with open_memory_storage() as memory:
            yield memory
        return
    url = _empty_database_url(request, request.param, tmp_path)
    async with open_storage(url, tmp_path / "blobs") as opened:
        yield opened


@pytest.fixture
async def sql_storage(database_url: str, tmp_path: Path) -> AsyncIterator[Storage]:
    """An empty storage on each SQL backend."""
    async with open_storage(database_url, tmp_path / "blobs") as opened:
        yield opened


@pytest.fixture
async def owner(storage: Storage) -> Owner:
    return await storage.keys.create_owner("alice")


@pytest.fixture
async def other_owner(storage: Storage) -> Owner:
    return await storage.keys.create_owner("bob")
